"""A small RDB writer for crafted test files: every opcode and every value encoding that
Redis 2.x-7.4 writes, each byte laid out as Redis lays it out (rdb.c, ziplist.c,
listpack.c, intset.c, zipmap.c, t_stream.c, lzf_c.c).

Each value comes with its model: what the JSON export must say about it
(tests/support/rdb_expected.py turns the models into the expected key lines).

    rdb = RdbWriter(10).aux(b"redis-ver", b"7.0.15").select(0)
    rdb.key(b"k", plain_string(b"v"), expires_ms=...)
    data = rdb.end()
"""

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

# --- checksum: Redis's crc64 (Jones polynomial, reflected, init 0, no final xor) ----------

_CRC64_POLY = 0x95AC9329AC4BC9B5  # 0xad93d23594c935a9 bit-reversed


def _crc64_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _CRC64_POLY if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC64_TABLE = _crc64_table()


def crc64(data: bytes, crc: int = 0) -> int:
    table = _CRC64_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc


# --- LZF (liblzf's format: literal runs of 1..32 bytes, back-references of 3..264 bytes
# --- up to 8192 bytes back, overlapping allowed) -------------------------------------------


def lzf_compress(data: bytes) -> bytes:
    """A greedy LZF compressor: the last position of every 3-byte prefix, the longest match
    from it. Runs of one byte become overlapping back-references (distance 1)."""
    out = bytearray()
    literal = bytearray()
    last_seen: dict[bytes, int] = {}

    def flush_literal() -> None:
        while literal:
            run = literal[:32]
            out.append(len(run) - 1)
            out.extend(run)
            del literal[:32]

    at, size = 0, len(data)
    while at < size:
        prefix = data[at : at + 3]
        earlier = last_seen.get(prefix) if len(prefix) == 3 else None
        if len(prefix) == 3:
            last_seen[prefix] = at
        if earlier is None or at - earlier > 8192:
            literal.append(data[at])
            at += 1
            continue
        match = 3
        while match < min(264, size - at) and data[earlier + match] == data[at + match]:
            match += 1
        flush_literal()
        distance, code = at - earlier - 1, match - 2
        if code < 7:
            out.append(code << 5 | distance >> 8)
        else:
            out += bytes([7 << 5 | distance >> 8, code - 7])
        out.append(distance & 0xFF)
        at += match
    flush_literal()
    return bytes(out)


def lzf_decompress(data: bytes, size: int) -> bytes:
    """The writer's own check of lzf_compress (liblzf's lzf_decompress)."""
    out = bytearray()
    at = 0
    while at < len(data):
        control = data[at]
        at += 1
        if control < 32:
            out += data[at : at + control + 1]
            at += control + 1
            continue
        length = control >> 5
        if length == 7:
            length += data[at]
            at += 1
        start = len(out) - ((control & 0x1F) << 8 | data[at]) - 1
        at += 1
        for i in range(length + 2):
            out.append(out[start + i])
    assert len(out) == size
    return bytes(out)


# --- RDB lengths and strings ---------------------------------------------------------------


def length(value: int, form: int | None = None) -> bytes:
    """Redis's length encoding: 6-bit (form 0), 14-bit (1), 32-bit (2), 64-bit (3); the
    smallest unless `form` asks for a wider one."""
    if form is None:
        form = 0 if value < 64 else 1 if value < 1 << 14 else 2 if value < 1 << 32 else 3
    if form == 0:
        return bytes([value])
    if form == 1:
        return bytes([0x40 | value >> 8, value & 0xFF])
    if form == 2:
        return b"\x80" + struct.pack(">I", value)
    return b"\x81" + struct.pack(">Q", value)


def string(data: bytes, form: int | None = None) -> bytes:
    return length(len(data), form) + data


def int_string(value: int, width: int) -> bytes:
    """An int-encoded string: 0xC0 int8, 0xC1 int16, 0xC2 int32 (little-endian)."""
    code = {1: 0, 2: 1, 4: 2}[width]
    return bytes([0xC0 | code]) + value.to_bytes(width, "little", signed=True)


def lzf_string(data: bytes) -> bytes:
    compressed = lzf_compress(data)
    assert lzf_decompress(compressed, len(data)) == data
    return b"\xc3" + length(len(compressed)) + length(len(data)) + compressed


