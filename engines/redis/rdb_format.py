"""Reading the structure of an RDB stream without loading it: header, aux fields, and the
number of keys per database and per type.

Only the framing is decoded (lengths, opcodes, type bytes); values are skipped, so the
reader keeps up with a snapshot as it streams past and needs no memory for big keys.
Types up to RDB version 12 (Redis 7.4) are understood; a newer type stops the count
with `RdbFormatError`, never with a wrong answer.
"""

import struct
from collections import Counter
from dataclasses import dataclass, field
from typing import BinaryIO

from engines.redis.native import rdb_walk

MAGIC = b"REDIS"
HEADER_SIZE = 9
_STEP = 1 << 20  # the most read at once

OPCODE_SLOT_INFO = 0xF4
OPCODE_FUNCTION2 = 0xF5
OPCODE_FUNCTION_PRE_GA = 0xF6
OPCODE_MODULE_AUX = 0xF7
OPCODE_IDLE = 0xF8
OPCODE_FREQ = 0xF9
OPCODE_AUX = 0xFA
OPCODE_RESIZEDB = 0xFB
OPCODE_EXPIRETIME_MS = 0xFC
OPCODE_EXPIRETIME = 0xFD
OPCODE_SELECTDB = 0xFE
OPCODE_EOF = 0xFF

# RDB value type byte -> the type name Redis's TYPE command reports.
TYPE_NAMES = {
    0: "string", 1: "list", 2: "set", 3: "zset", 4: "hash", 5: "zset", 6: "module",
    7: "module", 9: "hash", 10: "list", 11: "set", 12: "zset", 13: "hash", 14: "list",
    15: "stream", 16: "hash", 17: "zset", 18: "list", 19: "stream", 20: "set", 21: "stream",
    22: "hash", 23: "hash", 24: "hash", 25: "hash",
}  # fmt: skip
# Types whose whole value is one (possibly compressed) string: ziplists, listpacks, intsets.
_ONE_STRING = frozenset((0, 9, 10, 11, 12, 13, 16, 17, 20))


class RdbFormatError(ValueError):
    """The stream is not an RDB this reader understands, or it is damaged or cut short."""


@dataclass
class RdbSummary:
    version: int
    aux: dict[str, str] = field(default_factory=dict)
    keys_per_db: Counter = field(default_factory=Counter)
    keys_per_type: Counter = field(default_factory=Counter)
    keys_per_db_type: dict[int, Counter] = field(default_factory=dict)
    expires: int = 0
    expired_before_ms: int = 0  # keys whose expiry is earlier than `now_ms` given to the reader
    complete: bool = False  # the EOF opcode was reached

    @property
    def total_keys(self) -> int:
        return sum(self.keys_per_db.values())

    @property
    def redis_version(self) -> str | None:
        return self.aux.get("redis-ver")

    def counts(self) -> dict:
        """The counts as they go into artifact metadata (JSON: string keys)."""
        return {
            "keys": self.total_keys,
            "keys_per_db": {str(db): n for db, n in sorted(self.keys_per_db.items())},
            "keys_per_type": dict(sorted(self.keys_per_type.items())),
            "keys_per_db_type": {
                str(db): dict(sorted(types.items()))
                for db, types in sorted(self.keys_per_db_type.items())
            },
            "keys_with_ttl": self.expires,
        }


def parse_header(data: bytes) -> int:
    """The RDB version from the first 9 bytes (`REDIS0011`)."""
    if len(data) < HEADER_SIZE or not data.startswith(MAGIC):
        raise RdbFormatError("not an RDB file: it does not start with REDIS and a version")
    digits = data[5:9]
    if not digits.isdigit():
        raise RdbFormatError(f"not an RDB file: version field {digits!r} is not a number")
    return int(digits)


