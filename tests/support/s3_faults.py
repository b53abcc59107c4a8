"""A loopback HTTP proxy in front of the test S3 server that misbehaves on request, as a
real S3 or the network between does now and then:

- `fail(n)`: answer the next `n` requests (of the given methods) with an S3 error,
  503 SlowDown unless told otherwise (500 InternalError, 403 AccessDenied...);
  `fail_fraction(f, seed=...)`: answer about that fraction of them so, each decision
  drawn from the seed, the request line and how often that line was seen before, so the
  same requests fail in every run whatever order the client's threads send them in
  (the server's random multipart upload id left out of the line);
- `drop_uploads(n)`: read half of the next `n` request bodies and close the connection;
- `drop_downloads(n)`: send half of the next `n` object bodies (200 or 206) and close;
- `stall(methods)`: hold those requests unanswered until `heal()` (or the proxy closes);
- `echo`: text every error body carries (a server that echoes what it was sent: the
  tests put the secret key there), and every error body echoes the request's
  Authorization header too.

`heal()` ends every fault; `served` counts the faults served by kind.
"""

import hashlib
import random
import threading
from collections import Counter
from typing import Self
from urllib.parse import parse_qsl, urlencode, urlsplit

from tests.support.s3_proxy import (
    FORWARD,
    Answer,
    Cut,
    HangUp,
    Request,
    Response,
    S3Proxy,
    s3_error_body,
)

WRITES = ("PUT", "POST")
_MESSAGES = {
    "SlowDown": "Please reduce your request rate.",
    "InternalError": "We encountered an internal error. Please try again.",
    "AccessDenied": "Access Denied",
}


def without_retry_waits(monkeypatch) -> None:
    """botocore's standard mode retries at once instead of after its jittered waits (up
    to 1 + 2 + 4 s for each object answered SlowDown): the tests check how often a call
    is tried and what it ends in, and the waits were most of their running time."""
    from botocore.retries.standard import ExponentialBackoff

    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0.0)


class FaultyS3Proxy(S3Proxy):
    upstream_timeout = 60.0

    def __init__(self, upstream_url: str, *, echo: str = "") -> None:
        self.echo = echo
        self.served: Counter[str] = Counter()
        self.requests: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._healed = threading.Event()
        self.heal()
        super().__init__(upstream_url)

    # --- faults ------------------------------------------------------------------------

    def fail(self, count: float, status: int = 503, code: str = "SlowDown", methods=WRITES) -> Self:
        """The next `count` requests of `methods` get S3's error `code` (math.inf: all)."""
        with self._lock:
            self._errors_left, self._error = count, (status, code, tuple(methods))
            self._fraction = 0.0
        return self

    def fail_fraction(
        self, fraction: float, *, seed: int, status: int = 503, code: str = "SlowDown",
        methods=WRITES,
    ) -> Self:  # fmt: skip
        with self._lock:
            self._fraction, self._seed = fraction, seed
            self._error, self._errors_left = (status, code, tuple(methods)), 0
            self._seen: Counter[str] = Counter()
        return self

    def drop_uploads(self, count: int) -> Self:
        with self._lock:
            self._upload_drops_left = count
        return self

    def drop_downloads(self, count: int) -> Self:
        with self._lock:
            self._download_drops_left = count
        return self

    def stall(self, methods=("GET", "HEAD", "PUT", "POST", "DELETE")) -> Self:
        with self._lock:
            self._stalled = tuple(methods)
            self._healed.clear()
        return self

    def heal(self) -> Self:
        with self._lock:
            self._errors_left, self._fraction = 0, 0.0
            self._error = (503, "SlowDown", WRITES)
            self._seed, self._seen = 0, Counter()
            self._upload_drops_left = self._download_drops_left = 0
            self._stalled: tuple[str, ...] = ()
            self._healed.set()
        return self

    # --- the decisions, one per request ---------------------------------------------------

    def decide(self, request: Request) -> Answer | HangUp | None:
        method = request.method
        with self._lock:
            self.requests[method] += 1
            if method in self._stalled:
                self.served["stall"] += 1
                return HangUp(read=0.0, until=self._healed)
            status, code, methods = self._error
            if method in methods and self._errors_left > 0:
                self._errors_left -= 1
                self.served[code] += 1
                return self._error_answer(request, status, code)
            if method in methods and self._fraction:
                line = f"{method} {_without_upload_id(request.path)}"
                self._seen[line] += 1
                draw = f"{self._seed}:{line}:{self._seen[line]}".encode()
                chance = random.Random(hashlib.sha256(draw).digest()).random()
                if chance < self._fraction:
                    self.served[code] += 1
                    return self._error_answer(request, status, code)
            if method == "PUT" and self._upload_drops_left > 0:
                self._upload_drops_left -= 1
                self.served["dropped upload"] += 1
                return HangUp(read=0.5)
            return FORWARD

    def deliver(self, request: Request, response: Response) -> Cut | None:
        with self._lock:
            cut = (
                request.method == "GET"
                and self._download_drops_left > 0
                and response.status in (200, 206)
                and len(response.payload) > 1
            )
            if cut:
                self._download_drops_left -= 1
                self.served["dropped download"] += 1
        return Cut() if cut else None

    def _error_answer(self, request: Request, status: int, code: str) -> Answer:
        message = f"{_MESSAGES.get(code, code)} {self.echo}".strip()
        authorization = request.headers.get("Authorization", "")
        body = s3_error_body(code, message, Authorization=authorization, RequestId="jarvis-faults")
        return Answer(status, body)

    def close(self) -> None:
        self._healed.set()  # stalled requests give up at once
        super().close()


def _without_upload_id(path: str) -> str:
    """The request line less the server's random multipart upload id."""
    parts = urlsplit(path)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "uploadId"]
    return f"{parts.path}?{urlencode(query)}"
