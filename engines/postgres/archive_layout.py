"""The layout of a custom-format archive: where its table of contents ends, and
where each data block starts, recorded for an archive pg_dump wrote to a pipe.

A streamed restore needs the first: the header and table of contents alone make a
file that `pg_restore --list` and the post-data steps can read.

pg_dump notes the position of each table's data in the table of contents only when
its output is seekable. Ours goes to a pipe, so every entry says "position not set",
and pg_restore finds a block by reading through every chunk before it: with pg_dump's
compression off that is one chunk per row, and each parallel worker reads them again.
Once the decrypted copy is on disk we find the blocks and write their positions into
the table of contents, as pg_dump does for a file; pg_restore then seeks.

A table's data block need not be walked chunk by chunk. It ends with a zero-length
chunk: a zero sign byte and `int_size` zero bytes. Inside the block, chunks hold COPY
text (or INSERT statements), which never contain a NUL byte, and no chunk is empty,
so the zero bytes of a chunk header never join into a run that long. The first such
run after the block's first chunk header is therefore its end. Large-object blocks
hold arbitrary bytes and are walked exactly. When anything is not as expected (an
unknown archive version, compressed data, a block that is not where it should be),
the archive is left as pg_dump wrote it and pg_restore scans, as before.
"""

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

MAGIC = b"PGDMP"
ARCHIVE_CUSTOM = 1
OLDEST, NEWEST = (1, 12), (1, 16)
POSITION_NOT_SET, POSITION_SET, NO_DATA = 1, 2, 3
BLOCK_DATA, BLOCK_LARGE_OBJECTS = 1, 3


class _Unexpected(Exception):
    """The archive is not in a shape this module knows: leave it alone."""


class _Incomplete(_Unexpected):
    """The file ends before what is being read."""


@dataclass
class Entry:
    dump_id: int
    state_at: int  # file position of the entry's data-state byte
    state: int
    desc: str  # "TABLE DATA", "BLOBS", "SEQUENCE SET", ...
    schema: str
    tag: str  # the object's name: for TABLE DATA, the table's
    definition: str  # the SQL that creates it (for ENCODING: the SET statement)
    copy_statement: str  # "COPY schema.table (columns) FROM stdin;" for COPY data

    @property
    def has_data(self) -> bool:
        return self.state != NO_DATA


@dataclass
class TableOfContents:
    version: tuple[int, int]
    int_size: int
    compressed: bool  # pg_dump compressed the data blocks
    entries: list[Entry]
    end: int  # where the data blocks begin


def _file_reader(handle: BinaryIO) -> "_Reader":
    fd = handle.fileno()
    return _Reader(lambda count, at: os.pread(fd, count, at), os.fstat(fd).st_size)


class _Reader:
    """Sequential reads of the archive through a small window (memory stays flat)."""

    WINDOW = 1024 * 1024

    def __init__(self, read_at: Callable[[int, int], bytes], size: int):
        self.read_at = read_at  # (count, position) -> bytes, like os.pread
        self.size = size
        self.pos = 0
        self.int_size = 4
        self._window = b""
        self._window_at = 0

    def take(self, count: int) -> bytes:
        if self.pos + count > self.size:
            raise _Incomplete("archive ends early")
        offset = self.pos - self._window_at
        if offset < 0 or offset + count > len(self._window):
            self._window = self.read_at(max(count, self.WINDOW), self.pos)
            self._window_at, offset = self.pos, 0
        self.pos += count
        return self._window[offset : offset + count]

    def byte(self) -> int:
        return self.take(1)[0]

    def integer(self) -> int:
        sign = self.byte()
        value = int.from_bytes(self.take(self.int_size), "little")
        return -value if sign else value

    def string(self) -> bytes | None:
        length = self.integer()
        if length < 0:
            return None
        return self.take(length)

    def skip(self, count: int) -> None:
        if self.pos + count > self.size:
            raise _Unexpected("chunk length out of range")
        self.pos += count

    def find(self, pattern: bytes) -> int:
        """Position of the next `pattern` at or after the current position, or -1."""
        at = self.pos
        while at < self.size:
            piece = self.read_at(self.WINDOW + len(pattern) - 1, at)
            found = piece.find(pattern)
            if found >= 0:
                return at + found
            at += self.WINDOW
        return -1