def stored(data: bytes, how: str = "plain") -> bytes:
    """`data` as an RDB string: "plain", "lzf", or (decimal digits) "int1", "int2", "int4"."""
    if how.startswith("int"):
        return int_string(int(data), int(how[3:]))
    return lzf_string(data) if how == "lzf" else string(data)


# --- the encodings inside one string: ziplist, listpack, intset, zipmap ------------------


@dataclass(frozen=True)
class Enc:
    """An element with a chosen encoding (ziplist: str6 str14 str32 int8 int16 int24 int32
    int64 imm; listpack: uint7 str6 int13 str12 str32 int16 int24 int32 int64)."""

    value: bytes | int
    how: str


Element = bytes | int | Enc


def digits(element: Element) -> bytes:
    """What the element is in the JSON: its bytes, or an integer's decimal digits."""
    value = element.value if isinstance(element, Enc) else element
    return str(value).encode() if isinstance(value, int) else value


def _ziplist_encoding(element: Element) -> bytes:
    value, how = (element.value, element.how) if isinstance(element, Enc) else (element, None)
    if isinstance(value, bytes):
        size = len(value)
        how = how or ("str6" if size < 64 else "str14" if size < 1 << 14 else "str32")
        if how == "str6":
            return bytes([size]) + value
        if how == "str14":
            return bytes([0x40 | size >> 8, size & 0xFF]) + value
        return b"\x80" + struct.pack(">I", size) + value
    if how is None:
        how = ("imm" if 0 <= value <= 12 else "int8" if -128 <= value < 128 else
               "int16" if -(1 << 15) <= value < 1 << 15 else
               "int24" if -(1 << 23) <= value < 1 << 23 else
               "int32" if -(1 << 31) <= value < 1 << 31 else "int64")  # fmt: skip
    if how == "imm":
        return bytes([0xF1 + value])
    code, width = {"int8": (0xFE, 1), "int16": (0xC0, 2), "int24": (0xF0, 3),
                   "int32": (0xD0, 4), "int64": (0xE0, 8)}[how]  # fmt: skip
    return bytes([code]) + value.to_bytes(width, "little", signed=True)


def ziplist(elements: Sequence[Element], *, wide_prevlen: Iterable[int] = ()) -> bytes:
    """A ziplist; entries whose index is in `wide_prevlen` store the previous entry's size
    in the 5-byte form (0xFE + u32) even when it is small, as a cascade update leaves it."""
    wide = set(wide_prevlen)
    body = bytearray()
    previous, last = 0, 10
    for index, element in enumerate(elements):
        last = 10 + len(body)
        if previous >= 254 or index in wide:
            prevlen = b"\xfe" + struct.pack("<I", previous)
        else:
            prevlen = bytes([previous])
        entry = prevlen + _ziplist_encoding(element)
        body += entry
        previous = len(entry)
    total = 10 + len(body) + 1
    count = len(elements) if len(elements) < 0xFFFF else 0xFFFF
    return struct.pack("<IIH", total, last, count) + bytes(body) + b"\xff"


def backlen(size: int) -> bytes:
    """listpack.c lpEncodeBacklen: note the bounds are 16383, 2097151, 268435455 (not the
    powers of two): an entry of exactly 16383 bytes has a 3-byte backlen."""
    if size <= 127:
        return bytes([size])
    if size < 16383:
        return bytes([size >> 7, (size & 127) | 128])
    if size < 2097151:
        return bytes([size >> 14, ((size >> 7) & 127) | 128, (size & 127) | 128])
    if size < 268435455:
        return bytes([size >> 21, ((size >> 14) & 127) | 128, ((size >> 7) & 127) | 128,
                      (size & 127) | 128])  # fmt: skip
    return bytes([size >> 28, ((size >> 21) & 127) | 128, ((size >> 14) & 127) | 128,
                  ((size >> 7) & 127) | 128, (size & 127) | 128])  # fmt: skip


