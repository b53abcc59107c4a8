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

import gc
import json
import struct
from array import array
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from engines.redis.json_compile import SLOW_ERRORS, Slow, compile_document, compile_line
from engines.redis.json_reader import JsonExportReader
from engines.redis.resp import encode_command
from engines.redis.writer import KeyWrite, PipelinedWriter

__all__ = ["compile_export", "compile_line"]

_BATCH = struct.Struct("<IIIIII")  # db, frames, keys, replies, commands size, index size
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


class BatchSpool:
    """Pass 1's output: batches of ready RESP commands plus the index of their keys.

    The index of a batch is columnar (every frame's flags, then key sizes, command sizes,
    command counts as 32-bit numbers, then the keys), so adding a key is a few appends."""

    def __init__(self, out: BinaryIO, *, delete_first: bool):
        self.out = out
        self.delete_first = delete_first
        self._db = -1
        self._commands: list[bytes] = []
        self._keys: list[bytes] = []
        self._flags = bytearray()
        self._counts: list[int] = []
        self._size = self._first = self._replies = 0

    def add_compiled(self, db: int, key: bytes, flags: int, data: bytes, count: int) -> None:
        if db != self._db or self._first >= BATCH_KEYS or self._size >= BATCH_BYTES:
            self.flush()
            self._db = db
        self._commands.append(data)
        self._keys.append(key)
        self._flags.append(flags)
        self._counts.append(count)
        self._size += len(data)
        self._first += flags & FIRST
        self._replies += count

    def add(self, db: int, key: bytes, kind: str, expires: int | None, part: int, more: bool,
            commands: list[bytes]) -> None:  # fmt: skip
        flags = (FIRST if part == 0 else 0) | (0 if more else FINAL)
        if kind != "string":
            flags |= AGGREGATE
            if part == 0 and self.delete_first:
                commands.insert(0, encode_command("DEL", key))
        if not more and expires is not None:
            commands.append(encode_command("PEXPIREAT", key, b"%d" % expires))
        self.add_compiled(db, key, flags, b"".join(commands), len(commands))

    def flush(self) -> None:
        if not self._keys:
            return
        commands = b"".join(self._commands)
        sizes = array("I", map(len, self._keys))
        sizes.extend(map(len, self._commands))
        sizes.extend(self._counts)
        index = b"".join((self._flags, sizes.tobytes(), *self._keys))
        self.out.write(_BATCH.pack(self._db, len(self._keys), self._first, self._replies,
                                   len(commands), len(index)))  # fmt: skip
        self.out.write(commands)
        self.out.write(index)
        self._commands, self._keys, self._flags, self._counts = [], [], bytearray(), []
        self._size = self._first = self._replies = 0


@dataclass
class CompileResult:
    reader: JsonExportReader
    expired: int  # keys dropped because their expiry had passed at `now_ms`


def compile_export(
    plain: BinaryIO, out: BinaryIO, *, now_ms: int, only_db: int | None, delete_first: bool
) -> CompileResult:
    """Parse all of `plain` into batches in `out`; the reader holds header, trailer, counts.

    Whole keys in one line go the fast way (compile_document), counted a block at a time;
    any other line goes through the full parser and the reader's `follow`, line by line."""
    with _collector_paused():
        return _compile(plain, out, now_ms, only_db, delete_first)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Parsing makes millions of short-lived lists and dicts and no reference cycles; the
    cyclic collector would walk them over and over for nothing."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _compile(
    plain: BinaryIO, out: BinaryIO, now_ms: int, only_db: int | None, delete_first: bool
) -> CompileResult:
    reader = JsonExportReader(plain, now_ms=now_ms)
    spool = BatchSpool(out, delete_first=delete_first)
    add, add_compiled = spool.add, spool.add_compiled
    expired = 0
    skipping = False  # every line of an expired key is dropped
    for number, lines, documents in reader.document_blocks():
        kinds: list[tuple[int, str]] = []  # of the keys taken the fast way
        with_ttl = past = 0
        continuing = reader.continuing
        for raw, document in zip(lines, documents, strict=True):
            number += 1
            try:
                if continuing:
                    raise Slow  # a later line of a key: the reader follows it
                db, key, kind, expires, data, count = compile_document(document, delete_first)
            except SLOW_ERRORS:
                reader.counted(kinds, with_ttl, past)
                kinds, with_ttl, past = [], 0, 0
                # The full parser sees the line as the standard json module reads it.
                compiled = compile_line(json.loads(raw), number)
                db, key, kind, expires, part, more, commands = compiled
                reader.follow(number, db, key, kind, expires, part, more)
                continuing = more
                if only_db is not None and db != only_db:
                    continue
                if part == 0:
                    skipping = expires is not None and 0 <= expires <= now_ms
                    expired += skipping
                if not skipping:
                    add(db, key, kind, expires, part, more, commands)
                continue
            kinds.append((db, kind))
            if expires is not None:
                with_ttl += 1
                if expires <= now_ms:
                    past += 1
                    if expires >= 0 and only_db in (None, db):
                        expired += 1
                        continue
            if only_db is None or db == only_db:
                flags = FIRST | FINAL if kind == "string" else FIRST | FINAL | AGGREGATE
                add_compiled(db, key, flags, data, count)
        reader.counted(kinds, with_ttl, past)
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
        frames = self.frames
        sizes = array("I")
        sizes.frombytes(self.index[frames : frames * 13])
        key_at = command_at = 0
        keys = memoryview(self.index)[frames * 13 :]
        for i in range(frames):
            key_size, command_size = sizes[i], sizes[frames + i]
            key = bytes(keys[key_at : key_at + key_size])
            commands = self.commands[command_at : command_at + command_size]
            key_at += key_size
            command_at += command_size
            yield Frame(self.db, self.index[i], key, commands, sizes[2 * frames + i])


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
        self.writer.drain()

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
