"""Crafted RDB files of every value encoding (tests/support/rdb_build.py), each with the
keys it holds, for the oracle tests of the RDB -> JSON walk and the fuzz corpus.

`LOADABLE` files are in formats redis-server 7.0 (RDB 10) loads: RDB version <= 10, no
module data, no expiry in the past (a master drops those on load), nothing empty.
"""

import random
import struct
from dataclasses import dataclass
from functools import cache

from tests.support.rdb_build import (
    Consumer,
    Enc,
    Group,
    RdbWriter,
    StreamEntry,
    Value,
    WrittenKey,
    binary_zset,
    hash_with_ttls,
    int_string,
    integer_string,
    intset_value,
    length,
    linked_list,
    listpack_value,
    lzf_string,
    module_value,
    plain_hash,
    plain_string,
    quicklist1,
    quicklist2,
    stream_value,
    text_zset,
    ziplist_value,
    zipmap_value,
)  # fmt: skip

NOW_MS = 1_800_000_000_000
FUTURE_MS = 4_102_444_800_000  # 2100-01-01
FUNCTION = b"#!lua name=craftedlib\nredis.register_function('one', function() return 1 end)"
MIB = 1 << 20


@dataclass(frozen=True)
class Crafted:
    data: bytes
    keys: tuple[WrittenKey, ...]


def _done(rdb: RdbWriter, *, checksum: bool = True) -> Crafted:
    return Crafted(rdb.end(checksum=checksum), tuple(rdb.keys))


def _text(rnd: random.Random, size: int) -> bytes:
    words = [b"alpha", b"beta", b"gamma", b"\xc3\xa9t\xc3\xa9", b"\xe2\x82\xac", b'\n\t"\\']
    out = bytearray()
    while len(out) < size:
        out += rnd.choice(words) + b" "
    return bytes(out[:size])


def strings() -> Crafted:
    rnd = random.Random(1)
    rdb = RdbWriter(10).aux(b"redis-ver", b"7.0.15").aux(b"redis-bits", 64)
    rdb.aux(b"ctime", 1_700_000_000).aux(b"used-mem", 1 << 20).select(0).resize(40, 5)
    for name, data in [
        (b"utf8", "Grüße, ユーザー 🎵".encode()), (b"empty", b""), (b"binary", bytes(range(256))),
        (b"controls", bytes(range(32)) + b"\x7f\"\\/"), (b"surrogate", b"\xed\xa0\x80"),
        (b"overlong", b"\xc0\xaf"), (b"above-max", b"\xf4\x90\x80\x80"),
        (b"truncated-utf8", b"ok\xe2\x82"), (b"len-63", b"a" * 63), (b"len-64", b"b" * 64),
        (b"len-16383", b"c" * 16383), (b"len-16384", b"d" * 16384),
    ]:  # fmt: skip
        rdb.key(name, plain_string(data))
    for value, width in [(0, 1), (-128, 1), (127, 1), (-32768, 2), (32767, 2), (300, 2),
                         (-(1 << 31), 4), ((1 << 31) - 1, 4), (70000, 4)]:  # fmt: skip
        rdb.key(b"int:%d:%d" % (width, value), integer_string(value, width))
    lzf_cases = [
        (b"lzf:text", _text(rnd, 3000)), (b"lzf:run", b"x" * 5000),
        (b"lzf:long-match", b"abcdefgh" * 200 + b"tail"),
        (b"lzf:far", b"far-marker-0123" + rnd.randbytes(8170) + b"far-marker-0123"),  # 8185 back
        (b"lzf:binary", bytes(range(256)) * 8), (b"lzf:short", b"aaaaaaaaaaaaaaaaaaaaaaaa"),
    ]  # fmt: skip
    for name, data in lzf_cases:
        rdb.key(name, plain_string(data, "lzf"))
    rdb.key(b"lzf-key:" + b"k" * 40, plain_string(b"value of a compressed key"), key_how="lzf")
    rdb.key(b"\xff\x00binary-key", plain_string(b"v"))
    rdb.key(b"ttl:ms", plain_string(b"soon"), expires_ms=FUTURE_MS, idle=1234)
    rdb.key(b"ttl:s", plain_string(b"later"), expires_s=(1 << 31) - 1, freq=200)
    rdb.select(3).key(b"db3", plain_string(b"three"), expires_ms=FUTURE_MS + 1)
    rdb.select(7, form=2).key(b"db7", plain_string(b"db number in 32 bits"))
    return _done(rdb)


