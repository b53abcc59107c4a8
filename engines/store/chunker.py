"""Cutting file contents into chunks.

Small files are one chunk. Larger ones are cut where a rolling hash of the
last WINDOW bytes matches a mask (content-defined chunking, with FastCDC's
normalisation: a stricter mask before NORMAL_SIZE, a looser one after), so an
edit in the middle of a big file changes only the chunks around it. The hash
is a moving sum of a gear table derived from the master key: the boundaries
depend on the key, so chunk sizes do not reveal known content.

The hash is computed with numpy a slice at a time (a cumulative sum, then a
difference WINDOW apart), which bounds memory whatever the chunk sizes; numpy
releases the GIL, so chunking overlaps with compression on other threads.
numpy is imported only when a large file is cut.
"""

import hashlib
from collections.abc import Iterator
from typing import Any

MIN_SIZE = 512 * 1024
NORMAL_SIZE = 1024 * 1024
MAX_SIZE = 8 * 1024 * 1024
# Files up to this size are a single chunk (fixed-size chunking for small files).
SINGLE_CHUNK_LIMIT = NORMAL_SIZE
WINDOW = 64
READ_SIZE = 4 * 1024 * 1024
# The top bits of the hash depend on the whole window: masks test those.
STRICT_MASK = 0xFFFFFC00  # 22 bits: a cut is rare before NORMAL_SIZE
LOOSE_MASK = 0xFFFFC000  # 18 bits: and likelier after it
_SLICE = 1 << 20


def _numpy() -> Any:
    import numpy

    return numpy


class Chunker:
    """Cuts a stream into chunks; the same key and content always give the same cuts."""

    def __init__(self, gear_seed: bytes):
        np = _numpy()
        table = hashlib.shake_256(b"jarvis gear table\0" + gear_seed).digest(256 * 4)
        self._gear = np.frombuffer(table, dtype="<u4").astype(np.uint32)

    def chunks(self, read: Any) -> Iterator[bytes]:
        """Yield the chunks of what `read(size)` returns until it returns b""."""
        pending = bytearray()
        at_end = False
        while True:
            if not at_end:
                block = read(READ_SIZE)
                at_end = not block
                pending += block
            if not pending:
                return
            start = 0
            for end in self.cut_points(pending, at_end):
                yield bytes(pending[start:end])
                start = end
            del pending[:start]
            if at_end and not pending:
                return

    def cut_points(self, data: bytes | bytearray, final: bool) -> list[int]:
        """Chunk ends in `data` (which starts at a chunk boundary).

        Without `final`, the bytes after the last end are held back for the
        next call: more data may still move their cut.
        """
        size = len(data)
        if size <= MIN_SIZE:
            return [size] if final and size else []
        strict, loose = self._candidates(data)
        np = _numpy()
        cuts: list[int] = []
        start = 0
        while True:
            if size - start <= MIN_SIZE:
                if final and size > start:
                    cuts.append(size)
                return cuts
            end = _first_in(np, strict, start + MIN_SIZE + 1, min(start + NORMAL_SIZE, size))
            if end is None:
                if size < start + NORMAL_SIZE and not final:
                    return cuts
                end = _first_in(np, loose, start + NORMAL_SIZE, min(start + MAX_SIZE, size))
            if end is None:
                if size >= start + MAX_SIZE:
                    end = start + MAX_SIZE
                elif final:
                    end = size
                else:
                    return cuts
            cuts.append(end)
            start = end

    def _candidates(self, data: bytes | bytearray) -> tuple[Any, Any]:
        """Chunk ends (index after the byte) where the loose and the strict mask match."""
        np = _numpy()
        view = np.frombuffer(data, dtype=np.uint8)
        loose_mask, strict_mask = np.uint32(LOOSE_MASK), np.uint32(STRICT_MASK)
        found = []
        # No cut can come before MIN_SIZE, so hashing starts there.
        for low in range(MIN_SIZE, len(view), _SLICE):
            high = min(low + _SLICE, len(view))
            sums = np.take(self._gear, view[low - WINDOW : high])
            np.cumsum(sums, out=sums)  # uint32 arithmetic wraps, which the difference undoes
            # sums[WINDOW + i] - sums[i]: the last WINDOW bytes up to and including low + i.
            window_sums = sums[WINDOW:] - sums[:-WINDOW]
            hits = np.flatnonzero((window_sums & loose_mask) == 0)
            if len(hits):
                found.append((hits + (low + 1), window_sums[hits]))
        del view  # the caller resizes `data` next, which an exported buffer would forbid
        if not found:
            empty = np.empty(0, dtype=np.int64)
            return empty, empty
        positions = np.concatenate([p for p, _ in found])
        values = np.concatenate([v for _, v in found])
        return positions[(values & strict_mask) == 0], positions


def _first_in(np: Any, ends: Any, low: int, high: int) -> int | None:
    """The first of the sorted `ends` in [low, high], or None."""
    index = int(np.searchsorted(ends, low))
    if index < len(ends) and ends[index] <= high:
        return int(ends[index])
    return None
