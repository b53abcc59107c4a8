"""The ASGI response that streams a download `Body`, and cuts it short when it must.

Starlette's StreamingResponse cannot end a response without completing it; this one
does, on purpose: when the stored bytes fail their check while being sent (their SHA-256
is not the catalog's, or they end early), the last bytes are never sent, the reason is
logged, and the response ends unfinished, so the server closes the connection and the
client sees a body shorter than its Content-Length rather than a complete one. The
sync reads and hashing run in worker threads (anyio), one large block at a time, and a
client that goes away stops them (the disconnect is listened for, as Starlette does).

No zero-copy: uvicorn implements neither ASGI's `http.response.zerocopysend` nor
`http.response.pathsend`, and its socket is reached only through private attributes,
so `os.sendfile` is not used; each block is read into fresh bytes (never a reused
buffer: the transport may still hold the last one after `send` returns). uvicorn picks
uvloop and httptools when installed (uvicorn[standard]), the fastest of the four.
"""

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectSendStream
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from engines.plumbing.redaction import redact
from jarvis_tui.api.download.body import Body
from jarvis_tui.api.download.byte_ranges import ByteRange

logger = logging.getLogger("jarvis.api")
_END = object()
AHEAD = 2  # blocks read and hashed ahead of the one being sent


class CheckedStreamResponse(Response):
    def __init__(
        self,
        body: Body,
        wanted: ByteRange | None,
        *,
        status_code: int,
        headers: dict[str, str],
        media_type: str,
        head: bool,
        what: str,
    ) -> None:
        self.download = body
        self.wanted = wanted
        self.head = head
        self.what = what
        self.status_code = status_code
        self.media_type = media_type
        self.background = None
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            async with anyio.create_task_group() as group:

                async def stream() -> None:
                    await self._stream(send)
                    group.cancel_scope.cancel()

                group.start_soon(stream)
                while (await receive())["type"] != "http.disconnect":
                    pass
                group.cancel_scope.cancel()
        finally:
            self.download.close()

    async def _stream(self, send: Send) -> None:
        start: dict[str, Any] = {"type": "http.response.start", "status": self.status_code}
        await send({**start, "headers": self.raw_headers})
        if not self.head:
            chunks = self.download.chunks(self.wanted)
            # Reading and hashing the next blocks (a worker thread) overlap sending this one.
            ahead, ready = anyio.create_memory_object_stream[bytes | BaseException](AHEAD)
            try:
                async with anyio.create_task_group() as group:
                    group.start_soon(_read_ahead, chunks, ahead)
                    async with ready:
                        async for chunk in ready:
                            if isinstance(chunk, BaseException):
                                logger.error(
                                    "API: download of %s cut short: %s",
                                    self.what,
                                    redact(str(chunk)),
                                )
                                group.cancel_scope.cancel()
                                return  # unfinished: the server closes the connection
                            await send(
                                {"type": "http.response.body", "body": chunk, "more_body": True}
                            )
            finally:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(chunks.close)
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _read_ahead(chunks: Iterator[bytes], ahead: MemoryObjectSendStream) -> None:
    async with ahead:
        try:
            while (chunk := await anyio.to_thread.run_sync(next, chunks, _END)) is not _END:
                await ahead.send(chunk)
        except anyio.BrokenResourceError:
            return  # the response ended (the client went away)
        except Exception as error:  # every failure cuts the body short
            with contextlib.suppress(anyio.BrokenResourceError):
                await ahead.send(error)
