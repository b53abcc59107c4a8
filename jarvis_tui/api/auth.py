"""Bearer-token authentication, and slowing down an address that keeps guessing.

The token (JARVIS_API_TOKEN) is compared in constant time. A refused attempt is
logged with its address and why (no header, not a bearer token, a wrong token),
never with what was sent. After `FREE_FAILURES` refusals in `WINDOW_S` seconds an
address waits before each answer, doubling up to `MAX_DELAY_S`, until a request
from it authenticates or the window passes. Hand-written: the well-kept limiters
(slowapi and the like) count requests, not failures, and cannot tell a guesser from
a busy client.
"""

import asyncio
import hmac
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi import Request

from jarvis_tui.api.errors import ApiError

logger = logging.getLogger("jarvis.api")

FREE_FAILURES = 5
WINDOW_S = 300.0
FIRST_DELAY_S = 0.25
MAX_DELAY_S = 5.0
# Addresses remembered at most; the oldest are forgotten first (a flood of addresses
# must not grow the server's memory).
MAX_ADDRESSES = 10_000


@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0


@dataclass
class FailureThrottle:
    """Refusals per address; `delay_for` is how long that address waits now."""

    clock: Callable[[], float] = time.monotonic
    _failures: dict[str, _Failures] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def delay_for(self, address: str) -> float:
        with self._lock:
            failures = self._failures.get(address)
            if failures is None:
                return 0.0
            if self.clock() - failures.last > WINDOW_S:
                del self._failures[address]
                return 0.0
            over = failures.count - FREE_FAILURES
            return 0.0 if over < 0 else min(MAX_DELAY_S, FIRST_DELAY_S * 2**over)

    def failed(self, address: str) -> int:
        with self._lock:
            failures = self._failures.pop(address, None) or _Failures()
            failures.count += 1
            failures.last = self.clock()
            self._failures[address] = failures  # to the end: the newest
            while len(self._failures) > MAX_ADDRESSES:
                del self._failures[next(iter(self._failures))]
            return failures.count

    def succeeded(self, address: str) -> None:
        with self._lock:
            self._failures.pop(address, None)


class BearerAuth:
    """The dependency every route but the liveness probe has; None as token: no auth
    (`--insecure-no-auth`, loopback only)."""

    def __init__(self, token: str | None, throttle: FailureThrottle | None = None):
        self._token = None if token is None else token.encode()
        self.throttle = throttle or FailureThrottle()

    async def __call__(self, request: Request) -> None:
        if self._token is None:
            return
        address = request.client.host if request.client else "unknown"
        delay = self.throttle.delay_for(address)
        if delay:
            await asyncio.sleep(delay)
        reason = self._refusal(request.headers.getlist("authorization"))
        if reason is None:
            self.throttle.succeeded(address)
            return
        count = self.throttle.failed(address)
        logger.warning(
            "API: refused %s %s from %s: %s (%d refusal(s) in a row)",
            request.method,
            request.url.path,
            address,
            reason,
            count,
        )
        raise ApiError(401, "unauthorized", f"{reason}; send Authorization: Bearer <token>")

    def _refusal(self, headers: list[str]) -> str | None:
        if not headers:
            return "no bearer token"
        if len(headers) > 1:  # which one a proxy or the client meant is anyone's guess
            return "several Authorization headers"
        header = headers[0]
        scheme, _, credentials = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            return "the Authorization header is not a bearer token"
        assert self._token is not None
        try:
            given = credentials.strip().encode("ascii")
        except UnicodeEncodeError:
            return "wrong token"
        return None if hmac.compare_digest(given, self._token) else "wrong token"