def old_types() -> Crafted:
    """Redis 2.x-6 encodings, with an RDB 6 header."""
    rdb = RdbWriter(6).select(0)
    rdb.key(b"list:linked", linked_list([b"a", b"b", b"a", b"\x00\xff", b"x" * 300]))
    rdb.key(b"list:linked-lzf", linked_list([b"y" * 100, b"z" * 50], how="lzf"))
    rdb.key(b"set:linked", linked_list([b"x", b"y", b"\xfe", b"12"], rdb_type=2))
    rdb.key(b"hash:plain", plain_hash([(b"name", "Zoë".encode()), (b"\xffbin", b"\x00\x01")]))
    rdb.key(b"zset:text", text_zset([(b"low", b"-1.25"), (b"high", b"1e300"),
                                     (b"up", float("inf")), (b"down", float("-inf")),
                                     (b"int", b"42"), (b"sci", b"1.5e-7")]))  # fmt: skip
    rdb.key(b"zset:binary", binary_zset([(b"a", 1.5), (b"b", -0.1), (b"c", 1e300),
                                         (b"d", float("inf")), (b"e", float("-inf")),
                                         (b"f", 0.1 + 0.2), (b"g", 5e-324),
                                         (b"h", 3.0)]))  # fmt: skip
    rdb.key(b"hash:zipmap", zipmap_value([(b"f1", b"v1"), (b"f2", b"x" * 300), (b"", b"empty"),
                                          (b"long-" * 60, b"v")], free=[0, 4, 1, 2]))  # fmt: skip
    every_ziplist_encoding = [
        b"", b"short", b"m" * 63, b"n" * 64, b"o" * 16383, b"p" * 16384, 0, 12, 13, -1, 127, -128,
        128, 32767, -32768, 32768, (1 << 23) - 1, -(1 << 23), 1 << 23, (1 << 31) - 1,
        -(1 << 31), 1 << 31, (1 << 63) - 1, -(1 << 63), Enc(5, "int64"), Enc(b"wide", "str32"),
        Enc(b"mid", "str14"), Enc(7, "int24"), b"after-wide-prevlen",
    ]  # fmt: skip
    rdb.key(b"list:ziplist", ziplist_value(10, every_ziplist_encoding, wide_prevlen=[2, 28]))
    rdb.key(b"list:ziplist-lzf", ziplist_value(10, [b"q" * 200, b"q" * 200, 5], how="lzf"))
    rdb.key(b"set:intset16", intset_value([-32768, -1, 0, 7, 32767], 2))
    rdb.key(b"set:intset32", intset_value([-(1 << 31), 0, 70000, (1 << 31) - 1], 4))
    rdb.key(b"set:intset64", intset_value([-(1 << 63), -5, 1 << 40, (1 << 63) - 1], 8))
    rdb.key(b"set:intset64-small", intset_value([1, 2, 3], 8, how="lzf"))
    rdb.key(b"zset:ziplist", ziplist_value(12, [b"a", 1, b"b", b"2.5", b"c", -7, b"\xff", b"inf",
                                                b"d", 1 << 40]))  # fmt: skip
    rdb.key(b"hash:ziplist", ziplist_value(13, [b"name", "Zoë".encode(), b"n", 42, 7, b"seven",
                                                b"big", b"v" * 300, b"after", b"big"]))  # fmt: skip
    rdb.key(
        b"list:quicklist1",
        quicklist1([[b"a", b"b", 1], [b"c" * 100, b"c" * 100, -3], [b"tail"]], compressed=[1]),
    )
    rdb.select(5).key(b"db5:hash", plain_hash([(b"k", b"v")]), expires_ms=FUTURE_MS)
    return _done(rdb)