class _Reader:
    """Sequential reads from a buffered stream, failing loudly on a short read."""

    __slots__ = ("_read", "offset")

    def __init__(self, stream: BinaryIO):
        self._read = stream.read
        self.offset = 0

    def exact(self, size: int) -> bytes:
        data = self._read(size) if size <= _STEP else self._in_steps(size)
        if len(data) != size:
            raise RdbFormatError(
                f"the RDB ends early at byte {self.offset + len(data)} (truncated)"
            )
        self.offset += size
        return data

    def _in_steps(self, size: int) -> bytes:
        """A big read as the data arrives: a damaged length may claim 2**64 bytes, which
        read() would refuse or try to allocate (the C walk reads until the end too)."""
        pieces = []
        while size > 0:
            piece = self._read(min(size, _STEP))
            pieces.append(piece)
            if len(piece) < min(size, _STEP):
                break
            size -= len(piece)
        return b"".join(pieces)

    def skip(self, size: int) -> None:
        while size > 0:
            step = min(size, _STEP)
            self.exact(step)
            size -= step

    def byte(self) -> int:
        return self.exact(1)[0]

    def length(self) -> int:
        first = self.byte()
        kind = first >> 6
        if kind == 0:
            return first & 0x3F
        if kind == 1:
            return ((first & 0x3F) << 8) | self.byte()
        if first == 0x80:
            return struct.unpack(">I", self.exact(4))[0]
        if first == 0x81:
            return struct.unpack(">Q", self.exact(8))[0]
        raise RdbFormatError(f"bad length encoding 0x{first:02x} at byte {self.offset - 1}")

    def _string_size(self) -> tuple[int, int]:
        """(encoding, payload size) of the next string; encoding -1 is a plain string."""
        first = self.byte()
        kind = first >> 6
        if kind == 0:
            return -1, first & 0x3F
        if kind == 1:
            return -1, ((first & 0x3F) << 8) | self.byte()
        if kind == 2:
            if first == 0x80:
                return -1, struct.unpack(">I", self.exact(4))[0]
            if first == 0x81:
                return -1, struct.unpack(">Q", self.exact(8))[0]
            raise RdbFormatError(f"bad string length 0x{first:02x} at byte {self.offset - 1}")
        encoding = first & 0x3F
        if encoding in (0, 1, 2):
            return encoding, 1 << encoding
        if encoding == 3:  # LZF: compressed length, then the original length
            compressed = self.length()
            self.length()
            return 3, compressed
        raise RdbFormatError(f"unknown string encoding {encoding} at byte {self.offset - 1}")

    def skip_string(self) -> None:
        self.skip(self._string_size()[1])

    def string(self) -> bytes:
        encoding, size = self._string_size()
        if encoding == 3:  # before reading it, as the C walk does
            raise RdbFormatError("compressed strings are not expected in aux fields")
        data = self.exact(size)
        if encoding == -1:
            return data
        return str(int.from_bytes(data, "little", signed=True)).encode()


def _skip_module_values(reader: _Reader) -> None:
    while (opcode := reader.length()) != 0:
        if opcode in (1, 2):
            reader.length()
        elif opcode == 3:
            reader.skip(4)
        elif opcode == 4:
            reader.skip(8)
        elif opcode == 5:
            reader.skip_string()
        else:
            raise RdbFormatError(f"unknown module value opcode {opcode} at byte {reader.offset}")


def _skip_stream(reader: _Reader, rdb_type: int) -> None:
    for _ in range(reader.length()):
        reader.skip_string()  # node key (master entry id)
        reader.skip_string()  # listpack of entries
    reader.length()  # number of entries
    reader.length(), reader.length()  # last id
    if rdb_type >= 19:
        reader.length(), reader.length()  # first id
        reader.length(), reader.length()  # max deleted id
        reader.length()  # entries added
    for _ in range(reader.length()):  # consumer groups
        reader.skip_string()
        reader.length(), reader.length()  # last delivered id
        if rdb_type >= 19:
            reader.length()  # entries read
        pending = reader.length()
        reader.skip(pending * (16 + 8))  # raw id + delivery time
        for _ in range(pending):
            reader.length()  # delivery count
        for _ in range(reader.length()):  # consumers
            reader.skip_string()
            reader.skip(8)  # seen time
            if rdb_type >= 21:
                reader.skip(8)  # active time
            reader.skip(reader.length() * 16)  # their pending ids


def _skip_value(reader: _Reader, rdb_type: int) -> None:
    if rdb_type in _ONE_STRING:
        reader.skip_string()
    elif rdb_type in (1, 2, 14):
        for _ in range(reader.length()):
            reader.skip_string()
    elif rdb_type == 18:
        for _ in range(reader.length()):
            reader.length()  # container kind
            reader.skip_string()
    elif rdb_type == 4:
        for _ in range(reader.length() * 2):
            reader.skip_string()
    elif rdb_type == 3:
        for _ in range(reader.length()):
            reader.skip_string()
            size = reader.byte()
            if size < 253:  # 253-255 are NaN and the infinities, stored without digits
                reader.skip(size)
    elif rdb_type == 5:
        for _ in range(reader.length()):
            reader.skip_string()
            reader.skip(8)
    elif rdb_type in (15, 19, 21):
        _skip_stream(reader, rdb_type)
    elif rdb_type == 7:
        reader.length()  # module id
        _skip_module_values(reader)
    elif rdb_type in (22, 24):  # hash with field expiry (7.4)
        if rdb_type == 24:
            reader.skip(8)  # minimum expiry
        for _ in range(reader.length()):
            reader.length()  # field ttl
            reader.skip_string()
            reader.skip_string()
    elif rdb_type in (23, 25):
        if rdb_type == 25:
            reader.skip(8)
        reader.skip_string()
    else:
        raise RdbFormatError(
            f"value type {rdb_type} at byte {reader.offset} is not known to this version of "
            "jarvis-tui (the RDB comes from a newer Redis or a module that needs loading)"
        )


