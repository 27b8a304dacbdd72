"""HTTP: Lambda's REST API (the operations lambdaflow uses) and a few local extras.

Request and response shapes follow botocore's service model for lambda (2015-03-31): the
function name travels in the path, Qualifier/Marker/MaxItems in the query string, Invoke's
options in ``X-Amz-*`` headers with the payload as the raw body, everything else as JSON.
Errors carry the code in ``x-amzn-ErrorType`` and ``{"Type", "message"}`` in the body, which
is what botocore parses into ``client.exceptions.<Code>``.

Every request must carry a SigV4 signature by a key the endpoint knows (`auth.Keyring`): the
credentials the server was started with, or a sandbox's role credentials. Requests are
bounded before anything is buffered: ``Content-Length`` must be a non-negative integer no larger
than the route's limit (an Invoke's 6 MB / 1 MB payload, CreateFunction's base64 zip), every
socket read times out after `READ_TIMEOUT` seconds, and at most `MAX_CONNECTIONS` connections
are served at once (the rest are closed unanswered), so slow or hostile clients cannot pin an
unbounded number of threads.

Extras, outside Lambda's API (prefix ``/_local``, signed like the rest):

- ``GET /_local/functions/NAME/logs?lines=N`` — the function's last N log lines (default 100)
  as ``{"lines": [...]}``: START/END/REPORT lines and everything the sandboxes printed.
- ``POST /_local/reset`` — delete every function and stop every sandbox (test isolation).
- ``GET /_local/code/SHA.zip?token=T`` — a function's zip; GetFunction's ``Code.Location``
  points here with a token derived from the server's secret (unsigned, like the presigned S3
  URL Lambda returns).
"""

from __future__ import annotations

import http.server
import json
import logging
import socket
import threading
import urllib.parse
import uuid

from lambdaflow.lambda_limits import EVENT_PAYLOAD, MAX_ZIPPED, SYNC_PAYLOAD
from lambdaflow.locallambda.apierror import ApiError
from lambdaflow.locallambda.functions import qualify
from lambdaflow.locallambda.service import LambdaService

log = logging.getLogger(__name__)

READ_TIMEOUT = 60.0          # seconds one socket read may take (headers, body, keep-alive idle)
MAX_CONNECTIONS = 512        # connections served at once; more are closed at accept
# A CreateFunction/UpdateFunctionCode body: the 50 MB zip, base64 (4/3), plus the JSON around it.
MAX_CONTROL_BODY = MAX_ZIPPED * 4 // 3 + 64 * 1024
_DISCARD_CHUNK = 1 << 16


