"""Fidelity of the one-pass backup on a real redis-server: random keys of every type
(names and values with quotes, newlines, NUL, invalid UTF-8; encodings small and large;
absolute TTLs; streams with deleted entries, groups, pending entries, empty streams) are
backed up once, the JSON restored into one empty server and the RDB into another. The
RDB's copy equals the source in everything; the JSON's in everything the JSON format
holds (not a group's pending entries and consumers).

Deterministic for CI (`derandomize`, few examples); JARVIS_LONG_PROPERTY_TESTS=1 runs
many more by hand."""

import itertools
import json
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jarvis_tui.exit_codes import ExitCode
from tests.support.redis import RedisServer
from tests.support.redis_seed import RedisCase, fast_sync

LONG_RUN = os.environ.get("JARVIS_LONG_PROPERTY_TESTS") == "1"
DBS = (0, 1, 2)
# Absolute expiries far in the future: restored exactly (PEXPIRETIME), whatever the clock.
EXPIRIES = (4_102_444_800_000, 4_102_444_800_001, 5_000_000_000_123)
# Bytes that JSON escapes, invalid UTF-8 (a surrogate, an overlong NUL, beyond U+10FFFF, a
# cut sequence), valid multi-byte UTF-8, and text that looks like an escape.
AWKWARD = [b'"', b"\\", b"\n", b"\r\n", b"\x00", b"\x1f", b"\x7f", b"\xff", b"\xed\xa0\x80",
           b"\xc0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82", "é€🎵".encode(), b"\\u0000",
           b"{}"]  # fmt: skip

awkward_bytes = st.lists(
    st.one_of(st.sampled_from(AWKWARD), st.binary(max_size=6)), max_size=4
).map(b"".join)
# Big enough now and then to leave Redis's compact encodings (64-byte listpack values).
element = st.one_of(
    awkward_bytes,
    st.integers(-(2**63), 2**63 - 1).map(lambda n: str(n).encode()),
    st.binary(min_size=65, max_size=300),
)
elements = st.lists(element, min_size=1, max_size=160)
score = st.one_of(
    st.floats(allow_nan=False),
    st.sampled_from([0.0, -0.0, 1.5, 1e300, -1e-300, float("inf"), float("-inf")]),
)
field_values = st.lists(st.tuples(awkward_bytes, awkward_bytes), min_size=1, max_size=4)

values = st.one_of(
    st.tuples(st.just("string"), st.one_of(element, st.binary(min_size=2000, max_size=3000))),
    st.tuples(st.just("list"), elements),
    st.tuples(st.just("set"), st.one_of(elements, st.lists(st.integers(-999, 999), min_size=1))),
    st.tuples(st.just("zset"), st.dictionaries(element, score, min_size=1, max_size=140)),
    st.tuples(st.just("hash"), st.dictionaries(element, element, min_size=1, max_size=140)),
    st.tuples(
        st.just("stream"),
        st.fixed_dictionaries(
            {
                "entries": st.lists(field_values, max_size=12),
                "deleted": st.sets(st.integers(0, 11)),
                "groups": st.lists(st.tuples(st.integers(0, 12), st.integers(0, 5)), max_size=2),
            }
        ),
    ),
)
keyspace = st.dictionaries(
    st.tuples(st.sampled_from(DBS), awkward_bytes.filter(bool)),
    st.tuples(values, st.one_of(st.none(), st.sampled_from(EXPIRIES))),
    max_size=10,
)


@pytest.fixture(scope="module")
def rdb_target():
    server = RedisServer()
    try:
        yield server.start()
    finally:
        server.close()


def _write(server: RedisServer, data: dict) -> None:
    for (db, key), ((kind, value), expires_at) in data.items():
        client = server.client(db)
        if kind == "string":
            client.set(key, value)
        elif kind == "list":
            client.rpush(key, *value)
        elif kind == "set":
            client.sadd(key, *value)
        elif kind == "zset":
            client.zadd(key, value)
        elif kind == "hash":
            client.hset(key, mapping=value)
        else:
            _write_stream(client, key, value)
        if expires_at is not None:
            client.execute_command("PEXPIREAT", key, expires_at)