def read_summary(stream: BinaryIO, *, now_ms: int | None = None) -> RdbSummary:
    """Walk the whole RDB in `stream` and count its keys; raise RdbFormatError on damage.

    The walk runs in C (_rdb_walk.c: the same steps, several times faster, without the
    GIL) when that was built, else in Python (`walk_in_python`)."""
    if rdb_walk is None:
        return walk_in_python(stream, now_ms=now_ms)
    reader = _Reader(stream)
    summary = RdbSummary(parse_header(reader.exact(HEADER_SIZE)))
    try:
        walked = rdb_walk.walk(stream.read, -1 if now_ms is None else now_ms, HEADER_SIZE)
    except ValueError as error:
        raise RdbFormatError(str(error)) from None
    aux, dbs, counts, expires, expired, _modules = walked  # modules: issue #18, in progress
    for name, value in aux:
        summary.aux[name.decode(errors="replace")] = value.decode(errors="replace")
    for db in dbs:
        summary.keys_per_db_type.setdefault(db, Counter())
    for db, rdb_type, n in counts:
        name = TYPE_NAMES[rdb_type]
        summary.keys_per_db[db] += n
        summary.keys_per_type[name] += n
        summary.keys_per_db_type[db][name] += n
    summary.expires, summary.expired_before_ms = expires, expired
    summary.complete = True
    return summary


def walk_in_python(stream: BinaryIO, *, now_ms: int | None = None) -> RdbSummary:
    """`read_summary` in Python."""
    reader = _Reader(stream)
    summary = RdbSummary(parse_header(reader.exact(HEADER_SIZE)))
    db = 0
    per_db = summary.keys_per_db_type.setdefault(0, Counter())
    expiry: int | None = None
    while True:
        opcode = reader.byte()
        if opcode == OPCODE_EOF:
            summary.complete = True
            return summary
        if opcode == OPCODE_SELECTDB:
            db = reader.length()
            per_db = summary.keys_per_db_type.setdefault(db, Counter())
        elif opcode == OPCODE_EXPIRETIME_MS:
            expiry = struct.unpack("<q", reader.exact(8))[0]
        elif opcode == OPCODE_EXPIRETIME:
            expiry = struct.unpack("<i", reader.exact(4))[0] * 1000
        elif opcode == OPCODE_AUX:
            name = reader.string().decode(errors="replace")
            summary.aux[name] = reader.string().decode(errors="replace")
        elif opcode == OPCODE_RESIZEDB:
            reader.length(), reader.length()
        elif opcode == OPCODE_IDLE:
            reader.length()
        elif opcode == OPCODE_FREQ:
            reader.skip(1)
        elif opcode == OPCODE_SLOT_INFO:
            reader.length(), reader.length(), reader.length()
        elif opcode == OPCODE_FUNCTION2:
            reader.skip_string()
        elif opcode == OPCODE_MODULE_AUX:
            reader.length(), reader.length()
            _skip_module_values(reader)
        elif opcode == OPCODE_FUNCTION_PRE_GA:
            raise RdbFormatError("functions from Redis 7.0 release candidates are not supported")
        else:
            name = TYPE_NAMES.get(opcode)
            if name is None or opcode == 6:
                raise RdbFormatError(
                    f"unknown record type {opcode} at byte {reader.offset - 1} (damaged, or "
                    "written by a Redis newer than this reader knows)"
                )
            reader.skip_string()  # the key
            _skip_value(reader, opcode)
            summary.keys_per_db[db] += 1
            summary.keys_per_type[name] += 1
            per_db[name] += 1
            if expiry is not None:
                summary.expires += 1
                if now_ms is not None and expiry < now_ms:
                    summary.expired_before_ms += 1
                expiry = None