class HttpServer(http.server.ThreadingHTTPServer):
    """Threaded HTTP/1.1 server with Nagle's algorithm off on every connection.

    Without TCP_NODELAY a keep-alive client waits ~40 ms on delayed ACKs for every response
    sent in two segments (headers, then body): measured here, it dominates a warm invoke.
    """

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address, service: LambdaService):
        self.service = service
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        super().__init__(address, _Handler)

    def get_request(self):
        conn, address = super().get_request()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn, address

    def verify_request(self, request, client_address) -> bool:
        return self._slots.acquire(blocking=False)

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: HttpServer
    timeout = READ_TIMEOUT

    def log_message(self, format: str, *args: object) -> None:
        log.debug("local-lambda: " + format, *args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # -- plumbing ---------------------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        url = urllib.parse.urlsplit(self.path)
        segments = [urllib.parse.unquote(s) for s in url.path.strip("/").split("/")]
        query = urllib.parse.parse_qs(url.query)
        try:
            body = self._read_body(method, segments)
            if segments[:2] == ["_local", "code"] and method == "GET":
                self._code(segments[2] if len(segments) == 3 else "", query)
                return
            self.server.service.keyring.verify(method, self.path, self.headers, body)
            self._route(method, segments, query, body)
        except ApiError as exc:
            self._error(exc)
        except Exception:
            log.exception("local-lambda: internal error on %s %s", method, self.path)
            self._error(ApiError(500, "ServiceException",
                                 "local-lambda failed on this request; its log has the "
                                 "traceback"))

    def _read_body(self, method: str, segments: list[str]) -> bytes:
        """The request's body, once its declared length is known to be within limits."""
        raw = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            raise ApiError(411, "LengthRequiredException",
                           "send a Content-Length; chunked bodies are not accepted")
        if raw is None or raw.strip() == "":
            return b""
        if not raw.strip().isdigit():
            self.close_connection = True  # cannot tell where this request's body ends
            raise ApiError(400, "InvalidRequestContentException",
                           f"Content-Length must be a non-negative integer, got {raw!r}")
        length = int(raw)
        invoke = method == "POST" and len(segments) == 4 and segments[3] == "invocations"
        if invoke:
            event = self.headers.get("X-Amz-Invocation-Type") == "Event"
            limit = EVENT_PAYLOAD if event else SYNC_PAYLOAD
        else:
            limit = MAX_CONTROL_BODY
        if length > limit:
            self._discard(length)
            if invoke:
                kind = "Event" if limit == EVENT_PAYLOAD else "RequestResponse"
                raise ApiError(413, "RequestEntityTooLargeException",
                               f"{length} byte payload is too large for the {kind} "
                               f"invocation type (limit {limit} bytes)")
            raise ApiError(413, "RequestEntityTooLargeException",
                           f"Request must be smaller than {limit} bytes for this operation")
        return self.rfile.read(length) if length else b""

    def _discard(self, length: int) -> None:
        """Read and drop an oversized body, so the client gets the answer, not a reset."""
        while length > 0:
            chunk = self.rfile.read(min(length, _DISCARD_CHUNK))
            if not chunk:
                break
            length -= len(chunk)

    def _json(self, status: int, doc: object | None, headers: dict | None = None) -> None:
        data = b"" if doc is None else json.dumps(doc).encode()
        self._send(status, data, headers)

    def _send(self, status: int, data: bytes, headers: dict | None = None,
              content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if data:
            self.wfile.write(data)

    def _error(self, exc: ApiError) -> None:
        doc = {"Type": "Service" if exc.status >= 500 else "User", "message": exc.message}
        doc.update(exc.extra)
        self._json(exc.status, doc, {"x-amzn-ErrorType": exc.code})

    @staticmethod
    def _parse(body: bytes) -> dict:
        if not body:
            return {}
        try:
            doc = json.loads(body)
        except ValueError as exc:
            raise ApiError(400, "InvalidRequestContentException",
                           f"Could not parse request body into json: {exc}") from None
        if not isinstance(doc, dict):
            raise ApiError(400, "InvalidRequestContentException",
                           "The request body must be a JSON object")
        return doc

    # -- routes -----------------------------------------------------------------------------

    def _route(self, method: str, seg: list[str], query: dict, body: bytes) -> None:
        service = self.server.service
        first = lambda key: query.get(key, [None])[0]  # noqa: E731
        ref = qualify(seg[2], first("Qualifier")) if len(seg) >= 3 else ""
        match (method, seg[:2], len(seg), seg[3] if len(seg) > 3 else None):
            case ("POST", ["2015-03-31", "functions"], 2, _):
                self._json(201, service.create_function(self._parse(body)))
            case ("GET", ["2015-03-31", "functions"], 2, _):
                self._json(200, service.list_functions(first("Marker"), first("MaxItems"),
                                                       first("FunctionVersion")))
            case ("GET", ["2015-03-31", "functions"], 3, _):
                self._json(200, service.get_function(ref))
            case ("DELETE", ["2015-03-31", "functions"], 3, _):
                service.delete_function(ref)
                self._json(204, None)
            case ("GET", ["2015-03-31", "functions"], 4, "configuration"):
                self._json(200, service.get_configuration(ref))
            case ("PUT", ["2015-03-31", "functions"], 4, "configuration"):
                self._json(200, service.update_configuration(ref, self._parse(body)))
            case ("PUT", ["2015-03-31", "functions"], 4, "code"):
                self._json(200, service.update_code(ref, self._parse(body)))
            case ("POST", ["2015-03-31", "functions"], 4, "versions"):
                self._json(201, service.publish_version(ref, self._parse(body)))
            case ("GET", ["2015-03-31", "functions"], 4, "versions"):
                self._json(200, service.list_versions(ref, first("Marker"), first("MaxItems")))
            case ("POST", ["2015-03-31", "functions"], 4, "aliases"):
                self._json(201, service.create_alias(ref, self._parse(body)))
            case ("GET", ["2015-03-31", "functions"], 4, "aliases"):
                self._json(200, service.list_aliases(ref, first("FunctionVersion"),
                                                     first("Marker"), first("MaxItems")))
            case ("GET", ["2015-03-31", "functions"], 5, "aliases"):
                self._json(200, service.get_alias(ref, seg[4]))
            case ("PUT", ["2015-03-31", "functions"], 5, "aliases"):
                self._json(200, service.update_alias(ref, seg[4], self._parse(body)))
            case ("DELETE", ["2015-03-31", "functions"], 5, "aliases"):
                service.delete_alias(ref, seg[4])
                self._json(204, None)
            case ("POST", ["2015-03-31", "functions"], 4, "invocations"):
                result = service.invoke(
                    ref, body, self.headers.get("X-Amz-Invocation-Type") or "RequestResponse",
                    self.headers.get("X-Amz-Log-Type") or "None",
                    self.headers.get("X-Amz-Client-Context"))
                self._send(result.status, result.body, result.headers)
            case ("PUT", ["2017-10-31", "functions"], 4, "concurrency"):
                self._json(200, service.put_concurrency(ref, self._parse(body)))
            case ("DELETE", ["2017-10-31", "functions"], 4, "concurrency"):
                service.delete_concurrency(ref)
                self._json(204, None)
            case ("GET", ["2019-09-30", "functions"], 4, "concurrency"):
                self._json(200, service.get_concurrency(ref))
            case (_, ["2017-03-31", "tags"], 3, _):
                self._tags(method, seg[2], query, body)
            case ("POST", ["2018-10-31", "layers"], 4, "versions"):
                self._json(201, service.publish_layer(seg[2], self._parse(body)))
            case ("GET", ["2018-10-31", "layers"], 5, "versions"):
                self._json(200, service.get_layer(seg[2], seg[4]))
            case ("DELETE", ["2018-10-31", "layers"], 5, "versions"):
                service.delete_layer(seg[2], seg[4])
                self._json(204, None)
            case ("GET", ["2016-08-19", "account-settings"], 2, _):
                self._json(200, service.account_settings())
            case ("GET", ["_local", "functions"], 4, "logs"):
                try:
                    lines = int(first("lines") or 100)
                except ValueError:
                    raise ApiError(400, "InvalidParameterValueException",
                                   "lines must be an integer") from None
                self._json(200, {"lines": service.logs(ref, lines)})
            case ("POST", ["_local", "reset"], 2, _):
                service.reset()
                self._json(200, {})
            case _:
                raise ApiError(404, "UnknownOperationException",
                               f"local-lambda does not implement {method} /{'/'.join(seg)}")

    def _tags(self, method: str, arn: str, query: dict, body: bytes) -> None:
        service = self.server.service
        if method == "GET":
            self._json(200, service.list_tags(arn))
        elif method == "POST":
            service.tag(arn, self._parse(body).get("Tags") or {})
            self._json(204, None)
        elif method == "DELETE":
            service.untag(arn, query.get("tagKeys", []))
            self._json(204, None)
        else:
            raise ApiError(404, "UnknownOperationException", f"no {method} on tags")

    def _code(self, filename: str, query: dict) -> None:
        token = query.get("token", [""])[0]
        if not self.server.service.code_token_valid(filename, token):
            raise ApiError(403, "AccessDenied", "the code URL's token is missing or wrong")
        path = self.server.service.store.code_file(filename)
        if path is not None:
            self._send(200, path.read_bytes(), content_type="application/zip")
            return
        raise ApiError(404, "ResourceNotFoundException", f"no stored code {filename}")
