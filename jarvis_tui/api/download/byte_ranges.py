"""HTTP `Range: bytes=...` for a body of known length (RFC 9110 section 14).

Hand-written because the only parser at hand is Starlette FileResponse's private one,
which serves files only (our bodies are a stored artifact or a tar built on the fly).

One range (`bytes=a-b`, `bytes=a-`, `bytes=-n`) is answered with 206. Several ranges
are answered with the whole body (200): RFC 9110 14.2 lets a server ignore Range, and
a download resumes with one range. A header we cannot read is ignored the same way.
A range that starts at or past the end (or a suffix of 0 bytes) is unsatisfiable: 416
with `Content-Range: bytes */<length>`.
"""

import re
from dataclasses import dataclass

_ONE_RANGE = re.compile(r"([0-9]*)-([0-9]*)")  # RFC 9110's DIGIT: ASCII only, not \d
# A position with more digits than this is past any body's end; int() of thousands of
# digits would raise (Python's int_max_str_digits), and leading zeros are allowed.
_MAX_DIGITS = 18
_BEYOND_ANY_END = 10**_MAX_DIGITS


def _position(digits: str) -> int:
    significant = digits.lstrip("0") or "0"
    return int(significant) if len(significant) <= _MAX_DIGITS else _BEYOND_ANY_END


@dataclass(frozen=True)
class ByteRange:
    """Bytes `start` to `end` inclusive, as Content-Range says them."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, total: int) -> str:
        return f"bytes {self.start}-{self.end}/{total}"


class Unsatisfiable(Exception):
    """No byte of the body is in the range asked for."""


def requested_range(header: str | None, length: int) -> ByteRange | None:
    """The one range `header` asks of a body of `length` bytes; None for the whole body
    (no header, several ranges, or one we cannot read); Unsatisfiable for 416."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    match = _ONE_RANGE.fullmatch(spec.strip())
    if match is None or match.group(1) == match.group(2) == "":
        return None
    first, last = match.groups()
    if first == "":  # a suffix: the last `last` bytes
        suffix = _position(last)
        if suffix == 0 or length == 0:
            raise Unsatisfiable
        return ByteRange(max(length - suffix, 0), length - 1)
    start = _position(first)
    if last != "" and _position(last) < start:
        return None  # invalid: ignored (RFC 9110 14.1.1)
    if start >= length:
        raise Unsatisfiable
    return ByteRange(start, length - 1 if last == "" else min(_position(last), length - 1))
