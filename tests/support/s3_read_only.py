"""Doors to the test S3 server: a loopback HTTP proxy that passes reads through and
answers every write with S3's 403 AccessDenied, as a bucket does for credentials that
may only read (moto enforces no policies of its own); with `misreport_checksums`, it
passes writes too and reports a wrong SHA-256 on every HEAD, as a server that stored
other bytes would; with `cut_bodies`, it passes writes and cuts that many object bodies
off half-way (the connection drops mid-download)."""

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self
from urllib.parse import urlsplit

from tests.support.processes import LOOPBACK, Server

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}
_WRONG_SHA256 = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="  # of no bytes at all
_DENIED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Access Denied</Message></Error>"
)


class ReadOnlyS3Proxy(Server):
    def __init__(
        self, upstream_url: str, *, misreport_checksums: bool = False, cut_bodies: int = 0
    ) -> None:
        self._upstream = urlsplit(upstream_url)
        self._misreport = misreport_checksums
        self.cuts_left = cut_bodies
        self._server: ThreadingHTTPServer | None = None
        super().__init__()

    @property
    def endpoint_url(self) -> str:
        assert self._server is not None
        return f"http://{LOOPBACK}:{self._server.server_address[1]}"

    def start(self) -> Self:
        if self._server is not None:
            return self
        upstream, misreport, proxy = self._upstream, self._misreport, self
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _pass(self) -> None:
                body = self._body()
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
                    if misreport and name.lower() == "x-amz-checksum-sha256":
                        value = _WRONG_SHA256
                    if name.lower() not in _HOP_BY_HOP:
                        self.send_header(name, value)
                if self.command == "HEAD":
                    self.send_header("Content-Length", answer.getheader("Content-Length") or "0")
                    self.end_headers()
                    return
                self.send_header("Content-Length", str(len(payload)))
                with lock:
                    cut = proxy.cuts_left > 0 and answer.status == 206 and len(payload) > 1
                    proxy.cuts_left -= cut
                if cut:
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(payload[: len(payload) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.end_headers()
                self.wfile.write(payload)

            def _deny(self) -> None:
                self._body()
                self.send_response(403)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(_DENIED)))
                self.end_headers()
                self.wfile.write(_DENIED)

            do_GET = do_HEAD = _pass
            if misreport or proxy.cuts_left:
                do_PUT = do_POST = do_DELETE = _pass
            else:
                do_PUT = do_POST = do_DELETE = _deny

        self._server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        super().close()