def _listpack_encoding(element: Element) -> bytes:
    value, how = (element.value, element.how) if isinstance(element, Enc) else (element, None)
    if isinstance(value, bytes):
        size = len(value)
        how = how or ("str6" if size < 64 else "str12" if size < 4096 else "str32")
        if how == "str6":
            return bytes([0x80 | size]) + value
        if how == "str12":
            return bytes([0xE0 | size >> 8, size & 0xFF]) + value
        return b"\xf0" + struct.pack("<I", size) + value
    if how is None:
        how = ("uint7" if 0 <= value <= 127 else "int13" if -4096 <= value < 4096 else
               "int16" if -(1 << 15) <= value < 1 << 15 else
               "int24" if -(1 << 23) <= value < 1 << 23 else
               "int32" if -(1 << 31) <= value < 1 << 31 else "int64")  # fmt: skip
    if how == "uint7":
        return bytes([value])
    if how == "int13":
        bits = value & 0x1FFF
        return bytes([0xC0 | bits >> 8, bits & 0xFF])
    code, width = {"int16": (0xF1, 2), "int24": (0xF2, 3), "int32": (0xF3, 4),
                   "int64": (0xF4, 8)}[how]  # fmt: skip
    return bytes([code]) + value.to_bytes(width, "little", signed=True)


def listpack(elements: Sequence[Element]) -> bytes:
    body = bytearray()
    for element in elements:
        entry = _listpack_encoding(element)
        body += entry + backlen(len(entry))
    count = len(elements) if len(elements) < 0xFFFF else 0xFFFF
    return struct.pack("<IH", 6 + len(body) + 1, count) + bytes(body) + b"\xff"


def intset(values: Sequence[int], width: int) -> bytes:
    """Redis keeps them sorted and unique; `width` 2, 4 or 8 bytes."""
    body = b"".join(v.to_bytes(width, "little", signed=True) for v in values)
    return struct.pack("<II", width, len(values)) + body


def _zipmap_length(size: int) -> bytes:
    return bytes([size]) if size < 254 else b"\xfe" + struct.pack("<I", size)


def zipmap(pairs: Sequence[tuple[bytes, bytes]], free: Sequence[int] = ()) -> bytes:
    """zipmap.c: zmlen, then key length, key, value length, free byte, value, free bytes."""
    out = bytearray([min(len(pairs), 254)])
    for index, (name, value) in enumerate(pairs):
        spare = free[index] if index < len(free) else 0
        out += _zipmap_length(len(name)) + name + _zipmap_length(len(value))
        out += bytes([spare]) + value + b"\x00" * spare
    return bytes(out + b"\xff")


# --- values of every type, with their models ----------------------------------------------


@dataclass(frozen=True)
class Value:
    rdb_type: int
    payload: bytes
    kind: str  # the TYPE name in the JSON
    model: Any  # what the JSON says: bytes, [bytes], [(bytes, bytes)], [(bytes, str)], Stream


def plain_string(data: bytes, how: str = "plain") -> Value:
    return Value(0, stored(data, how), "string", data)


def integer_string(value: int, width: int) -> Value:
    return Value(0, int_string(value, width), "string", str(value).encode())


def linked_list(items: Sequence[bytes], rdb_type: int = 1, how: str = "plain") -> Value:
    """Type 1 list or type 2 set: a count and strings."""
    kind = "list" if rdb_type == 1 else "set"
    payload = length(len(items)) + b"".join(stored(item, how) for item in items)
    return Value(rdb_type, payload, kind, list(items))


def plain_hash(pairs: Sequence[tuple[bytes, bytes]]) -> Value:
    payload = length(len(pairs)) + b"".join(string(f) + string(v) for f, v in pairs)
    return Value(4, payload, "hash", list(pairs))


def text_zset(pairs: Sequence[tuple[bytes, bytes | float]]) -> Value:
    """Type 3: scores as text; nan, inf and -inf as the bytes 253, 254, 255."""
    payload, model = bytearray(length(len(pairs))), []
    for member, score in pairs:
        payload += string(member)
        special = {"nan": 253, "inf": 254, "-inf": 255}.get(str(score))
        if isinstance(score, float) and special is not None:
            payload.append(special)
            model.append((member, str(score)))
        else:
            assert isinstance(score, bytes)
            payload += bytes([len(score)]) + score
            model.append((member, score))
    return Value(3, bytes(payload), "zset", model)


def shortest_score(score: float) -> str:
    if score == float("inf"):
        return "inf"
    if score == float("-inf"):
        return "-inf"
    for precision in range(1, 18):
        text = f"{score:.{precision}g}"
        if float(text) == score:
            return text
    return f"{score:.17g}"


