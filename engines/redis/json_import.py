"""Restoring a JSON export: pass 1 authenticates, parses and compiles; pass 2 writes.

Pass 1 reads the whole artifact (every chunk authenticated, every line parsed) and
turns each record into its Redis commands as RESP bytes, spooled to a private work file
in batches: the commands of a batch back to back (ready to send as they are), then an
index saying which key each command belongs to. Keys already expired are dropped and
counted there. Only when pass 1 succeeded may anything touch the target, so `--flush`
never empties a database for an export that turns out damaged. Pass 2 streams the
batches to the target; unless --replace or --flush, it first asks which keys exist
(EXISTS) and leaves those out, reporting them as conflicts.
"""

import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from engines.redis.json_format import JsonFormatError, decode_bytes
from engines.redis.json_reader import JsonExportReader, KeyRecord, StreamValue, parse_record
from engines.redis.resp import encode_command
from engines.redis.writer import KeyWrite, PipelinedWriter

_BATCH = struct.Struct("<IIIIII")  # db, frames, keys, replies, commands size, index size
_INDEX = struct.Struct("<BIII")  # flags, key size, commands size, command count
FIRST, FINAL, AGGREGATE = 1, 2, 4
BATCH_KEYS = 2000
BATCH_BYTES = 1 << 20


@dataclass
class Frame:
    db: int
    flags: int
    key: bytes
    commands: bytes
    count: int


# --- pass 1: records to RESP --------------------------------------------------------------


def _resp(name: bytes, args: list[bytes]) -> bytes:
    """One command as RESP; `name` is pre-encoded (`$4\\r\\nSADD\\r\\n`)."""
    body = b"".join([b"$%d\r\n%b\r\n" % (len(arg), arg) for arg in args])
    return b"*%d\r\n%b%b" % (len(args) + 1, name, body)


_NAMES = {
    name: b"$%d\r\n%b\r\n" % (len(name), name)
    for name in (b"SET", b"APPEND", b"RPUSH", b"SADD", b"HSET", b"ZADD", b"DEL", b"PEXPIREAT")
}
_AGGREGATE_COMMAND = {"list": _NAMES[b"RPUSH"], "set": _NAMES[b"SADD"]}
_FAST_AGGREGATES = ("list", "set", "hash", "zset")


class _Slow(Exception):
    """The fast path met something it does not check itself: let parse_record judge."""


def _raw(value: Any) -> bytes:
    if type(value) is str:
        return value.encode("utf-8", "surrogatepass")
    return decode_bytes(value)


def _fast_value_commands(kind: str, key: bytes, value: Any, part: int) -> list[bytes]:
    """The commands for one line of a string, list, set, hash or zset; any doubt: _Slow."""
    if kind == "string":
        name = _NAMES[b"APPEND"] if part else _NAMES[b"SET"]
        return [_resp(name, [key, _raw(value)])]
    if type(value) is not list or kind not in _FAST_AGGREGATES:
        raise _Slow  # streams (and anything odd): the full parser
    if not value:
        return []
    if kind in _AGGREGATE_COMMAND:
        return [_resp(_AGGREGATE_COMMAND[kind], [key, *[_raw(x) for x in value]])]
    args = [key]
    if kind == "hash":
        for item in value:
            if type(item) is not list or len(item) != 2:
                raise _Slow
            args += (_raw(item[0]), _raw(item[1]))
        return [_resp(_NAMES[b"HSET"], args)]
    for item in value:  # zset
        if type(item) is not list or len(item) != 2 or type(item[1]) is not str:
            raise _Slow
        if math.isnan(float(item[1])):
            raise _Slow
        args += (item[1].encode(), _raw(item[0]))
    return [_resp(_NAMES[b"ZADD"], args)]


def _value_commands(record: KeyRecord) -> list[bytes]:
    key, value = record.key, record.value
    kind = record.type
    if kind == "string":
        return [encode_command("SET" if record.part == 0 else "APPEND", key, value)]
    if not value and kind != "stream":
        return []
    if kind == "list":
        return [encode_command("RPUSH", key, *value)]
    if kind == "set":
        return [encode_command("SADD", key, *value)]
    if kind == "hash":
        return [encode_command("HSET", key, *(x for pair in value for x in pair))]
    if kind == "zset":
        return [
            encode_command("ZADD", key, *(x for member, score in value for x in (score, member)))
        ]
    return _stream_commands(key, value, record)


