"""A local HTTP receiver for webhook alerts (Slack, Pushover) with scripted answers."""

import contextlib
import json
import threading
import time
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support.loopback_http import LoopbackHTTPServer, send


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


class WebhookReceiver(LoopbackHTTPServer):
    """Records every request; `respond_with` makes it fail (or stall) on purpose. A body
    containing `{path}` echoes the request's path back, as careless servers do."""

    def __init__(self) -> None:
        self.requests: list[ReceivedRequest] = []
        self._arrived = threading.Condition()
        self._answer = DEFAULT_ANSWER
        self._answer_times: int | None = None
        super().__init__()

    def url(self, path: str = "/hook") -> str:
        return f"{self.endpoint_url}{path}"

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

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in handler.headers.items()}
        status, answer, delay = self._record(
            ReceivedRequest(handler.command, handler.path, headers, body)
        )
        time.sleep(delay)
        answer = answer.replace(b"{path}", handler.path.encode())
        # A client that gave up during `delay` is what a stall test wants, not an error.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            send(handler, status, "application/json", answer)
