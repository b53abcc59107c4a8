"""A custom-format archive walked as it streams past: first its table of contents, then
each table's COPY text, without chunk headers or end marker, and its row count.

With pg_dump's compression off, a data block is one chunk per row, so the walk over
the chunk headers is done in C (`_archive_chunks`); without it `AVAILABLE` is False and
callers take their other way (row counts from the server, one pg_restore reading the
whole stream).

In COPY text every row ends with a newline and a newline inside a value is written as
`\\n`, so the newlines of a table's data are its rows. pg_dump ends the data with the
end-of-data line `\\.` and two empty lines; a row can never be that line, since COPY
writes a backslash in a value as two.
"""

from dataclasses import dataclass

from engines.plumbing.native import optional_extension
from engines.postgres.archive_layout import (
    BLOCK_DATA,
    BLOCK_LARGE_OBJECTS,
    Entry,
    TableOfContents,
    read_table_of_contents,
)

_chunks = optional_extension("engines.postgres._archive_chunks")
AVAILABLE = _chunks is not None


END_OF_DATA = b"\\."
HOLD_BACK = 8  # enough for the end-of-data line and the empty lines after it


@dataclass(frozen=True)
class Piece:
    """The next bytes of a table's COPY text (a row may continue in the next piece)."""

    entry: Entry
    text: bytes


@dataclass(frozen=True)
class BlockEnd:
    """A data block is complete: for a table dumped with COPY, `rows` is its row count."""

    entry: Entry
    rows: int | None


@dataclass(frozen=True)
class RawPiece:
    """The next bytes of a large-object block as they stand in the archive (its block
    header included), for pg_restore to load."""

    entry: Entry
    data: bytes


Event = Piece | RawPiece | BlockEnd


class ArchiveWalker:
    """Feed the archive's bytes in order; each feed returns what it completed."""

    def __init__(self) -> None:
        if _chunks is None:
            raise RuntimeError("the C chunk walker (_archive_chunks) was not built")
        self.toc: TableOfContents | None = None
        self._entries: dict[int, Entry] = {}
        self._carry = b""  # bytes of a header split between two blocks
        self._state = "toc"  # toc, block (a block header next), objects, chunks
        self._block: Entry | None = None
        self._in_objects_block = False  # a large-object block
        self._in_large_object = False  # one object's chunks in it
        self._pending = 0  # bytes of the current chunk still to come
        self._held = b""  # the block's last bytes, which may be its end-of-data line
        self._before_held = b""  # the byte before them (b"" at the block's start)
        self._rows = 0

    def feed(self, data: bytes) -> list[Event]:
        if self._carry:
            data, self._carry = self._carry + data, b""
        if self._state == "toc":
            toc = read_table_of_contents(data)
            if toc is None:
                self._carry = data
                return []
            if toc.compressed:
                raise ValueError("the archive's data is compressed by pg_dump")
            self.toc = toc
            self._entries = {entry.dump_id: entry for entry in toc.entries}
            self._state = "block"
            data = data[toc.end :]
        return self._walk(data)

    def finish(self) -> None:
        """At the end of the stream: raise ValueError if it stopped inside anything."""
        if self._state == "toc":
            raise ValueError("the archive ends inside its table of contents")
        if self._state != "block" or self._carry:
            raise ValueError("the archive ends inside a data block")

    def _walk(self, data: bytes) -> list[Event]:
        assert _chunks is not None and self.toc is not None
        events: list[Event] = []
        size = len(data)
        int_size = self.toc.int_size
        pos = 0
        raw_from = 0  # where this call's bytes of a large-object block begin
        while pos < size:
            if self._state == "chunks":
                assert self._block is not None
                text, pos, self._pending, ended = _chunks.chunks(data, pos, self._pending, int_size)
                if not self._in_large_object:
                    self._take(text, events)
                if ended:
                    if self._in_large_object:
                        self._state = "objects"
                    else:
                        self._end_block(events)
                elif pos < size:
                    break  # a chunk header split between blocks
                continue
            header = 1 + 1 + int_size if self._state == "block" else 1 + int_size
            if size - pos < header:
                break
            if self._state == "block":
                kind = data[pos]
                dump_id = _integer(data[pos + 1 : pos + header])
                self._block = self._entries.get(dump_id)
                if self._block is None or kind not in (BLOCK_DATA, BLOCK_LARGE_OBJECTS):
                    raise ValueError(f"unexpected data block (type {kind}, dump id {dump_id})")
                self._state = "chunks" if kind == BLOCK_DATA else "objects"
                self._in_objects_block = kind == BLOCK_LARGE_OBJECTS
                self._in_large_object = False
                self._held = self._before_held = b""
                self._rows = 0
                raw_from = pos
            else:  # a large object's oid, or 0 at the end of the block
                assert self._block is not None
                if _integer(data[pos : pos + header]) == 0:
                    events.append(RawPiece(self._block, data[raw_from : pos + header]))
                    events.append(BlockEnd(self._block, None))
                    self._state, self._in_objects_block = "block", False
                else:
                    self._state, self._in_large_object = "chunks", True
            pos += header
        if self._in_objects_block and pos > raw_from:
            assert self._block is not None
            events.append(RawPiece(self._block, data[raw_from:pos]))
        self._carry = data[pos:]
        return events

    def _take(self, text: bytes, events: list[Event]) -> None:
        assert self._block is not None
        if not text:
            return
        if len(text) <= HOLD_BACK:
            held = self._held + text
            if len(held) <= HOLD_BACK:
                self._held = held
                return
            ready, self._held = held[:-HOLD_BACK], held[-HOLD_BACK:]
        else:
            ready, self._held = self._held + text[:-HOLD_BACK], text[-HOLD_BACK:]
        self._before_held = ready[-1:]
        self._rows += ready.count(b"\n")
        events.append(Piece(self._block, ready))

    def _end_block(self, events: list[Event]) -> None:
        assert self._block is not None
        rest = self._held
        if self._block.copy_statement:
            rest = _without_end_of_data(rest, self._before_held)
        if rest:
            self._rows += rest.count(b"\n")
            events.append(Piece(self._block, rest))
        rows = self._rows if self._block.copy_statement else None
        events.append(BlockEnd(self._block, rows))
        self._state = "block"


def _without_end_of_data(tail: bytes, before: bytes) -> bytes:
    """`tail` (the last bytes of COPY text) without pg_dump's end-of-data line and the
    empty lines after it; `before` is the byte before `tail`, b"" at the block's start."""
    body = tail.rstrip(b"\n")
    if not body.endswith(END_OF_DATA) or len(body) == len(tail):
        return tail
    line_start = body[-3:-2] if len(body) > 2 else before
    return body[:-2] if line_start in (b"", b"\n") else tail


def _integer(raw: bytes) -> int:
    value = int.from_bytes(raw[1:], "little")
    return -value if raw[0] else value
