"""A real HTTP proxy on 127.0.0.1 that stands between boto3 and moto and misbehaves on cue:
answers an S3 error (503 SlowDown, 500, 403 …), resets the connection, or cuts a response body
short. moto's server cannot produce these failures itself; going through a socket keeps the
retry tests honest about what botocore actually raises."""

from __future__ import annotations

import http.client
import socket
import struct
import threading
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Fault:
    method: str | None          # only requests with this HTTP method (None: any)
    status: int = 0             # answer this status with an S3 error body ...
    code: str = ""
    reset: bool = False         # ... or reset the connection without answering ...
    cut_after: int | None = None  # ... or forward, but break the body after this many bytes


class FaultProxy:
    def __init__(self, upstream: str):
        parsed = urllib.parse.urlsplit(upstream)
        self.upstream = (parsed.hostname, parsed.port)
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str, dict]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,),
                                        daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FaultProxy":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail(self, times: int = 1, method: str | None = None, **how) -> None:
        with self._lock:
            self.faults.extend(Fault(method, **how) for _ in range(times))

    def take(self, method: str) -> Fault | None:
        with self._lock:
            for i, fault in enumerate(self.faults):
                if fault.method in (None, method):
                    return self.faults.pop(i)
        return None

    def seen(self, method: str) -> list[tuple[str, str, dict]]:
        return [r for r in self.requests if r[0] == method]


def _handler(proxy: FaultProxy):
    class Handler(BaseHTTPRequestHandler):
        # HTTP/1.1, so that botocore's "Expect: 100-continue" on PUT gets its answer at once
        # instead of waiting a second for it.
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                out = b""
                while True:
                    size = int(self.rfile.readline().split(b";")[0], 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return out
                    out += self.rfile.read(size)
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _reset(self) -> None:
            # SO_LINGER 0: close() sends RST, as a load balancer dropping a connection does.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()

        def _any(self) -> None:
            body = self._body()
            headers = {k: v for k, v in self.headers.items()
                       if k.lower() not in ("transfer-encoding", "connection")}
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                headers["Content-Length"] = str(len(body))
            proxy.requests.append((self.command, self.path, dict(self.headers)))
            fault = proxy.take(self.command)
            if fault is not None and fault.reset:
                return self._reset()
            if fault is not None and fault.status:
                xml = (f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{fault.code}</Code>"
                       f"<Message>injected by the test proxy</Message></Error>").encode()
                self.send_response(fault.status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(xml)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(xml)
                return
            conn = http.client.HTTPConnection(*proxy.upstream, timeout=60)
            try:
                conn.request(self.command, self.path, body=body, headers=headers)
                answer = conn.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "server", "date",
                                           "content-length"):
                        self.send_header(key, value)
                length = answer.getheader("Content-Length")
                self.send_header("Content-Length", length if length is not None else len(data))
                self.end_headers()
            finally:
                conn.close()
            if self.command == "HEAD":
                return
            if fault is not None and fault.cut_after is not None:
                self.wfile.write(data[:fault.cut_after])
                self.wfile.flush()
                return self._reset()
            self.wfile.write(data)

        do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _any

    return Handler