def binary_zset(pairs: Sequence[tuple[bytes, float]]) -> Value:
    payload = length(len(pairs)) + b"".join(string(m) + struct.pack("<d", s) for m, s in pairs)
    return Value(5, payload, "zset", [(m, shortest_score(s)) for m, s in pairs])


def one_string(rdb_type: int, kind: str, blob: bytes, model: Any, how: str = "plain") -> Value:
    """A value stored as one (possibly LZF-compressed) string: ziplist, listpack, intset,
    zipmap."""
    return Value(rdb_type, stored(blob, how), kind, model)


def pairs_of(elements: Sequence[Element]) -> list[tuple[bytes, bytes]]:
    flat = [digits(e) for e in elements]
    return list(zip(flat[::2], flat[1::2], strict=True))


def ziplist_value(rdb_type: int, elements: Sequence[Element], how: str = "plain",
                  wide_prevlen: Iterable[int] = ()) -> Value:  # fmt: skip
    """Type 10 (list), 12 (zset: member, score), 13 (hash: field, value)."""
    kind = {10: "list", 12: "zset", 13: "hash"}[rdb_type]
    blob = ziplist(elements, wide_prevlen=wide_prevlen)
    model = [digits(e) for e in elements] if rdb_type == 10 else pairs_of(elements)
    if rdb_type == 12:
        model = [(m, s.decode()) for m, s in model]
    return one_string(rdb_type, kind, blob, model, how)


def listpack_value(rdb_type: int, elements: Sequence[Element], how: str = "plain") -> Value:
    """Type 16 (hash), 17 (zset), 20 (set)."""
    kind = {16: "hash", 17: "zset", 20: "set"}[rdb_type]
    model: Any = [digits(e) for e in elements] if rdb_type == 20 else pairs_of(elements)
    if rdb_type == 17:
        model = [(m, s.decode()) for m, s in model]
    return one_string(rdb_type, kind, listpack(elements), model, how)


def intset_value(values: Sequence[int], width: int, how: str = "plain") -> Value:
    return one_string(11, "set", intset(values, width), [str(v).encode() for v in values], how)


def zipmap_value(pairs: Sequence[tuple[bytes, bytes]], free: Sequence[int] = ()) -> Value:
    return one_string(9, "hash", zipmap(pairs, free), list(pairs))


def quicklist1(nodes: Sequence[Sequence[Element]], compressed: Iterable[int] = ()) -> Value:
    """Type 14: ziplist nodes; those whose index is in `compressed` LZF-compressed."""
    lzf = set(compressed)
    payload = length(len(nodes)) + b"".join(
        stored(ziplist(node), "lzf" if i in lzf else "plain") for i, node in enumerate(nodes)
    )
    return Value(14, payload, "list", [digits(e) for node in nodes for e in node])


def quicklist2(nodes: Sequence[bytes | Sequence[Element]], compressed: Iterable[int] = ()) -> Value:
    """Type 18: a bytes node is PLAIN (one element), a sequence a PACKED listpack."""
    lzf = set(compressed)
    payload, model = bytearray(length(len(nodes))), []
    for index, node in enumerate(nodes):
        how = "lzf" if index in lzf else "plain"
        if isinstance(node, bytes):
            payload += length(1) + stored(node, how)
            model.append(node)
        else:
            payload += length(2) + stored(listpack(node), how)
            model += [digits(e) for e in node]
    return Value(18, bytes(payload), "list", model)


def hash_with_ttls(rdb_type: int, triples: Sequence[tuple[bytes, bytes, int]],
                   min_expiry_ms: int = 1_900_000_000_000) -> Value:  # fmt: skip
    """Types 22/24 (field TTL, field, value each) and 23/25 (a listpack of field, value,
    TTL); 24 and 25 start with the smallest expiry, 8 bytes."""
    head = struct.pack("<q", min_expiry_ms) if rdb_type in (24, 25) else b""
    if rdb_type in (22, 24):
        body = length(len(triples)) + b"".join(
            length(ttl) + string(f) + string(v) for f, v, ttl in triples
        )
    else:
        body = string(listpack([x for f, v, ttl in triples for x in (f, v, ttl)]))
    return Value(rdb_type, head + body, "hash", [(f, v) for f, v, _ in triples])


# --- streams ---------------------------------------------------------------------------


@dataclass
class StreamEntry:
    ms: int
    seq: int
    fields: list[tuple[Element, Element]]
    deleted: bool = False


