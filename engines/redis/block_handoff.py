"""Blocks of bytes handed from one thread to another, with a bound on what waits between.

The producer `put`s blocks and ends with `close()` or `fail(error)`; the consumer
iterates (its loop ends at close, or raises the producer's error) and calls `stop()`
when it gives up, after which `put` raises `HandoffStopped` instead of waiting for room
that would never come. Either side stopping therefore always wakes the other.
"""

import threading
from collections import deque
from collections.abc import Iterator


class HandoffStopped(Exception):
    """The consumer stopped taking blocks."""


class BlockHandoff:
    def __init__(self, max_bytes: int):
        self._max_bytes = max_bytes
        self._blocks: deque[bytes] = deque()
        self._waiting = 0  # bytes in _blocks
        self._ended = False
        self._error: BaseException | None = None
        self._stopped = False
        self._changed = threading.Condition()

    def put(self, block: bytes) -> None:
        """Queue `block`; wait while `max_bytes` are already queued (a block bigger than
        that still goes through once the queue is empty)."""
        with self._changed:
            while self._waiting and self._waiting + len(block) > self._max_bytes:
                if self._stopped:
                    break
                self._changed.wait()
            if self._stopped:
                raise HandoffStopped("the receiving side stopped")
            self._blocks.append(block)
            self._waiting += len(block)
            self._changed.notify_all()

    def close(self) -> None:
        """No more blocks: the consumer's loop ends once it has taken those queued."""
        self._end(None)

    def fail(self, error: BaseException) -> None:
        """No more blocks: the consumer's loop raises `error` (queued blocks are dropped)."""
        self._end(error)

    def _end(self, error: BaseException | None) -> None:
        with self._changed:
            if not self._ended:
                self._ended = True
                self._error = error
            self._changed.notify_all()

    def stop(self) -> None:
        """The consumer takes nothing more; a waiting or later `put` raises."""
        with self._changed:
            self._stopped = True
            self._blocks.clear()
            self._waiting = 0
            self._changed.notify_all()

    def __iter__(self) -> Iterator[bytes]:
        while True:
            with self._changed:
                while not self._blocks and not self._ended:
                    self._changed.wait()
                if self._error is not None:
                    raise self._error
                if not self._blocks:
                    return
                block = self._blocks.popleft()
                self._waiting -= len(block)
                self._changed.notify_all()
            yield block
