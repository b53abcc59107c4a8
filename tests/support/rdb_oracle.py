"""Running the RDB walk in C and in Python (its twin) on the same bytes and comparing what
they say: the JSON key lines they emit, byte for byte, and the summary; or the error.

The C walk reads through `Pieces` (a pipe gives what it has: pieces of chosen sizes),
Python from memory. Errors after emission started throw the JSON away (the caller does),
so an error outcome is the message alone.
"""

import io
import sys
from collections.abc import Callable, Sequence
from typing import Any

from engines.redis.rdb_format import RdbFormatError, read_summary, walk_in_python

NOW_MS = 1_800_000_000_000


class Pieces(io.RawIOBase):
    """`data` read back in pieces of the sizes given, in turn; the header (read first,
    exactly) whole."""

    def __init__(self, data: bytes, sizes: Sequence[int]) -> None:
        self._data, self._sizes, self._at, self._reads = data, sizes, 0, 0

    def read(self, size: int = -1) -> bytes:
        if self._at:
            size = min(size, self._sizes[self._reads % len(self._sizes)])
            self._reads += 1
        piece = self._data[self._at : self._at + size]
        self._at += len(piece)
        return piece


def outcome(walk: Callable[..., Any], stream: Any, now_ms: int | None, emit: bool = True) -> Any:
    """("ok", the lines emitted, the summary) or ("error", "Kind: message"). A block that
    does not end with a whole line is a finding of its own."""
    blocks: list[bytes] = []
    try:
        if emit:
            summary = walk(stream, now_ms=now_ms, emit=blocks.append)
        else:
            summary = walk(stream, now_ms=now_ms)
    except RdbFormatError as error:
        return ("error", f"RdbFormatError: {error}")
    except Exception as error:  # any other kind is a finding, and must match too
        return ("error", f"{type(error).__name__}: {error}")
    torn = [i for i, block in enumerate(blocks) if not block.endswith(b"\n")]
    if torn:
        return ("error", f"blocks {torn} of {len(blocks)} do not end with a whole line")
    return ("ok", b"".join(blocks), summary)


def in_c(data: bytes, now_ms: int | None = NOW_MS, pieces: Sequence[int] = (1 << 20,),
         emit: bool = True) -> Any:  # fmt: skip
    return outcome(read_summary, Pieces(data, pieces), now_ms, emit)


def in_python(data: bytes, now_ms: int | None = NOW_MS, emit: bool = True) -> Any:
    return outcome(walk_in_python, io.BytesIO(data), now_ms, emit)


def short(answer: Any) -> Any:
    """An outcome small enough for an assertion message."""
    if answer[0] == "error":
        return answer
    return ("ok", f"{len(answer[1])} bytes of JSON", answer[2])


def first_difference(a: bytes, b: bytes) -> str:
    at = next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )
    start = a.rfind(b"\n", 0, at) + 1
    return (f"first difference at byte {at} (lengths {len(a)}, {len(b)}):\n"
            f"  {a[start : at + 80]!r}\n  {b[start : at + 80]!r}")  # fmt: skip


def assert_same(c: Any, python: Any, what: str = "") -> None:
    if c[0] == python[0] == "ok" and c[1] != python[1]:
        raise AssertionError(
            f"{what}: C and Python JSON differ, {first_difference(c[1], python[1])}"
        )
    assert c == python, (what, short(c), short(python))


def read_sites(data: bytes, *, emit: bool = True, now_ms: int | None = NOW_MS) -> list[int]:
    """The offsets at which the Python walk of `data` first reads from each place in its
    code (the same chain of calls leading there). Cut there, or a byte further, the input
    runs out in every way this file offers; cuts at even intervals mostly land inside its
    few big values and reach a fraction of those ways."""
    first: dict[tuple, int] = {}

    class Traced(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            frame, calls = sys._getframe(1), []
            while frame is not None:
                calls.append((frame.f_code, frame.f_lineno))
                frame = frame.f_back
            first.setdefault(tuple(calls), self.tell())
            return super().read(size)

    walk_in_python(Traced(data), now_ms=now_ms, emit=(lambda block: None) if emit else None)
    return sorted(first.values())