def _write_stream(client: Any, key: bytes, stream: dict) -> None:
    ids = []
    for i, pairs in enumerate(stream["entries"]):
        ids.append(client.xadd(key, dict(pairs), id=f"{i + 1}-{i % 3}"))
    if not ids:  # an empty stream: one entry added and deleted
        client.xadd(key, {b"f": b"v"}, id="7-7")
        client.xdel(key, "7-7")
    for n, (read, pending) in enumerate(stream["groups"]):
        group = f"group-{n}"
        client.xgroup_create(key, group, id="0")
        if read and ids:
            client.xreadgroup(group, "reader", {key: ">"}, count=min(read, len(ids)))
            acknowledged = ids[pending : min(read, len(ids))]
            if acknowledged:
                client.xack(key, group, *acknowledged)
    client.xdel(key, *[ids[i] for i in stream["deleted"] if i < len(ids)] or ["0-1"])


def _stream(client: Any, key: bytes, *, with_pending: bool) -> tuple:
    info = client.xinfo_stream(key)
    kept = ("name", "last-delivered-id", "entries-read")
    kept += ("pending", "consumers") if with_pending else ()
    groups = [tuple(group[name] for name in kept) for group in client.xinfo_groups(key)]
    stream = (info["last-generated-id"], info["entries-added"], info["max-deleted-entry-id"])
    return client.xrange(key), stream, groups


def _contents(server: RedisServer, *, with_pending: bool) -> dict:
    found: dict = {}
    for db in DBS:
        client = server.client(db)
        for key in client.scan_iter(count=1000):
            kind = client.type(key).decode()
            if kind == "string":
                value: Any = client.get(key)
            elif kind == "list":
                value = client.lrange(key, 0, -1)
            elif kind == "set":
                value = sorted(client.smembers(key))
            elif kind == "zset":
                value = client.zrange(key, 0, -1, withscores=True)
            elif kind == "hash":
                value = sorted(client.hgetall(key).items())
            else:
                value = _stream(client, key, with_pending=with_pending)
            found[(db, key)] = (kind, value, client.execute_command("PEXPIRETIME", key))
    return found


_runs = itertools.count()


@settings(
    max_examples=400 if LONG_RUN else 4,
    derandomize=not LONG_RUN,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large],
)  # fmt: skip
@given(data=keyspace)
def test_the_json_and_the_rdb_restore_what_the_server_held(
    tmp_path, isolated_env, redis_server, spare_redis_server, rdb_target, data
):
    redis_server.flush()
    fast_sync(redis_server)
    _write(redis_server, data)
    source, source_json = (_contents(redis_server, with_pending=p) for p in (True, False))
    assert len(source) == len(data)

    folder = tmp_path / f"run-{next(_runs)}"
    folder.mkdir()
    case = RedisCase(folder, redis_server)
    assert case.cli("backup", "redis") == ExitCode.OK
    artifacts = case.artifacts()
    assert artifacts["json"].metadata["json_source"] == "rdb"
    assert artifacts["json"].metadata["keys"] == artifacts["rdb"].metadata["keys"] == len(data)

    for target, extra in ((rdb_target, []), (spare_redis_server, ["--from-json"])):
        target.flush()
        case.point_at(target)
        assert case.cli("restore", "redis", "latest", "--flush", *extra) == ExitCode.OK
    assert _contents(rdb_target, with_pending=True) == source
    assert _contents(spare_redis_server, with_pending=False) == source_json


def test_every_json_line_is_one_record_that_gives_back_its_bytes(
    tmp_path, isolated_env, redis_server
):
    from engines.redis.json_format import decode_bytes
    from tests.test_redis_one_pass import _plain

    redis_server.flush()
    fast_sync(redis_server)
    client = redis_server.client()
    names = [b"".join(parts) for parts in itertools.product(AWKWARD[:8], AWKWARD[8:])]
    for name in names:
        client.set(name, name + b"\n\x00" + name)
    case = RedisCase(tmp_path, redis_server)
    assert case.cli("backup", "redis") == ExitCode.OK
    lines = _plain(case, "json").split(b"\n")
    assert lines[-1] == b""  # every line ends with its newline, none within a record
    records = [json.loads(line) for line in lines[1:-2]]
    assert sorted(decode_bytes(r["key"]) for r in records) == sorted(names)
    for record in records:
        key = decode_bytes(record["key"])
        assert decode_bytes(record["value"]) == key + b"\n\x00" + key
