"""Restoring a JSON export: pass 1 authenticates, parses and compiles; pass 2 writes.

Pass 1 reads the whole artifact (every chunk authenticated, every line parsed) and
turns each record into its Redis commands, stored in a private work file as frames.
Only when that succeeded may anything touch the target, so `--flush` never empties a
database for an export that turns out damaged. Pass 2 streams the frames to the target
in pipelined batches, skipping keys that expired meanwhile and, unless --replace or
--flush, keys that already exist there (reported as conflicts).
"""

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from engines.redis.json_reader import JsonExportReader, KeyRecord, StreamValue
from engines.redis.resp import encode_command
from engines.redis.writer import KeyWrite, PipelinedWriter

_FRAME = struct.Struct("<IBqIII")  # db, flags, expires_at_ms (-1: none), key, commands, count
FIRST, FINAL, AGGREGATE = 1, 2, 4
BATCH_KEYS = 1000


@dataclass
class Frame:
    db: int
    flags: int
    expires_at_ms: int
    key: bytes
    commands: bytes
    count: int


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


def compile_record(record: KeyRecord) -> Frame:
    commands = _value_commands(record)
    flags = (FIRST if record.part == 0 else 0) | (0 if record.more else FINAL)
    if record.type != "string":
        flags |= AGGREGATE
    if not record.more and record.expires_at_ms is not None:
        commands.append(encode_command("PEXPIREAT", record.key, record.expires_at_ms))
    expires = -1 if record.expires_at_ms is None else record.expires_at_ms
    return Frame(record.db, flags, expires, record.key, b"".join(commands), len(commands))


def compile_export(
    plain: BinaryIO, out: BinaryIO, *, now_ms: int, only_db: int | None
) -> JsonExportReader:
    """Parse all of `plain` into frames in `out`; the reader holds header, trailer, counts."""
    reader = JsonExportReader(plain, now_ms=now_ms)
    pack = _FRAME.pack
    for record in reader:
        if only_db is not None and record.db != only_db:
            continue
        frame = compile_record(record)
        out.write(pack(frame.db, frame.flags, frame.expires_at_ms, len(frame.key),
                       len(frame.commands), frame.count))  # fmt: skip
        out.write(frame.key)
        out.write(frame.commands)
    return reader


def read_frames(path: Path) -> Iterator[Frame]:
    size = _FRAME.size
    with open(path, "rb", buffering=1 << 20) as handle:
        while header := handle.read(size):
            db, flags, expires, key_size, command_size, count = _FRAME.unpack(header)
            key = handle.read(key_size)
            yield Frame(db, flags, expires, key, handle.read(command_size), count)


class FrameWriter:
    """Pass 2. With `dry_run` only the conflict checks run (EXISTS); nothing is written."""

    def __init__(
        self,
        writer: PipelinedWriter,
        *,
        now_ms: int,
        check_conflicts: bool,
        delete_first: bool,
        dry_run: bool,
    ):
        self.writer = writer
        self.now_ms = now_ms
        self.check_conflicts = check_conflicts
        self.delete_first = delete_first
        self.dry_run = dry_run
        self._skipping = False  # the key of the current multi-line record was skipped

    def run(self, path: Path) -> None:
        batch: list[Frame] = []
        for frame in read_frames(path):
            if batch and (len(batch) >= BATCH_KEYS or frame.db != batch[0].db):
                self._batch(batch)
                batch = []
            batch.append(frame)
        if batch:
            self._batch(batch)

    def _expired(self, frame: Frame) -> bool:
        return 0 <= frame.expires_at_ms <= self.now_ms

    def _existing(self, db: int, batch: list[Frame]) -> dict[bytes, bool]:
        if not (self.check_conflicts or self.dry_run):
            return {}
        keys = [f.key for f in batch if f.flags & FIRST and not self._expired(f)]
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
                if self._expired(frame):
                    tally.expired += 1
                    self._skipping = True
                elif exists.get(frame.key) and self.check_conflicts:
                    tally.conflict(db, frame.key)
                    self._skipping = True
                elif self.dry_run:
                    tally.written[db] += 1
                    if exists.get(frame.key):
                        tally.conflict(db, frame.key)  # would be overwritten
            if self._skipping or self.dry_run or not frame.count:
                continue
            payload, replies = frame.commands, frame.count
            if frame.flags & FIRST and frame.flags & AGGREGATE and self.delete_first:
                payload, replies = encode_command("DEL", frame.key) + payload, replies + 1
            items.append(KeyWrite(frame.key, payload, replies))
            counted.append(bool(frame.flags & FIRST))
        # First pieces count as keys; later pieces of big keys follow them.
        self.writer.write(db, [item for item, first in zip(items, counted, strict=True) if first])
        later = [item for item, first in zip(items, counted, strict=True) if not first]
        self.writer.write(db, later, count_keys=False)