def _read_header(reader: _Reader) -> tuple[tuple[int, int], int, bool]:
    """Check the header; return the archive version, the offset size, and whether
    pg_dump compressed the data."""
    if reader.take(len(MAGIC)) != MAGIC:
        raise _Unexpected("not a custom-format archive")
    version = (reader.byte(), reader.byte())
    reader.byte()  # revision
    reader.int_size = reader.byte()
    offset_size = reader.byte()
    if not OLDEST <= version <= NEWEST or reader.byte() != ARCHIVE_CUSTOM:
        raise _Unexpected("archive version or format unknown")
    compression = reader.byte() if version >= (1, 15) else reader.integer()
    for _ in range(7):  # the dump's timestamp
        reader.integer()
    for _ in range(3):  # database name, server version, pg_dump version
        reader.string()
    return version, offset_size, compression != 0


def _text(raw: bytes | None) -> str:
    return raw.decode("utf-8", "replace") if raw else ""


def _read_entries(reader: _Reader, version: tuple[int, int], offset_size: int) -> list[Entry]:
    entries = []
    for _ in range(reader.integer()):
        dump_id = reader.integer()
        reader.integer()  # had a data dumper
        reader.string()  # table oid
        reader.string()  # oid
        tag, desc = _text(reader.string()), _text(reader.string())
        reader.integer()  # section
        definition = _text(reader.string())
        reader.string()  # drop statement
        copy_statement, schema = _text(reader.string()), _text(reader.string())
        reader.string()  # tablespace
        if version >= (1, 14):
            reader.string()  # table access method
        if version >= (1, 16):
            reader.integer()  # relkind
        reader.string()  # owner
        reader.string()  # "with oids"
        while reader.string() is not None:  # dependencies
            pass
        state_at = reader.pos
        state = reader.byte()
        entries.append(
            Entry(dump_id, state_at, state, desc, schema, tag, definition, copy_statement)
        )
        reader.take(offset_size)  # the data position (not set in a piped archive)
    return entries


def _skip_chunks(reader: _Reader) -> None:
    while (length := reader.integer()) != 0:
        if length < 0:
            raise _Unexpected("negative chunk length")
        reader.skip(length)


def _skip_large_objects(reader: _Reader) -> None:
    while reader.integer() != 0:  # object oid; 0 ends the block
        _skip_chunks(reader)


def _block_starts(reader: _Reader, entries: dict[int, Entry]) -> dict[int, int]:
    """Dump id -> position of its data block, for every block in the archive."""
    starts: dict[int, int] = {}
    end_of_table_data = b"\0" * (1 + reader.int_size)
    while reader.pos < reader.size:
        start = reader.pos
        kind = reader.byte()
        dump_id = reader.integer()
        entry = entries.get(dump_id)
        if entry is None or entry.state != POSITION_NOT_SET or dump_id in starts:
            raise _Unexpected(f"unexpected block for dump id {dump_id}")
        starts[dump_id] = start
        if len(starts) == len(entries):
            break  # the last block's end is not needed
        if kind == BLOCK_LARGE_OBJECTS:
            _skip_large_objects(reader)
        elif kind == BLOCK_DATA:
            end = reader.find(end_of_table_data)
            if end < 0:
                raise _Unexpected("data block without an end")
            reader.pos = end + len(end_of_table_data)
        else:
            raise _Unexpected(f"unknown block type {kind}")
    return starts


def record_data_positions(path: Path) -> int:
    """Write each data block's position into the archive's table of contents.

    Returns how many were recorded; 0 when the archive was left as it was.
    """
    with open(path, "r+b") as handle:
        reader = _file_reader(handle)
        try:
            version, offset_size, compressed = _read_header(reader)
            if compressed:  # block contents are zlib streams, which may hold zero bytes
                return 0
            entries = _read_entries(reader, version, offset_size)
            with_data = {e.dump_id: e for e in entries if e.state == POSITION_NOT_SET}
            starts = _block_starts(reader, with_data)
        except _Unexpected:
            return 0
        for dump_id, start in starts.items():
            position = bytes([POSITION_SET]) + start.to_bytes(offset_size, "little")
            os.pwrite(handle.fileno(), position, with_data[dump_id].state_at)
    return len(starts)


def read_table_of_contents(head: bytes) -> TableOfContents | None:
    """The header and table of contents at the start of `head`, the first bytes of an
    archive; None while they do not fit in it. An unknown archive raises ValueError."""
    reader = _Reader(lambda count, at: head[at : at + count], len(head))
    try:
        version, offset_size, compressed = _read_header(reader)
        entries = _read_entries(reader, version, offset_size)
    except _Incomplete:
        return None
    except _Unexpected as error:
        raise ValueError(str(error)) from None
    return TableOfContents(version, reader.int_size, compressed, entries, reader.pos)
