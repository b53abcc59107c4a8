"""A local HTTP receiver for webhook alerts (Slack, Pushover) with scripted answers."""

import contextlib
import json
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from tests.support.processes import LOOPBACK, Server


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return dict(urllib.parse.parse_qsl(self.body.decode(), keep_blank_values=True))


DEFAULT_ANSWER = (200, b'{"ok": true, "status": 1}', 0.0)


class WebhookReceiver(Server):
    """Records every request; `respond_with` makes it fail (or stall) on purpose. A body
    containing `{path}` echoes the request's path back, as careless servers do."""

    host = LOOPBACK

    def __init__(self) -> None:
        self.port = 0
        self.requests: list[ReceivedRequest] = []
        self._arrived = threading.Condition()
        self._answer = DEFAULT_ANSWER
        self._answer_times: int | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        super().__init__()

    def url(self, path: str = "/hook") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def respond_with(
        self, status: int, body: bytes = b"", *, times: int | None = None, delay: float = 0.0
    ) -> None:
        """Answer the next `times` requests (all, when None) with `status` after `delay` s."""
        with self._arrived:
            self._answer = (status, body, delay)
            self._answer_times = times

    def _record(self, request: ReceivedRequest) -> tuple[int, bytes, float]:
        with self._arrived:
            self.requests.append(request)
            self._arrived.notify_all()
            answer = self._answer
            if self._answer_times is not None:
                self._answer_times -= 1
                if self._answer_times <= 0:
                    self._answer, self._answer_times = DEFAULT_ANSWER, None
            return answer

    def wait_for_requests(self, count: int = 1, timeout: float = 10.0) -> list[ReceivedRequest]:
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.requests) >= count, timeout):
                raise TimeoutError(f"expected {count} requests, got {len(self.requests)}")
            return list(self.requests)

    def start(self) -> Self:
        if self._server is not None:
            return self
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {name.lower(): value for name, value in self.headers.items()}
                status, answer, delay = receiver._record(
                    ReceivedRequest(self.command, self.path, headers, body)
                )
                time.sleep(delay)
                answer = answer.replace(b"{path}", self.path.encode())
                # A client that gave up during `delay` is what a stall test wants, not an error.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((self.host, 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def close(self) -> None:
        self.stop()
        super().close()