def _stream_groups(rdb_type: int) -> list[Group]:
    alice = Consumer(b"alice", pending=[(1, 1), (2, 0)])
    bob = Consumer(b"bob", pending=[(5, 7)])
    return [
        Group(b"workers", (5, 7), entries_read=3 if rdb_type >= 19 else None,
              pending=[(1, 1, 1_700_000_000_000, 100), (2, 0, 1_700_000_000_001, 1),
                       (5, 7, 1_700_000_000_002, 70000)],
              consumers=[alice, bob, Consumer(b"idle")]),
        Group(b"unread", (0, 0)),
        Group("grüppe".encode(), (2, 0), entries_read=None),
    ]  # fmt: skip


def _stream_nodes() -> list[list[StreamEntry]]:
    return [
        [StreamEntry(1, 1, [(b"event", b"play"), (b"track", "Träumerei".encode())]),
         StreamEntry(2, 0, [(b"event", b"pause"), (b"track", b"x")]),
         StreamEntry(2, 1, [(b"event", b"gone")], deleted=True),
         StreamEntry(3, 5, [(b"other", 17), (7, -4000), (b"n", 1 << 40)])],
        [StreamEntry(5, 7, [(b"k", b"v")]),
         StreamEntry(1 << 40, 0, [(b"k", b"w" * 100)]),
         StreamEntry((1 << 40) + 3, 1 << 33, [(b"k", b"z"), (b"more", b"fields")])],
    ]  # fmt: skip


def version10_types() -> Crafted:
    """Redis 7.0's encodings: listpacks, quicklist 2, streams 15 and 19, a function."""
    rdb = RdbWriter(10).aux(b"redis-ver", b"7.0.15").function(FUNCTION).select(0)
    every_listpack_encoding = [
        b"", b"s" * 63, b"t" * 64, b"u" * 4095, b"v" * 4096, 0, 127, 128, -1, 4095, -4096, 4096,
        -4097, 32767, -32768, (1 << 23) - 1, -(1 << 23), (1 << 31) - 1, -(1 << 31), 1 << 31,
        (1 << 63) - 1, -(1 << 63), Enc(3, "int64"), Enc(-2, "int13"), Enc(b"w", "str32"),
        Enc(b"x", "str12"), Enc(9, "int16"), Enc(9, "int24"), Enc(9, "int32"),
    ]  # fmt: skip
    rdb.key(b"list:quicklist2", quicklist2(
        [every_listpack_encoding, b"plain node " * 10, [b"lzf" * 30, 1, 2], b"p" * 300],
        compressed=[2, 3]))  # fmt: skip
    rdb.key(b"hash:listpack", listpack_value(16, [b"name", "Zoë".encode(), b"n", 42, 7, b"seven",
                                                  b"big", b"v" * 5000]))  # fmt: skip
    rdb.key(b"hash:listpack-lzf", listpack_value(16, [b"a" * 40, b"b" * 40, b"c", b"a" * 40],
                                                 how="lzf"))  # fmt: skip
    rdb.key(b"zset:listpack", listpack_value(17, [b"a", 1, b"b", b"2.5", b"c", -7, b"d",
                                                  b"-inf", b"e", 1 << 50]))  # fmt: skip
    for rdb_type in (15, 19):
        rdb.key(b"stream:%d" % rdb_type, stream_value(
            rdb_type, _stream_nodes(), _stream_groups(rdb_type), max_deleted=(2, 1),
            entries_added=9))  # fmt: skip
    rdb.key(b"stream:lzf-nodes", stream_value(19, _stream_nodes()[:1], node_how="lzf"))
    rdb.key(b"stream:ttl", stream_value(19, _stream_nodes()[1:]), expires_ms=FUTURE_MS)
    return _done(rdb)


