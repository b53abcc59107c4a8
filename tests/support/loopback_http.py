"""A threaded HTTP server on a free loopback port for the tests' stand-ins (S3 proxies,
a role-credentials endpoint): each request is answered on its own thread by the owner's
`answer(handler)`; a context manager, and closed at interpreter exit like every Server."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

from tests.support.processes import LOOPBACK, Server


class LoopbackHTTPServer(Server):
    def __init__(self) -> None:
        self._server: ThreadingHTTPServer | None = None
        super().__init__()

    @property
    def endpoint_url(self) -> str:
        assert self._server is not None
        return f"http://{LOOPBACK}:{self._server.server_address[1]}"

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        raise NotImplementedError

    def start(self) -> Self:
        if self._server is None:
            self._server = ThreadingHTTPServer((LOOPBACK, 0), _handler_for(self))
            self._server.daemon_threads = True
            # A short poll: close() waits for the serving loop to notice, once per test.
            serve = self._server.serve_forever
            threading.Thread(target=serve, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        super().close()


def send(handler: BaseHTTPRequestHandler, status: int, content_type: str, body: bytes) -> None:
    """A whole answer; no body to a HEAD, whose Content-Length still says its size."""
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(body)


def _handler_for(owner: LoopbackHTTPServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def _answer(self) -> None:
            owner.answer(self)

        do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _answer

    return Handler
