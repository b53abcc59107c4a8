"""A loopback HTTP proxy in front of the test S3 server: it forwards each request to the
upstream and returns its answer, unless a subclass's hooks say otherwise, so each
misbehaving S3 of the tests is a hook or two:

- `decide(request)`, before the upstream is asked: `FORWARD`, an `Answer` of its own (an
  S3 error: `ACCESS_DENIED`...), or `HangUp` (no answer at all, maybe after a stall);
- `deliver(request, response)`, once the upstream answered (HEAD included): may rewrite
  the response's headers, and returns None (the whole answer) or `Cut` (half the body,
  then the connection drops, maybe after a hang).
"""

import http.client
import threading
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qsl, urlsplit

from tests.support.loopback_http import LoopbackHTTPServer, send

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}
HOLD_CAP_S = 120.0  # a held request is dropped after this even if nobody releases it


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: Message

    @property
    def query(self) -> set[str]:
        """The names in the query string: `logging` for GetBucketLogging."""
        return {name for name, _ in parse_qsl(urlsplit(self.path).query, keep_blank_values=True)}


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    payload: bytes


@dataclass(frozen=True)
class Answer:
    """This answer (an S3 error's XML) instead of the upstream's."""

    status: int
    body: bytes


@dataclass(frozen=True)
class HangUp:
    """No answer: read `read` (a fraction) of the request body, wait for `until` if
    given, then close the connection."""

    read: float = 1.0
    until: threading.Event | None = None


@dataclass(frozen=True)
class Cut:
    """The upstream's headers and the first half of its body, then wait for `hold` if
    given, then close the connection."""

    hold: threading.Event | None = None


FORWARD = None


def s3_error_body(code: str, message: str, **more: str) -> bytes:
    fields = "".join(f"<{name}>{value}</{name}>" for name, value in more.items())
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>{fields}</Error>"
    ).encode()


ACCESS_DENIED = Answer(403, s3_error_body("AccessDenied", "Access Denied"))


class S3Proxy(LoopbackHTTPServer):
    upstream_timeout = 30.0

    def __init__(self, upstream_url: str) -> None:
        self.upstream = urlsplit(upstream_url)
        super().__init__()

    def decide(self, request: Request) -> Answer | HangUp | None:
        return FORWARD

    def deliver(self, request: Request, response: Response) -> Cut | None:
        return None

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        request = Request(handler.command, handler.path, handler.headers)
        decision = self.decide(request)
        length = int(handler.headers.get("Content-Length") or 0)
        if isinstance(decision, HangUp):
            handler.rfile.read(int(length * decision.read))
            if decision.until is not None:
                decision.until.wait(HOLD_CAP_S)
            handler.close_connection = True
            return
        body = handler.rfile.read(length)
        if isinstance(decision, Answer):
            send(handler, decision.status, "application/xml", decision.body)
            return
        response = self._forward(request, body)
        cut = self.deliver(request, response)
        handler.send_response(response.status)
        for name, value in response.headers:
            if name.lower() not in _HOP_BY_HOP:
                handler.send_header(name, value)
        if request.method == "HEAD":
            upstream_length = {n.lower(): v for n, v in response.headers}.get("content-length")
            handler.send_header("Content-Length", upstream_length or "0")
            handler.end_headers()
            return
        handler.send_header("Content-Length", str(len(response.payload)))
        if cut is None:
            handler.end_headers()
            handler.wfile.write(response.payload)
            return
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.write(response.payload[: len(response.payload) // 2])
        handler.wfile.flush()
        if cut.hold is not None:
            cut.hold.wait(HOLD_CAP_S)
        handler.close_connection = True

    def _forward(self, request: Request, body: bytes) -> Response:
        upstream = self.upstream
        connection = http.client.HTTPConnection(
            upstream.hostname, upstream.port, timeout=self.upstream_timeout
        )
        try:
            headers = {k: v for k, v in request.headers.items() if k.lower() != "connection"}
            connection.request(request.method, request.path, body=body or None, headers=headers)
            answer = connection.getresponse()
            return Response(answer.status, answer.getheaders(), answer.read())
        finally:
            connection.close()