def version11_types() -> Crafted:
    """Redis 7.2: set listpacks, streams 21 (consumers' active time)."""
    rdb = RdbWriter(11).select(0)
    rdb.key(b"set:listpack", listpack_value(20, [b"a", 1, b"\xff", -5000, b"x" * 70]))
    rdb.key(b"set:listpack-lzf", listpack_value(20, [b"m" * 30, b"n" * 30], how="lzf"))
    rdb.key(b"stream:21", stream_value(21, _stream_nodes(), _stream_groups(21), max_deleted=(2, 1)))
    return _done(rdb)


def version12_types() -> Crafted:
    """Redis 7.4: hashes with field expiry, types 22-25."""
    triples = [(b"f1", b"v1", 0), (b"f2", 7, 1_900_000_000_000), (b"\xff", b"x" * 70, 5)]
    rdb = RdbWriter(12).select(0)
    for rdb_type in (22, 23, 24, 25):
        fields = [(f, v if isinstance(v, bytes) else str(v).encode(), t) for f, v, t in triples]
        rdb.key(b"hash:ttl:%d" % rdb_type, hash_with_ttls(rdb_type, fields))
    return _done(rdb)


def modules() -> Crafted:
    """Module keys (skipped, counted by module name) and module aux data."""
    rdb = RdbWriter(10).aux(b"redis-ver", b"7.0.15")
    rdb.module_aux("craftaux1", 1, [(5, b"aux data"), (2, 300)])
    rdb.select(0).key(b"plain", plain_string(b"between modules"))
    values = [(1, 5), (2, 1 << 40), (3, 1.5), (4, -2.25), (5, b"module string")]
    rdb.key(b"mod:a", module_value("ReJSON-RL", values), expires_ms=FUTURE_MS)
    rdb.key(b"mod:b", module_value("ReJSON-RL", []))
    rdb.key(b"mod:c", module_value("craft_0-9", [(5, b"x" * 100)]))
    rdb.module_aux("craftaux1", 2, [])
    return _done(rdb)