@dataclass
class Consumer:
    name: bytes
    pending: list[tuple[int, int]] = field(default_factory=list)
    seen_ms: int = 1_700_000_000_000
    active_ms: int = 1_700_000_000_000


@dataclass
class Group:
    name: bytes
    last_delivered: tuple[int, int]
    entries_read: int | None = None  # None: saved as 2**64-1, Redis's "invalid"
    # (ms, seq, delivery time, delivery count): every one must belong to a consumer
    pending: list[tuple[int, int, int, int]] = field(default_factory=list)
    consumers: list[Consumer] = field(default_factory=list)


@dataclass
class Stream:
    """A stream's model as the JSON gives it (entries without the deleted ones)."""

    entries: list[tuple[str, list[bytes]]]
    last_id: str
    entries_added: int | None
    max_deleted_id: str | None
    groups: list[tuple[bytes, str, int | None]]


def stream_node(
    entries: Sequence[StreamEntry], master_fields: Sequence[bytes] | None = None
) -> tuple[bytes, bytes]:
    """(node key, listpack) of one stream node, as t_stream.c writes it: the master entry
    (count, deleted, master fields, 0), then per entry flags, ms-diff, seq-diff, [field
    count, fields and values | values only when its fields are the master's], lp-count."""
    first = entries[0]
    master = list(master_fields if master_fields is not None else [f for f, _ in first.fields])
    live = sum(not e.deleted for e in entries)
    elements: list[Element] = [live, len(entries) - live, len(master), *master, 0]
    for entry in entries:
        names = [f for f, _ in entry.fields]
        same = names == master
        flags = (1 if entry.deleted else 0) | (2 if same else 0)
        part: list[Element] = [flags, entry.ms - first.ms, entry.seq - first.seq]
        if same:
            part += [v for _, v in entry.fields]
        else:
            part += [len(names), *[x for pair in entry.fields for x in pair]]
        elements += [*part, len(part)]
    return struct.pack(">QQ", first.ms, first.seq), listpack(elements)


def stream_value(
    rdb_type: int,
    nodes: Sequence[Sequence[StreamEntry]],
    groups: Sequence[Group] = (),
    *,
    last_id: tuple[int, int] | None = None,
    max_deleted: tuple[int, int] = (0, 0),
    entries_added: int | None = None,
    node_how: str = "plain",
) -> Value:
    """Types 15 (Redis 5-6), 19 (7.0: first id, max deleted id, entries added, entries
    read) and 21 (7.2: consumers' active time)."""
    every = [e for node in nodes for e in node]
    live = [e for e in every if not e.deleted]
    last = last_id or ((every[-1].ms, every[-1].seq) if every else (0, 0))
    out = bytearray(length(len(nodes)))
    for node in nodes:
        key, blob = stream_node(node)
        out += string(key) + stored(blob, node_how)
    out += length(len(live)) + length(last[0]) + length(last[1])
    added = entries_added if entries_added is not None else len(every)
    if rdb_type >= 19:
        first = (live[0].ms, live[0].seq) if live else (0, 0)
        out += length(first[0]) + length(first[1]) + length(max_deleted[0])
        out += length(max_deleted[1]) + length(added)
    out += length(len(groups))
    for group in groups:
        out += string(group.name) + length(group.last_delivered[0])
        out += length(group.last_delivered[1])
        if rdb_type >= 19:
            out += length((1 << 64) - 1 if group.entries_read is None else group.entries_read)
        out += length(len(group.pending))
        for ms, seq, delivered_ms, count in group.pending:
            out += struct.pack(">QQ", ms, seq) + struct.pack("<q", delivered_ms) + length(count)
        out += length(len(group.consumers))
        for consumer in group.consumers:
            out += string(consumer.name) + struct.pack("<q", consumer.seen_ms)
            if rdb_type >= 21:
                out += struct.pack("<q", consumer.active_ms)
            out += length(len(consumer.pending))
            out += b"".join(struct.pack(">QQ", ms, seq) for ms, seq in consumer.pending)
    newer = rdb_type >= 19
    model = Stream(
        entries=[(f"{e.ms % (1 << 64)}-{e.seq % (1 << 64)}",
                  [digits(x) for pair in e.fields for x in pair]) for e in live],
        last_id=f"{last[0]}-{last[1]}",
        entries_added=added if newer else None,
        max_deleted_id=f"{max_deleted[0]}-{max_deleted[1]}" if newer else None,
        groups=[(g.name, "{}-{}".format(*g.last_delivered), g.entries_read if newer else None)
                for g in groups],
    )  # fmt: skip
    return Value(rdb_type, bytes(out), "stream", model)


