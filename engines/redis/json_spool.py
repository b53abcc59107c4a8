"""Batches of ready RESP commands, as the compile step of a JSON restore hands them on.

A batch: a header (database, frames, keys, replies, sizes), the commands back to back
(ready to send as they are), then a columnar index of its frames (every frame's flags,
then key sizes, command sizes and command counts as 32-bit numbers, then the keys). A
frame is one key's piece: its commands, and flags saying whether it is the key's first
and final piece and whether the key is an aggregate. Batches go to a sink: the writer,
or (from a worker process) a file read back in order.
"""

import struct
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from engines.redis.resp import encode_command

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


BatchSink = Callable[[Batch], None]


class BatchSpool:
    """Collects compiled keys into batches for `sink`; the columnar index makes adding a
    key a few appends."""

    def __init__(self, sink: BatchSink, *, delete_first: bool):
        self.sink = sink
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

    def add_batch(self, db: int, frames: int, replies: int, commands: bytes, index: bytes) -> None:
        """A whole batch of whole keys (every frame FIRST and FINAL), index already built."""
        self.flush()
        self.sink(Batch(db, frames, frames, replies, commands, index))

    def flush(self) -> None:
        if not self._keys:
            return
        commands = b"".join(self._commands)
        sizes = array("I", map(len, self._keys))
        sizes.extend(map(len, self._commands))
        sizes.extend(self._counts)
        index = b"".join((self._flags, sizes.tobytes(), *self._keys))
        self.sink(Batch(self._db, len(self._keys), self._first, self._replies, commands, index))
        self._commands, self._keys, self._flags, self._counts = [], [], bytearray(), []
        self._size = self._first = self._replies = 0


def batch_writer(out: BinaryIO) -> BatchSink:
    """A sink that appends batches to the file `out`, for `read_batches`."""

    def write(batch: Batch) -> None:
        out.write(_BATCH.pack(batch.db, batch.frames, batch.keys, batch.replies,
                              len(batch.commands), len(batch.index)))  # fmt: skip
        out.write(batch.commands)
        out.write(batch.index)

    return write


def read_batches(path: Path) -> Iterator[Batch]:
    size = _BATCH.size
    with open(path, "rb", buffering=1 << 20) as handle:
        while header := handle.read(size):
            db, frames, keys, replies, command_size, index_size = _BATCH.unpack(header)
            commands = handle.read(command_size)
            yield Batch(db, frames, keys, replies, commands, handle.read(index_size))
