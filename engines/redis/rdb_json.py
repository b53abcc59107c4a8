"""The JSON export's key lines as the RDB walk writes them: each line exactly
`json_format.dumps` of its record, a big key split over several lines, the lines handed on
in blocks of about 1 MiB (the rules: engines/redis/rdb_json_rules.md)."""

import math
from collections.abc import Callable
from typing import Any

from engines.redis import json_format
from engines.redis.json_format import JsonCounts, encode_bytes

PIECE_ITEMS = 1000  # items in a line at most
PIECE_BYTES = 1 << 20  # a line is full once its items' raw bytes reach this
BLOCK_BYTES = 1 << 20  # lines handed on together

Emit = Callable[[bytes], Any]


def score_text(score: float) -> str:
    """A binary double score as the shortest %g text that reads back as the same double."""
    if math.isnan(score):
        return "nan"
    for precision in range(1, 17):
        text = f"{score:.{precision}g}"
        if float(text) == score:
            return text
    return f"{score:.17g}"


def item(value: bytes | int) -> tuple[str | dict[str, str], int]:
    """An element as it goes into a line, with its raw size (integers: their digits)."""
    if value.__class__ is int:
        text = str(value)
        return text, len(text)
    return encode_bytes(value), len(value)  # type: ignore[arg-type]


class LineSink:
    """Lines gathered into blocks of whole lines for `emit`; `flush` at the end."""

    def __init__(self, emit: Emit):
        self._emit = emit
        self._pending: list[bytes] = []
        self._size = 0
        self.counts = JsonCounts()

    def write(self, record: dict[str, Any]) -> None:
        line = json_format.dumps(record)
        self._pending.append(line)
        self._size += len(line)
        if self._size >= BLOCK_BYTES:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            self._emit(b"".join(self._pending))
            self._pending, self._size = [], 0


class KeyLines:
    """The lines of one key: `add` items one by one (a full line is written when the next
    item comes), `finish` writes the last; or `piece` for a string's pieces."""

    def __init__(self, sink: LineSink, db: int, key: bytes, kind: str, expires_at: int | None):
        self._sink = sink
        self._record: dict[str, Any] = {"db": db, "key": encode_bytes(key), "type": kind}
        if expires_at is not None:
            self._record["expires_at_ms"] = expires_at
        self._part = 0
        self._items: list[Any] = []
        self._size = 0
        self._stream = kind == "stream"
        sink.counts.add(db, kind, expires_at is not None)

    def piece(self, value: Any, more: bool) -> None:
        line = {**self._record, "value": value}
        if self._part:
            line["part"] = self._part
        if more:
            line["more"] = True
        self._sink.write(line)
        self._part += 1

    def add(self, value: Any, size: int) -> None:
        if len(self._items) >= PIECE_ITEMS or self._size >= PIECE_BYTES:
            self.piece({"entries": self._items} if self._stream else self._items, True)
            self._items, self._size = [], 0
        self._items.append(value)
        self._size += size

    def finish(self, stream_tail: dict[str, Any] | None = None) -> None:
        """The open line, without "more"; a stream's last line with its `stream_tail`."""
        value = {"entries": self._items, **(stream_tail or {})} if self._stream else self._items
        self.piece(value, False)


def string_lines(lines: KeyLines, data: bytes) -> None:
    """A string value held whole, in pieces of PIECE_BYTES."""
    for start in range(0, max(len(data), 1), PIECE_BYTES):
        piece = data[start : start + PIECE_BYTES]
        lines.piece(encode_bytes(piece), start + PIECE_BYTES < len(data))
