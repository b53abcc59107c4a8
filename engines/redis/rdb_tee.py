"""Counting an RDB while it streams past: the bytes go on unchanged, and a thread reads
their structure through a pipe (so a big key never sits in memory)."""

import os
import threading
from collections.abc import Iterable, Iterator

from engines.plumbing.processes import widen_pipe
from engines.redis.rdb_format import RdbFormatError, RdbSummary, read_summary

PIPE_BUFFER = 1 << 20


class SummarisingTee:
    """Iterate to pass `blocks` through; then `summary()` or `error`."""

    def __init__(self, blocks: Iterable[bytes], *, now_ms: int | None = None):
        self._blocks = blocks
        self._now_ms = now_ms
        self._summary: RdbSummary | None = None
        self.error: RdbFormatError | None = None
        self._thread: threading.Thread | None = None
        self._write_fd: int | None = None

    def _read(self, read_fd: int) -> None:
        with os.fdopen(read_fd, "rb", buffering=PIPE_BUFFER) as pipe:
            try:
                self._summary = read_summary(pipe, now_ms=self._now_ms)
            except RdbFormatError as error:
                self.error = error
            # Drain whatever follows so the writer never blocks on a reader that stopped.
            while pipe.read(PIPE_BUFFER):
                pass

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

    def summary(self) -> RdbSummary | None:
        """The counts, or None when the structure could not be read (see `error`)."""
        self._finish()
        if self._summary is not None and not self._summary.complete:
            return None
        return self._summary