# --- modules -----------------------------------------------------------------------------

MODULE_CHARSET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def module_id(name: str, encoding_version: int = 0) -> int:
    """moduleTypeEncodeId: nine characters of the charset, then 10 bits of version."""
    assert len(name) == 9
    number = 0
    for char in name:
        number = number << 6 | MODULE_CHARSET.index(char)
    return number << 10 | encoding_version


def module_values(values: Sequence[tuple[int, Any]]) -> bytes:
    """Opcode-prefixed values (1 signed and 2 unsigned: lengths, 3 float, 4 double,
    5 string), then the EOF opcode 0."""
    out = bytearray()
    for opcode, value in values:
        out += length(opcode)
        if opcode in (1, 2):
            out += length(value)
        elif opcode == 3:
            out += struct.pack("<f", value)
        elif opcode == 4:
            out += struct.pack("<d", value)
        else:
            out += string(value)
    return bytes(out + length(0))


def module_value(name: str, values: Sequence[tuple[int, Any]]) -> Value:
    """Type 7: the module id, then its values; not in the JSON (model None)."""
    return Value(7, length(module_id(name)) + module_values(values), "module", None)


# --- the file ------------------------------------------------------------------------------


@dataclass
class WrittenKey:
    db: int
    key: bytes
    value: Value
    expires_at_ms: int | None
    record: bytes  # its bytes in the file: expiry, IDLE, FREQ, type, key, value


class RdbWriter:
    """Records in the order they are added; `keys` remembers what went in, for the expected
    JSON. Every method returns the writer."""

    def __init__(self, version: int = 10) -> None:
        self.data = bytearray(b"REDIS%04d" % version)
        self.keys: list[WrittenKey] = []
        self.db = 0

    def raw(self, data: bytes) -> "RdbWriter":
        self.data += data
        return self

    def aux(self, name: bytes, value: bytes | int) -> "RdbWriter":
        encoded = int_string(value, 4) if isinstance(value, int) else string(value)
        return self.raw(b"\xfa" + string(name) + encoded)

    def select(self, db: int, form: int | None = None) -> "RdbWriter":
        self.db = db
        return self.raw(b"\xfe" + length(db, form))

    def resize(self, keys: int, expires: int) -> "RdbWriter":
        return self.raw(b"\xfb" + length(keys) + length(expires))

    def function(self, code: bytes) -> "RdbWriter":
        return self.raw(b"\xf5" + string(code))

    def module_aux(self, name: str, when: int, values: Sequence[tuple[int, Any]]) -> "RdbWriter":
        """rdbSaveSingleModuleAux: module id, then `when` as an opcode-2 value (1 before
        the keys, 2 after), then the module's values and the EOF opcode."""
        return self.raw(b"\xf7" + length(module_id(name)) + module_values([(2, when), *values]))

    def key(self, name: bytes, value: Value, *, expires_ms: int | None = None,
            expires_s: int | None = None, idle: int | None = None, freq: int | None = None,
            key_how: str = "plain") -> "RdbWriter":  # fmt: skip
        expiry, start = None, len(self.data)
        if expires_ms is not None:
            self.raw(b"\xfc" + struct.pack("<q", expires_ms))
            expiry = expires_ms
        elif expires_s is not None:
            self.raw(b"\xfd" + struct.pack("<i", expires_s))
            expiry = expires_s * 1000
        if idle is not None:
            self.raw(b"\xf8" + length(idle))
        if freq is not None:
            self.raw(b"\xf9" + bytes([freq]))
        self.raw(bytes([value.rdb_type]) + stored(name, key_how) + value.payload)
        self.keys.append(WrittenKey(self.db, name, value, expiry, bytes(self.data[start:])))
        return self

    def end(self, *, checksum: bool = True) -> bytes:
        """The EOF opcode and the CRC64 of everything before it (0: not checked)."""
        self.data += b"\xff"
        crc = crc64(bytes(self.data)) if checksum else 0
        return bytes(self.data + struct.pack("<Q", crc))
