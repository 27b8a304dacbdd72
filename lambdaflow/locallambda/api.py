"""HTTP: Lambda's REST API (the operations lambdaflow uses) and a few local extras.

Request and response shapes follow botocore's service model for lambda (2015-03-31): the
function name travels in the path, Qualifier/Marker/MaxItems in the query string, Invoke's
options in ``X-Amz-*`` headers with the payload as the raw body, everything else as JSON.
Errors carry the code in ``x-amzn-ErrorType`` and ``{"Type", "message"}`` in the body, which
is what botocore parses into ``client.exceptions.<Code>``.

Extras, outside Lambda's API (prefix ``/_local``):

- ``GET /_local/functions/NAME/logs?lines=N`` — the function's last N log lines (default 100)
  as ``{"lines": [...]}``: START/END/REPORT lines and everything the sandboxes printed.
- ``POST /_local/reset`` — delete every function and stop every sandbox (test isolation).
- ``GET /_local/code/SHA.zip`` — a function's zip; GetFunction's ``Code.Location`` points here.
"""

from __future__ import annotations

import http.server
import json
import logging
import socket
import urllib.parse
import uuid

from lambdaflow.locallambda.apierror import ApiError
from lambdaflow.locallambda.service import LambdaService

log = logging.getLogger(__name__)


class HttpServer(http.server.ThreadingHTTPServer):
    """Threaded HTTP/1.1 server with Nagle's algorithm off on every connection.

    Without TCP_NODELAY a keep-alive client waits ~40 ms on delayed ACKs for every response
    sent in two segments (headers, then body): measured here, it dominates a warm invoke.
    """

    daemon_threads = True

    def __init__(self, address, service: LambdaService):
        self.service = service
        super().__init__(address, _Handler)

    def get_request(self):
        conn, address = super().get_request()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn, address


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: HttpServer

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
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True  # cannot tell where this request's body ends
            self._error(ApiError(400, "InvalidRequestContentException",
                                 "Content-Length must be an integer"))
            return
        body = self.rfile.read(length) if length else b""
        try:
            self._route(method, segments, query, body)
        except ApiError as exc:
            self._error(exc)
        except Exception:
            log.exception("local-lambda: internal error on %s %s", method, self.path)
            self._error(ApiError(500, "ServiceException",
                                 "local-lambda failed on this request; its log has the "
                                 "traceback"))

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
        ref = seg[2] if len(seg) >= 3 else ""
        if first("Qualifier"):
            ref = f"{ref}:{first('Qualifier')}"
        match (method, seg[:2], len(seg), seg[3] if len(seg) > 3 else None):
            case ("POST", ["2015-03-31", "functions"], 2, _):
                self._json(201, service.create_function(self._parse(body)))
            case ("GET", ["2015-03-31", "functions"], 2, _):
                self._json(200, service.list_functions(first("Marker"), first("MaxItems")))
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
            case ("POST", ["2015-03-31", "functions"], 4, "invocations"):
                result = service.invoke(
                    ref, body, self.headers.get("X-Amz-Invocation-Type") or "RequestResponse",
                    self.headers.get("X-Amz-Log-Type") or "None")
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
            case ("GET", ["_local", "code"], 3, _):
                self._code(seg[2])
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

    def _code(self, filename: str) -> None:
        for function in self.server.service.store.all():
            if function.code.zip_path.name == filename:
                self._send(200, function.code.zip_path.read_bytes(),
                           content_type="application/zip")
                return
        raise ApiError(404, "ResourceNotFoundException", f"no stored code {filename}")