def _stream_commands(key: bytes, stream: StreamValue, record: KeyRecord) -> list[bytes]:
    commands = [
        encode_command("XADD", key, entry_id, *fields) for entry_id, fields in stream.entries
    ]
    if record.more:
        return commands
    if record.part == 0 and not stream.entries:
        # An empty stream: created by adding its last id and trimming it away again.
        last = stream.last_id or b"0-0"
        if last == b"0-0":
            commands.append(
                encode_command("XGROUP", "CREATE", key, "jarvis-empty", "$", "MKSTREAM")
            )
            commands.append(encode_command("XGROUP", "DESTROY", key, "jarvis-empty"))
        else:
            commands.append(encode_command("XADD", key, "MAXLEN", "0", last, "_", "_"))
    if stream.last_id is not None and stream.last_id != b"0-0":
        extra: list[bytes | str | int] = []
        if stream.entries_added is not None:
            extra += ["ENTRIESADDED", stream.entries_added]
            extra += ["MAXDELETEDID", stream.max_deleted_id or b"0-0"]
        commands.append(encode_command("XSETID", key, stream.last_id, *extra))
    for group in stream.groups:
        read = ["ENTRIESREAD", group.entries_read] if group.entries_read is not None else []
        commands.append(
            encode_command("XGROUP", "CREATE", key, group.name, group.last_delivered_id, *read)
        )
    return commands


def _fast_record(document: Any) -> tuple[int, bytes, str, int | None, int, bool, list[bytes]]:
    """A valid string/list/set/hash/zset line compiled without building a KeyRecord."""
    if type(document) is not dict:
        raise _Slow
    db, kind = document["db"], document["type"]
    expires, part = document.get("expires_at_ms"), document.get("part", 0)
    if type(db) is not int or db < 0 or type(part) is not int or part < 0:
        raise _Slow
    if expires is not None and type(expires) is not int:
        raise _Slow
    key = _raw(document["key"])
    commands = _fast_value_commands(kind, key, document["value"], part)
    return db, key, kind, expires, part, bool(document.get("more")), commands


def compile_line(document: Any, number: int):
    """(db, key, type, expires_at_ms, part, more, commands) for one key line, checked as
    parse_record checks it (its errors name the line)."""
    try:
        return _fast_record(document)
    except (_Slow, JsonFormatError, KeyError, ValueError, TypeError, AttributeError):
        record = parse_record(document, number)  # raises the precise error, if any
        return (record.db, record.key, record.type, record.expires_at_ms, record.part,
                record.more, _value_commands(record))  # fmt: skip


class BatchSpool:
    """Pass 1's output: batches of ready RESP commands plus the index of their keys."""

    def __init__(self, out: BinaryIO, *, delete_first: bool):
        self.out = out
        self.delete_first = delete_first
        self._db = -1
        self._commands: list[bytes] = []
        self._index: list[bytes] = []
        self._size = self._keys = self._replies = 0

    def add(self, db: int, key: bytes, kind: str, expires: int | None, part: int, more: bool,
            commands: list[bytes]) -> None:  # fmt: skip
        if db != self._db or self._keys >= BATCH_KEYS or self._size >= BATCH_BYTES:
            self.flush()
            self._db = db
        flags = (FIRST if part == 0 else 0) | (0 if more else FINAL)
        if kind != "string":
            flags |= AGGREGATE
            if part == 0 and self.delete_first:
                commands.insert(0, _resp(_NAMES[b"DEL"], [key]))
        if not more and expires is not None:
            commands.append(_resp(_NAMES[b"PEXPIREAT"], [key, b"%d" % expires]))
        data = b"".join(commands)
        self._commands.append(data)
        self._index.append(_INDEX.pack(flags, len(key), len(data), len(commands)) + key)
        self._size += len(data)
        self._keys += part == 0
        self._replies += len(commands)

    def flush(self) -> None:
        if not self._index:
            return
        commands, index = b"".join(self._commands), b"".join(self._index)
        self.out.write(_BATCH.pack(self._db, len(self._index), self._keys, self._replies,
                                   len(commands), len(index)))  # fmt: skip
        self.out.write(commands)
        self.out.write(index)
        self._commands, self._index = [], []
        self._size = self._keys = self._replies = 0


@dataclass
class CompileResult:
    reader: JsonExportReader
    expired: int  # keys dropped because their expiry had passed at `now_ms`