def edges() -> Crafted:
    """What redis-server would not load back as it is: past and negative expiries, empty
    collections, NaN and -0 scores, keys before any SELECTDB."""
    rdb = RdbWriter(9)
    rdb.key(b"before-select", plain_string(b"db 0"), expires_ms=NOW_MS - 1)
    rdb.key(b"negative-ms", plain_string(b"x"), expires_ms=-5)
    rdb.key(b"negative-s", plain_string(b"x"), expires_s=-1)
    rdb.key(b"now", plain_string(b"x"), expires_ms=NOW_MS)
    rdb.key(b"max", plain_string(b"x"), expires_ms=(1 << 63) - 1)
    rdb.key(b"min", plain_string(b"x"), expires_ms=-(1 << 63))
    rdb.key(b"empty:list", linked_list([]))
    rdb.key(b"empty:ziplist", ziplist_value(10, []))
    rdb.key(b"empty:listpack-hash", listpack_value(16, []))
    rdb.key(b"empty:intset", intset_value([], 2))
    rdb.key(b"empty:quicklist", quicklist2([]))
    rdb.key(b"empty:stream", stream_value(19, [], [Group(b"g", (0, 0))]))
    rdb.key(b"zset:zeros", binary_zset([(b"neg0", -0.0), (b"pos0", 0.0), (b"tiny", -5e-324)]))
    rdb.key(b"zset:text-nan", text_zset([(b"n", float("nan")), (b"s", b"  spaced "),
                                         (b"b", b"\xff1"), (b"e", b"")]))  # fmt: skip
    rdb.key(b"intset:unsorted", intset_value([5, 1, 5], 2))
    rdb.key(b"zset:random-doubles", binary_zset(_random_doubles(random.Random(5), 40)))
    rdb.key(b"utf8:valid", plain_string(_VALID_UTF8))
    for number, invalid in enumerate(_INVALID_UTF8):
        rdb.key(b"utf8:invalid:%d" % number, linked_list([invalid, b"ok" + invalid + b"ok"]))
    rdb.key(b"", plain_string(b"an empty key name"), expires_s=-(1 << 31))
    rdb.key(b"-5", plain_string(b"an int-encoded key"), key_how="int1")
    rdb.key(b"lzf:empty", Value(0, b"\xc3\x00\x00", "string", b""))
    ints = int_string(5, 1) + int_string(-300, 2) + int_string(70000, 4)
    rdb.key(b"list:int-encoded", Value(1, length(3) + ints, "list", [b"5", b"-300", b"70000"]))
    rdb.key(b"hash:encoded", Value(4, length(1) + int_string(7, 1) + lzf_string(b"v" * 30), "hash",
                                   [(b"7", b"v" * 30)]))  # fmt: skip
    rdb.key(b"zset:encoded", Value(5, length(1) + int_string(-1, 4) + struct.pack("<d", 2.5),
                                   "zset", [(b"-1", "2.5")]))  # fmt: skip
    rdb.raw(b"\xf4" + length(3) + length(1000) + length(1000))  # SLOT_INFO
    rdb.resize(1, 1).select(0).select(0)
    rdb.key(b"70000", plain_string(b"another"), key_how="int4")
    wrapping = [StreamEntry((1 << 64) - 1, (1 << 64) - 1, [(b"f", b"")]),
                StreamEntry(1 << 64, (1 << 64) + 4, [(b"f", b"wrapped to 0-3")])]  # fmt: skip
    rdb.key(b"stream:wrapping", stream_value(19, [wrapping], [Group(b"\xff\xfe", (0, 3))],
                                             last_id=(0, 3)))  # fmt: skip
    rdb.select((1 << 64) - 1).key(b"db:max", plain_string(b"db 2**64-1"))
    rdb.select(1 << 40).key(b"db:2**40", plain_string(b"x"))
    return _done(rdb, checksum=False)


# every class of code point Python writes as it is (U+2028, U+FEFF, noncharacters, the last)
_VALID_UTF8 = (bytes(range(128)) + "\u0080\u07ff\u0800\u2028\u2029\ufeff\ud7ff\ue000\ufffe"
               "\uffff\U00010000\U0010ffff🎵".encode())  # fmt: skip
_INVALID_UTF8 = [
    b"\x80", b"\xbf", b"\xc0\x80", b"\xc1\xbf", b"\xe0\x80\x80", b"\xe0\x9f\xbf",
    b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xf0\x80\x80\x80", b"\xf0\x8f\xbf\xbf",
    b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80", b"\xf8\x88\x80\x80\x80", b"\xfe", b"\xff",
    b"\xc2", b"\xe2\x82", b"\xf0\x9f\x8e", b"\xc2\x41", b"\xe2\x28\xa1",
]  # fmt: skip


_NAN_WITH_PAYLOAD = struct.unpack("<d", b"\x01" + bytes(5) + b"\xf8\xff")[0]


def _random_doubles(rnd: random.Random, count: int) -> list[tuple[bytes, float]]:
    """Doubles of every exponent (random bit patterns: subnormals, NaNs with payloads and
    signs) and the printing edges: 1e16, 1e21, 2**53 + 1, the largest and smallest."""
    edges = [1e16, 1e17, 1e21, 1e22, 1e-4, 1e-5, 0.1, 1 / 3, 2.0**53 + 2, 9007199254740993.0,
             1.7976931348623157e308, 2.2250738585072014e-308, 5e-324, 123456789012345680.0,
             float("nan"), -float("nan"), _NAN_WITH_PAYLOAD]  # fmt: skip
    values = edges + [struct.unpack("<d", rnd.randbytes(8))[0] for _ in range(count)]
    return [(b"m%d" % i, value) for i, value in enumerate(values)]


