"""The real inputs the fuzzers start from, written into a folder:

rdb/*.rdb        snapshots of a real redis-server (`redis-cli --rdb`): compact and big
                 encodings, expiries, three databases, a stream with consumer groups,
                 pending entries and consumers, a function, LFU counters, LRU idle times;
                 and crafted-*.rdb: the crafted files of every value encoding
                 (tests/support/rdb_crafted.py), whole and one key each
json/*.jsonl     the JSON export of the same data, by the project's exporter
pg/*.dump        pg_dump --format=custom --compress=0 output through a pipe, as a backup
                 streams it: rows with escapes, end-of-data look-alikes, empty tables,
                 a large object

python -m tests.fuzz.corpus FOLDER   (starts its own throwaway servers)
"""

import os
import subprocess
import sys
from pathlib import Path

from tests.support.postgres import PostgresServer
from tests.support.rdb_build import length
from tests.support.rdb_crafted import SMALL, crafted
from tests.support.redis import RedisServer
from tests.support.redis_seed import BIG_ENCODINGS, rdb_snapshot, scan_export

FUNCTION = "#!lua name=fuzzlib\nredis.register_function('echo', function(keys, args) return 1 end)"
PG_SQL = r"""
CREATE TABLE rows (id int PRIMARY KEY, t text, b bytea, n numeric);
INSERT INTO rows SELECT i, 'row ' || i || E'\t\\ ü\n', decode(md5(i::text), 'hex'), i / 7.0
  FROM generate_series(1, 40) i;
CREATE TABLE markers (id int, t text);
INSERT INTO markers VALUES (1, E'\\.'), (2, E'a\\'), (3, E'\\.\n\n'), (4, ''), (5, NULL);
CREATE TABLE nothing (k int);
CREATE TABLE one_empty (t text);
INSERT INTO one_empty VALUES ('');
SELECT lo_from_bytea(0, decode(repeat('00', 3000) || 'ff', 'hex'));
"""


def _seed_redis(server: RedisServer) -> None:
    server.flush()
    c = server.client()
    c.set("greeting", "Grüße 🎵")
    c.set(b"bin:\xff\x00", bytes(range(40)))
    c.set("counter", 42)
    c.set("negative", -70000)
    c.set("empty", "")
    c.set("session", "token", ex=3600)
    c.set("long", "x" * 300)
    c.rpush("list", "a", "b", b"\x00\xff", 7)
    c.sadd("set", "x", "y", b"\xfe")
    c.sadd("ints", *range(20))
    c.zadd("zset", {"low": -1.25, "high": 1e300, "inf": float("inf"), "nan-ish": 0})
    c.hset("hash", mapping={"name": "Zoë", b"\xffbin": b"\x00\x01"})
    c.pexpire("hash", 10_000_000)
    c.xadd("stream", {"event": "play"}, id="1-1")
    c.xadd("stream", {"event": "pause", "at": "2"}, id="2-0")
    c.xadd("stream", {"event": "gone"}, id="3-0")
    c.xdel("stream", "3-0")
    c.xgroup_create("stream", "workers", id="0-0")
    c.xreadgroup("workers", "alice", {"stream": ">"}, count=1)
    c.xgroup_create("stream", "idle", id="$")
    c.xgroup_create("empty:stream", "g", id="$", mkstream=True)
    c.function_load(FUNCTION, replace=True)
    server.client(3).set("db3:key", "three")
    server.client(3).sadd("db3:set", "a", "b")
    server.client(5).hset("db5:hash", "k", "v")


def write_redis_corpus(folder: Path) -> None:
    (folder / "rdb").mkdir(parents=True, exist_ok=True)
    (folder / "json").mkdir(parents=True, exist_ok=True)
    with RedisServer() as server:
        client = server.client()
        client.config_set("repl-diskless-sync-delay", 0)
        _seed_redis(server)
        rdb_snapshot(server, folder / "rdb" / "compact.rdb")
        header, *keys, trailer = scan_export(server)  # keys sorted: SCAN's order is random
        (folder / "json" / "export.jsonl").write_bytes(b"".join([header, *sorted(keys), trailer]))
        for policy, name in (("allkeys-lfu", "lfu"), ("allkeys-lru", "lru")):
            client.config_set("maxmemory-policy", policy)
            _seed_redis(server)
            rdb_snapshot(server, folder / "rdb" / f"{name}.rdb")
        client.config_set("maxmemory-policy", "noeviction")
        for name, value in BIG_ENCODINGS.items():
            client.config_set(name, value)
        _seed_redis(server)
        rdb_snapshot(server, folder / "rdb" / "big.rdb")
    write_crafted_corpus(folder)


CRAFTED_KEY_BYTES = 4096  # a key record up to this size gets a file of its own


def crafted_corpus() -> dict[str, bytes]:
    """name -> RDB: every small crafted file, and each of its keys (up to
    CRAFTED_KEY_BYTES) alone in a file of the same version, where damage lands on the
    encoding more often than in a file of many keys."""
    found = {}
    for name in SMALL:
        file = crafted(name)
        found[f"crafted-{name}"] = file.data
        for number, written in enumerate(file.keys):
            if len(written.record) <= CRAFTED_KEY_BYTES:
                select = b"\xfe" + length(written.db) if written.db else b""
                rdb = file.data[:9] + select + written.record + b"\xff" + bytes(8)
                found[f"crafted-{name}-{number:03d}"] = rdb
    return found


def write_crafted_corpus(folder: Path) -> None:
    (folder / "rdb").mkdir(parents=True, exist_ok=True)
    for name, data in crafted_corpus().items():
        (folder / "rdb" / f"{name}.rdb").write_bytes(data)


def write_postgres_corpus(folder: Path, server: PostgresServer, database: str) -> None:
    """`database` is created (it must not exist), dumped and dropped."""
    (folder / "pg").mkdir(parents=True, exist_ok=True)
    server.create_database(database)
    try:
        server.execute(PG_SQL, dbname=database)
        argv = [server.binary("pg_dump"), "--format=custom", "--compress=0", database]
        env = {**os.environ, **server.env()}
        dump = subprocess.run(argv, env=env, check=True, capture_output=True)
        (folder / "pg" / "piped.dump").write_bytes(dump.stdout)
    finally:
        server.drop_database(database)


def main() -> None:
    folder = Path(sys.argv[1])
    write_redis_corpus(folder)
    with PostgresServer() as server:
        write_postgres_corpus(folder, server, "fuzz_corpus")
    print(folder)


if __name__ == "__main__":
    main()