def compile_export(
    plain: BinaryIO, out: BinaryIO, *, now_ms: int, only_db: int | None, delete_first: bool
) -> CompileResult:
    """Parse all of `plain` into batches in `out`; the reader holds header, trailer, counts."""
    reader = JsonExportReader(plain, now_ms=now_ms)
    spool = BatchSpool(out, delete_first=delete_first)
    follow, add = reader.follow, spool.add
    expired = 0
    skipping = False  # every line of an expired key is dropped
    for number, document in reader.documents():
        db, key, kind, expires, part, more, commands = compile_line(document, number)
        follow(number, db, key, kind, expires, part, more)
        if only_db is not None and db != only_db:
            continue
        if part == 0:
            skipping = expires is not None and 0 <= expires <= now_ms
            expired += skipping
        if not skipping:
            add(db, key, kind, expires, part, more, commands)
    spool.flush()
    return CompileResult(reader, expired)


# --- pass 2: batches to the target --------------------------------------------------------


@dataclass
class Batch:
    db: int
    frames: int
    keys: int
    replies: int
    commands: bytes
    index: bytes

    def each_frame(self) -> Iterator[Frame]:
        offset = position = 0
        size = _INDEX.size
        index = self.index
        for _ in range(self.frames):
            flags, key_size, command_size, count = _INDEX.unpack_from(index, position)
            position += size
            key = index[position : position + key_size]
            position += key_size
            commands = self.commands[offset : offset + command_size]
            offset += command_size
            yield Frame(self.db, flags, key, commands, count)


def read_batches(path: Path) -> Iterator[Batch]:
    size = _BATCH.size
    with open(path, "rb", buffering=1 << 20) as handle:
        while header := handle.read(size):
            db, frames, keys, replies, command_size, index_size = _BATCH.unpack(header)
            commands = handle.read(command_size)
            yield Batch(db, frames, keys, replies, commands, handle.read(index_size))


class FrameWriter:
    """Pass 2. With `dry_run` only the conflict checks run (EXISTS); nothing is written."""

    def __init__(self, writer: PipelinedWriter, *, check_conflicts: bool, dry_run: bool):
        self.writer = writer
        self.check_conflicts = check_conflicts
        self.dry_run = dry_run
        self._skipping = False  # the key of the current multi-line record was skipped

    def run(self, path: Path) -> None:
        for batch in read_batches(path):
            if self.check_conflicts or self.dry_run:
                self._batch(list(batch.each_frame()))
            else:
                # Nothing to leave out: the spooled commands go as they are.
                self.writer.write_batch(batch.db, batch.commands, batch.replies, batch.keys,
                                        lambda batch=batch: _key_writes(batch))  # fmt: skip

    def _existing(self, db: int, batch: list[Frame]) -> dict[bytes, bool]:
        keys = [f.key for f in batch if f.flags & FIRST]
        if not keys:
            return {}
        self.writer.select(db)
        return dict(zip(keys, self.writer.existing(keys), strict=True))

    def _batch(self, batch: list[Frame]) -> None:
        db = batch[0].db
        tally = self.writer.tally
        exists = self._existing(db, batch)
        items: list[KeyWrite] = []
        counted: list[bool] = []
        for frame in batch:
            if frame.flags & FIRST:
                self._skipping = False
                if exists.get(frame.key) and self.check_conflicts:
                    tally.conflict(db, frame.key)
                    self._skipping = True
                elif self.dry_run:
                    tally.written[db] += 1
                    if exists.get(frame.key):
                        tally.conflict(db, frame.key)  # would be overwritten
            if self._skipping or self.dry_run or not frame.count:
                continue
            items.append(KeyWrite(frame.key, frame.commands, frame.count))
            counted.append(bool(frame.flags & FIRST))
        # First pieces count as keys; later pieces of big keys follow them.
        self.writer.write(db, [item for item, first in zip(items, counted, strict=True) if first])
        later = [item for item, first in zip(items, counted, strict=True) if not first]
        self.writer.write(db, later, count_keys=False)


def _key_writes(batch: Batch) -> list[tuple[KeyWrite, bool]]:
    """The batch's commands per key piece, with whether the piece counts as a key."""
    return [
        (KeyWrite(frame.key, frame.commands, frame.count), bool(frame.flags & FIRST))
        for frame in batch.each_frame()
    ]