def listpack_backlen_bounds() -> Crafted:
    """listpack entries of exactly 16383 bytes (encoding + data), where lpEncodeBacklen
    switches from 2 to 3 bytes: a 16378-byte string (5-byte header), as redis-server 7.0
    writes for a list element of that size."""
    rdb = RdbWriter(10).select(0)
    rdb.key(b"list:16383", quicklist2([[b"a" * 16378, b"b"], [b"c" * 16377, b"d" * 16379]]))
    rdb.key(b"hash:16383", listpack_value(16, [b"f", b"v" * 16378]))
    return _done(rdb)


def big_keys() -> Crafted:
    """Keys split over several lines: pieces of 1 MiB and lines of 1000 items or 1 MiB."""
    rnd = random.Random(3)
    rdb = RdbWriter(10).select(0)
    rdb.key(b"string:2.5MiB", plain_string(_text(rnd, MIB * 5 // 2)))
    rdb.key(b"string:1MiB", plain_string(b"e" * MIB))
    rdb.key(b"string:1MiB+1", plain_string(b"f" * (MIB + 1)))
    # a multi-byte character across the piece boundary: each piece is base64 on its own
    rdb.key(b"string:split-char", plain_string(b"g" * (MIB - 1) + "é".encode() + b"h" * 5))
    rdb.key(b"string:lzf-1.2MiB", plain_string(_text(rnd, MIB + MIB // 5), "lzf"))
    rdb.key(b"list:2500", linked_list([b"item-%d" % i for i in range(2500)]))
    rdb.key(b"list:1000", linked_list([b"i%d" % i for i in range(1000)]))
    rdb.key(b"list:1001", linked_list([b"i%d" % i for i in range(1001)]))
    rdb.key(b"set:bytes-full", linked_list([b"%05d" % i + b"s" * 4000 for i in range(600)], 2))
    rdb.key(
        b"set:exactly-1MiB",
        linked_list([b"%d" % i + b"z" * (MIB // 4 - 1) for i in range(4)] + [b"after"], 2),
    )
    rdb.key(b"hash:1500", plain_hash([(b"f%d" % i, b"v%d" % i) for i in range(1500)]))
    rdb.key(b"zset:2001", binary_zset([(b"m%d" % i, i / 7) for i in range(2001)]))
    rdb.key(b"list:quicklist-many", quicklist2([[b"n%d-%d" % (n, i) for i in range(300)]
                                                for n in range(8)], compressed=[1, 5]))  # fmt: skip
    nodes = [[StreamEntry(n * 1000 + i + 1, 0, [(b"n", n), (b"i", i)]) for i in range(200)]
             for n in range(8)]  # fmt: skip
    doubles = [(m, v) for m, v in _random_doubles(random.Random(6), 3000) if v == v]  # no NaN
    rdb.key(b"zset:random-doubles", binary_zset(doubles))
    # more than 65535 elements: the count fields say "unknown" (0xFFFF)
    rdb.key(b"list:ziplist-70000", ziplist_value(10, [b"z%d" % (i % 7) for i in range(70_000)]))
    rdb.key(b"hash:listpack-33000", listpack_value(16, [x for i in range(33_000)
                                                        for x in (b"f%d" % i, i)]))  # fmt: skip
    rdb.key(b"stream:1600", stream_value(19, nodes, [Group(b"g", (5, 0), entries_read=5)]))
    return _done(rdb, checksum=False)


FILES = {
    "strings": strings, "old_types": old_types, "version10_types": version10_types,
    "version11_types": version11_types, "version12_types": version12_types,
    "modules": modules, "edges": edges, "listpack_backlen_bounds": listpack_backlen_bounds,
    "big_keys": big_keys,
}  # fmt: skip
LOADABLE = ("strings", "old_types", "version10_types", "listpack_backlen_bounds", "big_keys")
SMALL = tuple(name for name in FILES if name != "big_keys")


@cache
def crafted(name: str) -> Crafted:
    return FILES[name]()


def header_only(version: int) -> bytes:
    return b"REDIS%04d" % version + b"\xff" + struct.pack("<Q", 0)
