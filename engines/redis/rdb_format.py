"""Reading an RDB stream without loading it: header, aux fields, the number of keys per
database and per type, and, when asked, the JSON export's key lines of every key.

Counting decodes only the framing (lengths, opcodes, type bytes) and skips values, so the
reader keeps up with a snapshot as it streams past and needs no memory for big keys.
Emitting also decodes every value (engines/redis/rdb_keys.py) into JSON lines handed on
in blocks. Types up to RDB version 12 (Redis 7.4) are understood; a newer type stops the
walk with `RdbFormatError`, never with a wrong answer.
"""

import struct
from collections import Counter
from dataclasses import dataclass, field
from typing import BinaryIO

from engines.redis.json_format import JsonCounts
from engines.redis.native import rdb_walk
from engines.redis.rdb_json import Emit, KeyLines, LineSink
from engines.redis.rdb_keys import skip_pending_and_consumers, write_value
from engines.redis.rdb_reader import RdbFormatError, Reader

__all__ = ["RdbFormatError", "RdbSummary", "read_summary", "walk_in_python"]

MAGIC = b"REDIS"
HEADER_SIZE = 9

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
MODULE_TYPE = 7
HASH_FIELD_TTL_TYPES = frozenset((22, 23, 24, 25))  # Redis 7.4 hashes with field expiry
_MODULE_NAME_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


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
    end_offset: int | None = None  # the stream offset just after it, once reached
    modules: dict[str, int] = field(default_factory=dict)  # module type name -> keys (skipped)
    hash_field_ttls_dropped: int = 0  # hash keys whose field expiries the JSON cannot hold
    json_counts: JsonCounts | None = None  # the keys written as JSON lines, when emitting

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


def module_name(module_id: int) -> str:
    """The 9-character name in a module type id (its low 10 bits are the encoding version)."""
    return "".join(_MODULE_NAME_CHARS[(module_id >> (10 + 6 * (8 - j))) & 63] for j in range(9))


def _skip_module_values(reader: Reader) -> None:
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


def _skip_stream(reader: Reader, rdb_type: int) -> None:
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
        skip_pending_and_consumers(reader, rdb_type)


def _skip_value(reader: Reader, rdb_type: int) -> None:
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


def read_summary(
    stream: BinaryIO, *, now_ms: int | None = None, emit: Emit | None = None
) -> RdbSummary:
    """Walk the whole RDB in `stream` and count its keys; raise RdbFormatError on damage.
    With `emit`, every key's JSON lines are handed to it too, in blocks of whole lines.

    The walk runs in C (_rdb_walk.c: the same steps, several times faster, without the
    GIL) when that was built, else in Python (`walk_in_python`)."""
    if rdb_walk is None:
        return walk_in_python(stream, now_ms=now_ms, emit=emit)
    reader = Reader(stream)
    summary = RdbSummary(parse_header(reader.exact(HEADER_SIZE)))
    try:
        walked = rdb_walk.walk(stream.read, -1 if now_ms is None else now_ms, HEADER_SIZE, emit)
    except ValueError as error:
        raise RdbFormatError(str(error)) from None
    aux, dbs, counts, expires, expired, modules, summary.end_offset = walked
    for name, value in aux:
        summary.aux[name.decode(errors="replace")] = value.decode(errors="replace")
    for db in dbs:
        summary.keys_per_db_type.setdefault(db, Counter())
    written = JsonCounts()
    for db, rdb_type, n in counts:
        name = TYPE_NAMES[rdb_type]
        summary.keys_per_db[db] += n
        summary.keys_per_type[name] += n
        summary.keys_per_db_type[db][name] += n
        if rdb_type in HASH_FIELD_TTL_TYPES:
            summary.hash_field_ttls_dropped += n
        if rdb_type != MODULE_TYPE:
            written.add(db, name, False, n)
    written.with_ttl = expires
    for name, keys, with_expiry in modules:  # module keys are not written
        summary.modules[name] = keys
        written.with_ttl -= with_expiry
    if emit is not None:
        summary.json_counts = written
    summary.expires, summary.expired_before_ms = expires, expired
    summary.complete = True
    return summary


class _Walk:
    """The state of one walk in Python: the summary so far and, when emitting, the lines."""

    def __init__(self, reader: Reader, now_ms: int | None, emit: Emit | None):
        self.reader = reader
        self.now_ms = now_ms
        self.summary = RdbSummary(parse_header(reader.exact(HEADER_SIZE)))
        self.sink = None if emit is None else LineSink(emit)
        self.db = 0
        self.per_db = self.summary.keys_per_db_type.setdefault(0, Counter())
        self.expiry: int | None = None

    def key(self, rdb_type: int, name: str) -> None:
        reader, sink, summary = self.reader, self.sink, self.summary
        if sink is None:
            reader.skip_string()
        else:
            key = reader.value_string()
        if rdb_type == MODULE_TYPE:
            module = module_name(reader.length())
            _skip_module_values(reader)
            summary.modules[module] = summary.modules.get(module, 0) + 1
        elif sink is None:
            _skip_value(reader, rdb_type)
        else:
            write_value(reader, rdb_type, KeyLines(sink, self.db, key, name, self.expiry))
        summary.keys_per_db[self.db] += 1
        summary.keys_per_type[name] += 1
        self.per_db[name] += 1
        summary.hash_field_ttls_dropped += rdb_type in HASH_FIELD_TTL_TYPES
        if self.expiry is not None:
            summary.expires += 1
            if self.now_ms is not None and self.expiry < self.now_ms:
                summary.expired_before_ms += 1
            self.expiry = None

    def records(self) -> None:
        """Every record up to the EOF opcode."""
        reader, summary = self.reader, self.summary
        while True:
            opcode = reader.byte()
            if opcode == OPCODE_EOF:
                summary.complete = True
                summary.end_offset = reader.offset
                return
            if opcode == OPCODE_SELECTDB:
                self.db = reader.length()
                self.per_db = summary.keys_per_db_type.setdefault(self.db, Counter())
            elif opcode == OPCODE_EXPIRETIME_MS:
                self.expiry = struct.unpack("<q", reader.exact(8))[0]
            elif opcode == OPCODE_EXPIRETIME:
                self.expiry = struct.unpack("<i", reader.exact(4))[0] * 1000
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
                reader.length(), reader.length(), reader.length()  # module id, when opcode, when
                _skip_module_values(reader)
            elif opcode == OPCODE_FUNCTION_PRE_GA:
                raise RdbFormatError(
                    "functions from Redis 7.0 release candidates are not supported"
                )
            else:
                name = TYPE_NAMES.get(opcode)
                if name is None or opcode == 6:
                    raise RdbFormatError(
                        f"unknown record type {opcode} at byte {reader.offset - 1} (damaged, or "
                        "written by a Redis newer than this reader knows)"
                    )
                self.key(opcode, name)


def walk_in_python(
    stream: BinaryIO, *, now_ms: int | None = None, emit: Emit | None = None
) -> RdbSummary:
    """`read_summary` in Python."""
    walk = _Walk(Reader(stream), now_ms, emit)
    walk.records()
    if walk.sink is not None:
        walk.sink.flush()
        walk.summary.json_counts = walk.sink.counts
    return walk.summary
