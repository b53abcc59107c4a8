"""Random RDBs that redis-server 7.0 loads (RDB 10, its deep checks on): many keys, each of
a random type in a random encoding with random contents (integers of every width,
strings of every length class, UTF-8 and not), for the server oracle. The same seed gives
the same file."""

import random

from tests.support.rdb_build import (
    Consumer,
    Element,
    Enc,
    Group,
    RdbWriter,
    StreamEntry,
    Value,
    binary_zset,
    integer_string,
    intset_value,
    linked_list,
    listpack_value,
    plain_hash,
    plain_string,
    quicklist1,
    quicklist2,
    stream_value,
    text_zset,
    ziplist_value,
    zipmap_value,
)  # fmt: skip
from tests.support.rdb_crafted import FUTURE_MS, Crafted

_INT_RANGES = [(0, 12), (-128, 127), (0, 127), (-4096, 4095), (-(1 << 15), (1 << 15) - 1),
               (-(1 << 23), (1 << 23) - 1), (-(1 << 31), (1 << 31) - 1),
               (-(1 << 63), (1 << 63) - 1)]  # fmt: skip
_STRING_SIZES = [0, 1, 5, 63, 64, 200, 4095, 4096, 16383, 16384]


class _Pool:
    """Distinct random elements: integers of every encoding width and strings."""

    def __init__(self, rnd: random.Random) -> None:
        self.rnd = rnd
        self.used: set[bytes] = set()

    def string(self) -> bytes:
        rnd = self.rnd
        while True:
            size = rnd.choice(_STRING_SIZES) if rnd.randrange(4) == 0 else rnd.randrange(1, 20)
            kind = rnd.randrange(3)
            if kind == 0:
                data = bytes(rnd.choice(b"abcxyz_:-") for _ in range(size))
            elif kind == 1:
                data = "".join(rnd.choice('aé€🎵\n"\\') for _ in range(size)).encode()[:size]
            else:
                data = rnd.randbytes(size)
            if data not in self.used:
                self.used.add(data)
                return data

    def integer(self) -> int:
        while True:
            low, high = self.rnd.choice(_INT_RANGES)
            value = self.rnd.randint(low, high)
            if str(value).encode() not in self.used:
                self.used.add(str(value).encode())
                return value

    def element(self) -> Element:
        return self.integer() if self.rnd.randrange(2) else self.string()

    def elements(self, count: int) -> list[Element]:
        return [self.element() for _ in range(count)]

    def small_strings(self, count: int) -> list[bytes]:
        return [self.string()[:40] or b"-" for _ in range(count)]


def _as_bytes(element: Element) -> bytes:
    value = element.value if isinstance(element, Enc) else element
    return str(value).encode() if isinstance(value, int) else value


def _score(rnd: random.Random) -> float:
    return rnd.choice([rnd.uniform(-1e6, 1e6), float(rnd.randint(-1000, 1000)), rnd.random(),
                       rnd.uniform(-1, 1) * 10 ** rnd.randint(-300, 300)])  # fmt: skip


def _stream(rnd: random.Random, pool: _Pool) -> Value:
    nodes, ms = [], rnd.randint(1, 1 << 40)
    deleted: list[tuple[int, int]] = []
    for _ in range(rnd.randint(1, 4)):
        fields = pool.small_strings(rnd.randint(1, 3))
        node = []
        for i in range(rnd.randint(1, 6)):
            ms += rnd.choice([0, 1, 1000])
            seq = rnd.choice([0, rnd.randint(0, 1 << 40)]) if ms else 1
            names = fields if rnd.randrange(3) else pool.small_strings(rnd.randint(1, 3))
            gone = i > 0 and rnd.randrange(5) == 0
            node.append(StreamEntry(ms, seq, [(f, pool.element()) for f in names], deleted=gone))
            if gone:
                deleted.append((ms, seq))
            ms += 1
        nodes.append(node)
    live = [(e.ms, e.seq) for node in nodes for e in node if not e.deleted]
    groups = []
    for g in range(rnd.randint(0, 2)):
        pending = rnd.sample(live, rnd.randint(0, min(3, len(live))))
        owners = [Consumer(b"c%d" % c) for c in range(rnd.randint(1, 2))]
        for entry in pending:
            rnd.choice(owners).pending.append(entry)
        for owner in owners:
            owner.pending.sort()
        nacks = sorted((m, s, 1_700_000_000_000 + rnd.randrange(1000), rnd.choice([1, 64, 300]))
                       for m, s in pending)  # fmt: skip
        groups.append(Group(b"group-%d" % g, rnd.choice(live), rnd.choice([None, 0, 3]),
                            nacks, owners if pending or rnd.randrange(2) else []))  # fmt: skip
    rdb_type = rnd.choice([15, 19])
    return stream_value(rdb_type, nodes, groups, max_deleted=max(deleted, default=(0, 0)),
                        node_how=rnd.choice(["plain", "lzf"]))  # fmt: skip


