"""Counting an RDB while it streams past: the bytes go on unchanged, and a thread reads
their structure through a pipe (so a big key never sits in memory). Given a
`BlockHandoff`, that thread also writes every key as JSON lines into it (the export of
exactly this snapshot) and ends it: closed after the RDB's end marker, failed with
`WalkStopped` when the walk stopped before it."""

import os
import threading
from collections.abc import Iterable, Iterator

from engines.plumbing.processes import widen_pipe
from engines.redis.block_handoff import BlockHandoff
from engines.redis.rdb_format import RdbSummary, read_summary

PIPE_BUFFER = 1 << 20


class WalkStopped(Exception):
    """The walk ended before the RDB's end: the JSON lines handed on so far are void."""


class SummarisingTee:
    """Iterate to pass `blocks` through; then `summary()` or `error`."""

    def __init__(
        self,
        blocks: Iterable[bytes],
        *,
        now_ms: int | None = None,
        json: BlockHandoff | None = None,
    ):
        self._blocks = blocks
        self._now_ms = now_ms
        self._json = json
        self._summary: RdbSummary | None = None
        # RdbFormatError: the structure could not be read (damaged, cut, or newer than
        # this reader); anything else stopped the walk from outside (the JSON side gave up).
        self.error: Exception | None = None
        self._thread: threading.Thread | None = None
        self._write_fd: int | None = None

    def _read(self, read_fd: int) -> None:
        with os.fdopen(read_fd, "rb", buffering=PIPE_BUFFER) as pipe:
            try:
                emit = None if self._json is None else self._json.put
                self._summary = read_summary(pipe, now_ms=self._now_ms, emit=emit)
            except Exception as error:
                self.error = error
            finally:
                self._end_json()
            # Drain whatever follows so the writer never blocks on a reader that stopped.
            while pipe.read(PIPE_BUFFER):
                pass

    def _end_json(self) -> None:
        if self._json is None:
            return
        if self._summary is not None and self._summary.complete:
            self._json.close()
        else:
            reason = self.error or "the walk ended without reaching the end marker"
            self._json.fail(WalkStopped(f"the RDB's structure could not be read: {reason}"))

    def __iter__(self) -> Iterator[bytes]:
        read_fd, self._write_fd = os.pipe()
        widen_pipe(self._write_fd, PIPE_BUFFER)
        self._thread = threading.Thread(target=self._read, args=(read_fd,), daemon=True)
        self._thread.start()
        try:
            for block in self._blocks:
                view = memoryview(block)
                while view:
                    written = os.write(self._write_fd, view)
                    view = view[written:]
                yield block
        finally:
            self._finish()

    def _finish(self) -> None:
        if self._write_fd is not None:
            os.close(self._write_fd)
            self._write_fd = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def walked(self) -> RdbSummary | None:
        """The summary once the walk reached the RDB's end marker, else None; unlike
        `summary()` it does not wait for the walk (any thread may ask once the hand-off
        closed, which happens only after that)."""
        summary = self._summary
        return summary if summary is not None and summary.complete else None

    def summary(self) -> RdbSummary | None:
        """The counts, or None when the structure could not be read (see `error`)."""
        self._finish()
        if self._summary is not None and not self._summary.complete:
            return None
        return self._summary
