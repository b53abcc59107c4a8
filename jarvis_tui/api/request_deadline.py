"""A deadline for receiving a whole request, which uvicorn does not have.

uvicorn closes a keep-alive connection idle between requests (`timeout_keep_alive`)
but has no timeout while a request arrives: the keep-alive timer is cancelled by every
byte received and never armed before the first request, so a client that connects and
sends nothing, half its headers, or half its body keeps its connection, and its file
descriptor, forever (Slowloris; see uvicorn PRs #1092 and #1192, and the same
workaround in xorbitsai/inference#5213). Requests here are headers and at most 1 MiB
of JSON (`MAX_BODY_BYTES`), so each must have arrived whole within
`REQUEST_DEADLINE_S` of its first byte (of the connection, for the first one); the
response's time is not counted, so a long download is never cut.

A subclass of uvicorn's own protocol (httptools when installed, else h11), relying on
their shared `cycle` (`more_body` false once the request's body is in,
`response_complete`) only.
"""

import asyncio
from typing import Any

from uvicorn.protocols.http.auto import AutoHTTPProtocol

REQUEST_DEADLINE_S = 10.0


class DeadlineHTTPProtocol(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._deadline is None and self._between_requests():
            self._arm()  # the first bytes of the next request on this connection
        super().data_received(data)
        cycle = getattr(self, "cycle", None)
        if cycle is not None and not cycle.response_complete and not cycle.more_body:
            self._disarm()  # the request is in: the response may take its time

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _between_requests(self) -> bool:
        cycle = getattr(self, "cycle", None)
        return cycle is None or cycle.response_complete

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(REQUEST_DEADLINE_S, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()