def _value(rnd: random.Random, pool: _Pool) -> Value:
    n = rnd.randint(1, 12)
    how = rnd.choice(["plain", "plain", "lzf"])
    kind = rnd.choice(["string", "int", "list1", "set2", "hash4", "zset3", "zset5", "zipmap",
                       "ziplist10", "intset", "ziplist12", "ziplist13", "quicklist14",
                       "listpack16", "listpack17", "quicklist18", "stream"])  # fmt: skip
    if kind == "string":
        return plain_string(pool.string(), how)
    if kind == "int":
        width = rnd.choice([1, 2, 4])
        limit = 1 << (8 * width - 1)
        return integer_string(rnd.randint(-limit, limit - 1), width)
    if kind in ("list1", "set2"):
        return linked_list([pool.string() for _ in range(n)], 1 if kind == "list1" else 2, how)
    if kind == "hash4":
        return plain_hash([(pool.string(), pool.string()) for _ in range(n)])
    if kind == "zset3":
        return text_zset([(pool.string(), repr(_score(rnd)).encode()) for _ in range(n)])
    if kind == "zset5":
        return binary_zset([(pool.string(), _score(rnd)) for _ in range(n)])
    if kind == "zipmap":
        return zipmap_value([(pool.string()[:300], pool.string()[:300]) for _ in range(n)],
                            free=[rnd.randint(0, 4) for _ in range(n)])  # fmt: skip
    if kind == "intset":
        width = rnd.choice([2, 4, 8])
        limit = 1 << (8 * width - 1)
        return intset_value(sorted({rnd.randint(-limit, limit - 1) for _ in range(n)}), width, how)
    if kind in ("ziplist10", "ziplist13", "listpack16", "quicklist14", "quicklist18"):
        elements = pool.elements(2 * n)
        if kind == "ziplist10":
            return ziplist_value(10, elements, how, wide_prevlen=rnd.sample(range(2 * n), 1))
        if kind == "ziplist13":
            return ziplist_value(13, elements, how)
        if kind == "listpack16":
            return listpack_value(16, elements, how)
        cut = rnd.randint(1, 2 * n)
        if kind == "quicklist14":
            return quicklist1([elements[:cut], elements[cut:]] if cut < 2 * n else [elements],
                              compressed=[0] if how == "lzf" else [])  # fmt: skip
        return quicklist2([elements[:cut], _as_bytes(elements[-1]) + b"!plain"],
                          compressed=rnd.sample(range(2), rnd.randint(0, 2)))  # fmt: skip
    if kind in ("ziplist12", "listpack17"):
        pairs: list[Element] = []
        for _ in range(n):
            score = rnd.choice([rnd.randint(-(1 << 40), 1 << 40), repr(_score(rnd)).encode()])
            pairs += [pool.string(), score]
        if kind == "ziplist12":
            return ziplist_value(12, pairs, how)
        return listpack_value(17, pairs, how)
    return _stream(rnd, pool)


def random_loadable(seed: int, keys: int = 150) -> Crafted:
    rnd = random.Random(seed)
    pool = _Pool(rnd)
    rdb = RdbWriter(10).aux(b"redis-ver", b"7.0.15")
    for db in sorted(rnd.sample(range(16), 3)):
        rdb.select(db)
        for _ in range(keys // 3):
            expiry = FUTURE_MS + rnd.randrange(1 << 30) if rnd.randrange(4) == 0 else None
            rdb.key(pool.string() or b"empty-name", _value(rnd, pool), expires_ms=expiry,
                    key_how=rnd.choice(["plain", "plain", "lzf"]))  # fmt: skip
    return Crafted(rdb.end(), tuple(rdb.keys))
