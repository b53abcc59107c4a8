"""A loopback proxy to the test S3 server that passes every request through, except
the first GET of an object whose key contains `stall_on`: it sends that body's first
half and then holds the connection open until released (a download hanging
mid-object, for a process to be killed during it), or with `hang=False` closes the
connection there (a download cut off mid-object)."""

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self
from urllib.parse import urlsplit

from tests.support.processes import LOOPBACK, Server

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


class StallingS3Proxy(Server):
    def __init__(self, upstream_url: str, stall_on: str, *, hang: bool = True) -> None:
        self._upstream = urlsplit(upstream_url)
        self.stall_on = stall_on
        self.hang = hang
        self.stalled = threading.Event()  # set once a body hangs half-sent
        self.release = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        super().__init__()

    @property
    def endpoint_url(self) -> str:
        assert self._server is not None
        return f"http://{LOOPBACK}:{self._server.server_address[1]}"

    def start(self) -> Self:
        if self._server is not None:
            return self
        upstream, proxy = self._upstream, self
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _pass(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                connection = http.client.HTTPConnection(
                    upstream.hostname, upstream.port, timeout=30
                )
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                    connection.request(self.command, self.path, body=body or None, headers=headers)
                    answer = connection.getresponse()
                    payload = answer.read()
                finally:
                    connection.close()
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in _HOP_BY_HOP:
                        self.send_header(name, value)
                if self.command == "HEAD":
                    self.send_header("Content-Length", answer.getheader("Content-Length") or "0")
                    self.end_headers()
                    return
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                with lock:
                    stall = (
                        self.command == "GET"
                        and proxy.stall_on in self.path
                        and len(payload) > 1
                        and not proxy.stalled.is_set()
                    )
                    if stall:
                        proxy.stalled.set()
                if stall:
                    self.wfile.write(payload[: len(payload) // 2])
                    self.wfile.flush()
                    if proxy.hang:
                        proxy.release.wait(120)
                    self.close_connection = True
                    return
                self.wfile.write(payload)

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _pass

        self._server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def close(self) -> None:
        self.release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        super().close()
