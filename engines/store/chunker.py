"""Cutting file contents into chunks.

Small files are one chunk. Larger ones are cut by FastCDC: a keyed Gear rolling
hash, `fp = (fp << 1) + gear[byte]` in 64 bits, is tested against a stricter
mask before NORMAL_SIZE and a looser one after it (normalised chunking), so an
edit in the middle of a big file changes only the chunks around it. The gear
table is derived from the master key: boundaries depend on the key, so chunk
sizes do not reveal known content, and each byte's weight depends on its place
in the window (a shift per byte), so reordering bytes moves the cuts.

After 64 bytes the fingerprint depends on the last 64 bytes only (older ones are
shifted out), and no cut is tested before MIN_SIZE, so it is computed with numpy
a slice at a time, each position's fingerprint built from its window by doubling:
`h_2m[i] = h_m[i] + (h_m[i - m] << m)`, six shifted additions from the gear values
to the 64-byte window. Slices are small enough to stay in cache and their buffers
are reused, which bounds memory whatever the chunk sizes; numpy releases the GIL,
so chunking overlaps with compression on other threads. numpy is imported only
when a large file is cut.
"""

import hashlib
from collections.abc import Iterator
from typing import Any

MIN_SIZE = 512 * 1024
NORMAL_SIZE = 1024 * 1024
MAX_SIZE = 8 * 1024 * 1024
# Files up to this size are a single chunk (fixed-size chunking for small files).
SINGLE_CHUNK_LIMIT = NORMAL_SIZE
WINDOW = 64  # bytes that a 64-bit Gear fingerprint depends on
READ_SIZE = 4 * 1024 * 1024
# The masks test the top bits, which depend on the whole window. The strict mask holds
# the loose one, so a strict match is also a loose one; 22 and 18 bits keep the chunk
# sizes of before. A match of top bits is a comparison: `fp & mask == 0` is `fp < limit`.
STRICT_BITS, LOOSE_BITS = 22, 18  # a cut is rare before NORMAL_SIZE, likelier after it
STRICT_MASK = ((1 << STRICT_BITS) - 1) << (64 - STRICT_BITS)
LOOSE_MASK = ((1 << LOOSE_BITS) - 1) << (64 - LOOSE_BITS)
_STRICT_LIMIT, _LOOSE_LIMIT = 1 << (64 - STRICT_BITS), 1 << (64 - LOOSE_BITS)
_SLICE = 1 << 15  # 256 KiB of fingerprints per buffer: they stay in cache
_TABLE_LABEL = b"jarvis gear table v2 (64-bit gear, FastCDC)\0"


def _numpy() -> Any:
    import numpy

    return numpy


def gear_table(gear_seed: bytes) -> Any:
    """256 keyed 64-bit gear values."""
    np = _numpy()
    table = hashlib.shake_256(_TABLE_LABEL + gear_seed).digest(256 * 8)
    return np.frombuffer(table, dtype="<u8").astype(np.uint64)


class Chunker:
    """Cuts a stream into chunks; the same key and content always give the same cuts."""

    def __init__(self, gear_seed: bytes):
        self._gear = gear_table(gear_seed)

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

    def fingerprints(self, data: bytes | bytearray, low: int, high: int) -> Any:
        """The Gear fingerprint after each byte of data[low:high] (low >= WINDOW - 1):
        what `fp = (fp << 1) + gear[byte]` (64 bits) holds there, whatever came
        more than WINDOW bytes before."""
        np = _numpy()
        view = np.frombuffer(data, dtype=np.uint8)
        size = high - low + WINDOW - 1
        one, two = np.empty(size, dtype=np.uint64), np.empty(size, dtype=np.uint64)
        return self._window_hashes(np, view, low, high, one, two).copy()

    def _window_hashes(self, np: Any, view: Any, low: int, high: int, one: Any, two: Any) -> Any:
        """Fingerprints at low..high-1, computed in the buffers `one` and `two`."""
        size = high - low + WINDOW - 1
        hashes = one[:size]
        np.take(self._gear, view[low - WINDOW + 1 : high], out=hashes)
        spare = two
        for step in _STEPS:
            # hashes[i] covers the `step` bytes ending at i; doubled[i], 2 * step of them.
            size -= step
            doubled = spare[:size]
            np.left_shift(hashes[:-step], np.uint64(step), out=doubled)
            np.add(doubled, hashes[step:], out=doubled)
            spare = one if spare is two else two
            hashes = doubled
        return hashes

    def _candidates(self, data: bytes | bytearray) -> tuple[Any, Any]:
        """Chunk ends (index after the byte) where the strict and the loose mask match."""
        np = _numpy()
        view = np.frombuffer(data, dtype=np.uint8)
        loose_limit, strict_limit = np.uint64(_LOOSE_LIMIT), np.uint64(_STRICT_LIMIT)
        one = np.empty(_SLICE + WINDOW, dtype=np.uint64)
        two = np.empty(_SLICE + WINDOW, dtype=np.uint64)
        found = []
        # No cut can come before MIN_SIZE, so hashing starts there.
        for low in range(MIN_SIZE, len(view), _SLICE):
            high = min(low + _SLICE, len(view))
            hashes = self._window_hashes(np, view, low, high, one, two)
            hits = np.flatnonzero(hashes < loose_limit)
            if len(hits):
                found.append((hits + (low + 1), hashes[hits]))
        del view  # the caller resizes `data` next, which an exported buffer would forbid
        if not found:
            empty = np.empty(0, dtype=np.int64)
            return empty, empty
        positions = np.concatenate([p for p, _ in found])
        values = np.concatenate([v for _, v in found])
        return positions[values < strict_limit], positions


_STEPS = (1, 2, 4, 8, 16, 32)  # doubling from one byte to WINDOW bytes


def _first_in(np: Any, ends: Any, low: int, high: int) -> int | None:
    """The first of the sorted `ends` in [low, high], or None."""
    index = int(np.searchsorted(ends, low))
    if index < len(ends) and ends[index] <= high:
        return int(ends[index])
    return None
