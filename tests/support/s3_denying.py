"""A loopback HTTP proxy to the test S3 server that answers S3's 403 AccessDenied to the
bucket sub-resources it is told to deny (`("GET", "logging")` is GetBucketLogging), as
AWS does for credentials whose policy lacks that permission, and passes everything else
(moto enforces no policies of its own)."""

import http.client
import threading
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self
from urllib.parse import parse_qsl, urlsplit

from tests.support.processes import LOOPBACK, Server

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}
_DENIED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Access Denied</Message></Error>"
)


class DenyingS3Proxy(Server):
    def __init__(self, upstream_url: str, denied: Iterable[tuple[str, str]]) -> None:
        self._upstream = urlsplit(upstream_url)
        self.denied = frozenset(denied)
        self.refused: list[tuple[str, str]] = []  # what it answered 403 to, in order
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

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                query = {name for name, _ in parse_qsl(urlsplit(self.path).query, True)}
                refused = {(self.command, name) for name in query} & proxy.denied
                if refused:
                    proxy.refused.extend(sorted(refused))
                    self.send_response(403)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(_DENIED)))
                    self.end_headers()
                    self.wfile.write(_DENIED)
                    return
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
                length = answer.getheader("Content-Length") if self.command == "HEAD" else None
                self.send_header("Content-Length", length or str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _handle

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
