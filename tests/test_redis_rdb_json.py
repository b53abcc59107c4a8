"""The JSON export written from the RDB (the Python walk, the oracle of the C walk): key by
key the same data as the SCAN export of the same server at the same moment, in Redis's
compact and big encodings, with keys big enough to be split; the exact bytes of chosen
lines (escapes, base64, splitting); restored into an empty server, the RDB's data; and a
big LZF string written in pieces, its damage named where the compressed bytes end."""

import io
import json
import math
from pathlib import Path
from typing import Any

import pytest

from engines.catalog import Catalog
from engines.jobs import JobContext
from engines.redis import json_format
from engines.redis.connection import target_from_url
from engines.redis.json_import import FrameWriter, compile_export
from engines.redis.json_reader import JsonExportReader, KeyRecord
from engines.redis.rdb_format import RdbFormatError, RdbSummary, walk_in_python
from engines.redis.rdb_json import BLOCK_BYTES, score_text
from engines.redis.resp import RespConnection
from engines.redis.writer import PipelinedWriter
from tests.support.rdb_build import length
from tests.support.redis import RedisServer
from tests.support.redis_seed import (
    BIG_ENCODINGS,
    expiries,
    fingerprint,
    rdb_snapshot,
    scan_export,
    seed,
)

NOW_MS = 1_700_000_000_000  # before every expiry the data sets
DBS = (0, 3, 5)
MANY = 2_500
HUGE_STRING = ("€" * 900_000).encode()  # 2.5 MiB of 3-byte characters: pieces cut them
HEAVY_ITEM = 100_000  # bytes; 11 of them fill a line
ESCAPES = 'quote" backslash\\ nl\n cr\r tab\t bs\b ff\f c01\x01 c1f\x1f del\x7f emoji😀 é'
ESCAPES_JSON = (
    b'"quote\\" backslash\\\\ nl\\n cr\\r tab\\t bs\\b ff\\f c01\\u0001 c1f\\u001f del\x7f '
    b'emoji\xf0\x9f\x98\x80 \xc3\xa9"'
)
NOT_UTF8 = {  # value -> its base64
    b"bad:lone": (b"\xc3\x28", "wyg="),
    b"bad:surrogate": (b"\xed\xa0\x80", "7aCA"),
    b"bad:beyond": (b"\xf4\x90\x80\x80", "9JCAgA=="),
    b"bad:cut": (b"\xe2\x82", "4oI="),
    b"bad:overlong": (b"\xc0\xaf", "wK8="),
}
# Integers at the edges of the listpack's integer encodings (7, 13, 16, 24, 32, 64 bits).
EDGE_INTEGERS = [0, 127, 128, -1, 4095, -4096, 4096, -4097, 32767, -32768, 32768, 8388607,
                 -8388608, 8388608, 2**31 - 1, -(2**31), 2**31, 2**63 - 1, -(2**63)]  # fmt: skip
# String lengths at the edges of its length encodings and backlen sizes.
EDGE_LENGTHS = (0, 63, 64, 127, 128, 4095, 4096, 16378, 16383)
SCORES = {"big": 1e300, "minus-inf": float("-inf"), "tenth": 0.1, "minus-zero": -0.0, "three": 3}


def _more_data(server: RedisServer) -> None:
    """Beyond the seed: keys to split, integers, escapes, invalid UTF-8, odd scores, a
    stream with pending entries and consumers."""
    client = server.client()
    client.set("huge:string", HUGE_STRING)
    client.rpush("many:list", *range(MANY))
    client.sadd("many:set", *[f"member-{i}" for i in range(MANY)])
    client.hset("many:hash", mapping={f"f{i}": i for i in range(MANY)})
    client.zadd("many:zset", {f"z{i}": i / 7 for i in range(MANY)})
    pipe = client.pipeline(transaction=False)
    for i in range(MANY):
        pipe.xadd("many:stream", {"n": i, "text": "Träumerei"}, id=f"{i + 1}-{i % 3}")
    pipe.execute()
    client.rpush("heavy:list", *[bytes([65 + i]) * HEAVY_ITEM for i in range(20)])
    client.set("int:negative", -7)
    client.rpush("ints:list", *EDGE_INTEGERS, "text")
    client.sadd("ints:set", *EDGE_INTEGERS)  # an intset of 64-bit integers while compact
    client.config_set("hash-max-listpack-value", 20_000)  # a listpack while compact
    client.hset("lengths:hash", mapping={f"len{n}": "é" * (n // 2) + "x" * (n % 2) for n in
                                         EDGE_LENGTHS})  # fmt: skip
    client.config_set("hash-max-listpack-value", 64)
    client.hset("ints:hash", mapping={"a": 1, "b": -100_000, "c": "x"})
    client.set(ESCAPES, ESCAPES)
    for key, (value, _) in NOT_UTF8.items():
        client.set(key, value)
    client.zadd("scores", SCORES)
    client.xadd("queue", {"job": "1"}, id="1-0")
    client.xadd("queue", {"job": "2"}, id="2-0")
    client.xgroup_create("queue", "workers", id="0")
    client.xreadgroup("workers", "alice", {"queue": ">"}, count=1)
    client.xgroup_create("queue", "idle", id="$")


@pytest.fixture(scope="module")
def taken(tmp_path_factory) -> dict[str, dict[str, Any]]:
    """Per encoding: the RDB, the SCAN export, the data and expiries, all of one moment."""
    folder = tmp_path_factory.mktemp("rdbs")
    found = {}
    with RedisServer() as server:
        for encoding in ("compact", "big"):
            if encoding == "big":
                for name, value in BIG_ENCODINGS.items():
                    server.client().config_set(name, value)
            seed(server)
            _more_data(server)
            found[encoding] = {
                "rdb": rdb_snapshot(server, folder / f"{encoding}.rdb"),
                "scan": b"".join(scan_export(server)),
                "data": fingerprint(server, DBS),
                "expiries": expiries(server, DBS),
            }
    return found


def _walked(rdb: bytes) -> tuple[RdbSummary, bytes]:
    """The summary and the whole export: header, the walk's key lines, trailer."""
    blocks: list[bytes] = []
    summary = walk_in_python(io.BytesIO(rdb), now_ms=NOW_MS, emit=blocks.append)
    assert summary.json_counts is not None
    assert all(block.endswith(b"\n") for block in blocks)  # whole lines, about 1 MiB each
    assert all(len(block) >= BLOCK_BYTES for block in blocks[:-1])
    header = json_format.dumps(json_format.header("7.0.15", NOW_MS, "2023-11-14T22:13:20+00:00"))
    trailer = json_format.dumps(json_format.trailer(summary.json_counts.to_metadata()))
    return summary, header + b"".join(blocks) + trailer


def _normalised(record: KeyRecord, value: Any) -> Any:
    if record.type in ("set", "hash"):
        return sorted(value)
    if record.type == "zset":  # the RDB keeps %.17g text or a double, ZSCAN Redis's text
        return sorted((member, float(score).hex()) for member, score in value)
    return value


def _keys(export: bytes) -> tuple[dict[tuple[int, bytes], Any], JsonExportReader]:
    """(db, key) -> (type, expiry, whole value) of every key of an export, its lines joined."""
    reader = JsonExportReader(io.BytesIO(export))
    keys: dict[tuple[int, bytes], Any] = {}
    pieces: dict[tuple[int, bytes], list[KeyRecord]] = {}
    for record in reader:
        pieces.setdefault((record.db, record.key), []).append(record)
    for name, records in pieces.items():
        first, last = records[0], records[-1]
        assert [r.part for r in records] == list(range(len(records)))
        assert not last.more and all(r.more for r in records[:-1])
        assert {(r.type, r.expires_at_ms) for r in records} == {(first.type, first.expires_at_ms)}
        if first.type == "string":
            value: Any = b"".join(r.value for r in records)
        elif first.type == "stream":
            tail = last.value
            groups = [(g.name, g.last_delivered_id, g.entries_read) for g in tail.groups]
            entries = [entry for r in records for entry in r.value.entries]
            value = (entries, tail.last_id, tail.entries_added, tail.max_deleted_id, groups)
        else:
            value = [item for r in records for item in r.value]
        keys[name] = (first.type, first.expires_at_ms, _normalised(first, value))
    return keys, reader


@pytest.mark.parametrize("encoding", ["compact", "big"])
def test_the_rdb_export_holds_what_the_scan_export_holds(taken, encoding):
    summary, export = _walked(taken[encoding]["rdb"])
    ours, reader = _keys(export)
    theirs, scan_reader = _keys(taken[encoding]["scan"])
    assert ours.keys() == theirs.keys()
    for name, found in ours.items():
        assert found == theirs[name], name
    assert len(ours) == 18 + 15 + len(NOT_UTF8)
    metadata = summary.json_counts.to_metadata()
    assert {k: scan_reader.trailer[k] for k in metadata} == metadata
    assert reader.counts.total == metadata["keys"] == summary.total_keys
    assert summary.modules == {} and summary.hash_field_ttls_dropped == 0


@pytest.mark.parametrize("encoding", ["compact", "big"])
def test_emitting_counts_what_counting_counts(taken, encoding):
    rdb = taken[encoding]["rdb"]
    summary, _ = _walked(rdb)
    counted = walk_in_python(io.BytesIO(rdb), now_ms=NOW_MS)
    assert counted.json_counts is None
    summary.json_counts = None
    assert summary == counted


def _lines_of(export: bytes, key: bytes) -> list[bytes]:
    start = b'{"db":0,"key":' + key + b","
    return [line + b"\n" for line in export.split(b"\n") if line.startswith(start)]


def _items(values: list[bytes]) -> bytes:
    return b"[" + b",".join(values) + b"]"


@pytest.mark.parametrize("encoding", ["compact", "big"])
def test_chosen_lines_byte_for_byte(taken, encoding):
    _, export = _walked(taken[encoding]["rdb"])
    assert _lines_of(export, ESCAPES_JSON) == [
        b'{"db":0,"key":' + ESCAPES_JSON + b',"type":"string","value":' + ESCAPES_JSON + b"}\n"
    ]
    for key, (_, encoded) in NOT_UTF8.items():
        assert _lines_of(export, b'"' + key + b'"') == [
            b'{"db":0,"key":"%s","type":"string","value":{"base64":"%s"}}\n'
            % (key, encoded.encode())
        ]
    integers = [b'"%d"' % i for i in EDGE_INTEGERS]
    assert _lines_of(export, b'"ints:list"') == [
        b'{"db":0,"key":"ints:list","type":"list","value":'
        + _items([*integers, b'"text"'])
        + b"}\n"
    ]
    assert _lines_of(export, b'"int:negative"') == [
        b'{"db":0,"key":"int:negative","type":"string","value":"-7"}\n'
    ]
    numbers = [b'"%d"' % i for i in range(MANY)]
    assert _lines_of(export, b'"many:list"') == [
        b'{"db":0,"key":"many:list","type":"list","value":'
        + _items(numbers[:1000])
        + b',"more":true}\n',
        b'{"db":0,"key":"many:list","type":"list","value":'
        + _items(numbers[1000:2000])
        + b',"part":1,"more":true}\n',
        b'{"db":0,"key":"many:list","type":"list","value":'
        + _items(numbers[2000:])
        + b',"part":2}\n',
    ]


def test_scores_in_the_big_encoding_are_the_shortest_text(taken):
    _, export = _walked(taken["big"]["rdb"])
    (line,) = _lines_of(export, b'"scores"')
    pairs = dict(json.loads(line)["value"])
    assert pairs == {"big": "1e+300", "minus-inf": "-inf", "tenth": "0.1", "minus-zero": "-0",
                     "three": "3"}  # fmt: skip
    assert [score_text(x) for x in (1 / 3, 5e-324, 2.5, -1.25, 1e16, 123456789.0)] == [
        "0.3333333333333333", "5e-324", "2.5", "-1.25", "1e+16", "123456789"
    ]  # fmt: skip
    assert score_text(math.nan) == "nan" and score_text(-math.nan) == "nan"


@pytest.mark.parametrize("encoding", ["compact", "big"])
def test_big_keys_are_split_where_the_spec_says(taken, encoding):
    _, export = _walked(taken[encoding]["rdb"])
    pieces = [json.loads(line) for line in _lines_of(export, b'"huge:string"')]
    assert [(p.get("part"), p.get("more")) for p in pieces] == [(None, True), (1, True), (2, None)]
    assert all(isinstance(p["value"], dict) for p in pieces[:2])  # a character cut at 1 MiB
    joined = b"".join(json_format.decode_bytes(p["value"]) for p in pieces)
    assert joined == HUGE_STRING and len(json_format.decode_bytes(pieces[0]["value"])) == 1 << 20
    heavy = [json.loads(line)["value"] for line in _lines_of(export, b'"heavy:list"')]
    assert [len(value) for value in heavy] == [11, 9]
    for key, kind in ((b"many:set", "set"), (b"many:hash", "hash"), (b"many:zset", "zset")):
        lines = [json.loads(line) for line in _lines_of(export, b'"' + key + b'"')]
        assert [len(line["value"]) for line in lines] == [1000, 1000, 500], key
        assert {line["type"] for line in lines} == {kind}
    stream = [json.loads(line)["value"] for line in _lines_of(export, b'"many:stream"')]
    assert [len(value["entries"]) for value in stream] == [1000, 1000, 500]
    assert [sorted(value) for value in stream[:2]] == [["entries"], ["entries"]]
    assert list(stream[2]) == ["entries", "last_id", "entries_added", "max_deleted_id", "groups"]
    assert stream[0]["entries"][1] == ["2-1", ["n", "1", "text", "Träumerei"]]
    (queue,) = [json.loads(line)["value"] for line in _lines_of(export, b'"queue"')]
    assert queue["groups"] == [  # in name order, as Redis keeps them; pending ones left out
        {"name": "idle", "last_delivered_id": "2-0", "entries_read": None},
        {"name": "workers", "last_delivered_id": "1-0", "entries_read": 1},
    ]


def _restored(export: bytes, tmp_path: Path, target: RedisServer) -> int:
    catalog = Catalog.open(tmp_path / "catalog.sqlite3")
    try:
        context = JobContext(catalog, catalog.create_job("restore", "rdb json").id)
        with RespConnection.open(target_from_url(target.url()), 10) as connection:
            writer = PipelinedWriter(connection, context, None)
            frames = FrameWriter(writer, check_conflicts=False, dry_run=False)
            compile_export(io.BytesIO(export), frames.write, work_folder=tmp_path,
                           now_ms=NOW_MS, only_db=None, delete_first=False)  # fmt: skip
            frames.finish()
        return writer.tally.total_written
    finally:
        catalog.close()


@pytest.mark.parametrize("encoding", ["compact", "big"])
def test_the_export_restores_the_rdbs_data(taken, encoding, tmp_path, spare_redis_server):
    summary, export = _walked(taken[encoding]["rdb"])
    spare_redis_server.flush()
    assert _restored(export, tmp_path, spare_redis_server) == summary.total_keys
    assert fingerprint(spare_redis_server, DBS) == taken[encoding]["data"]
    assert expiries(spare_redis_server, DBS) == taken[encoding]["expiries"]


def _lzf_of_a(size: int) -> bytes:
    """LZF for b"a" * size (size - 1 a multiple of 264): one literal, then 264-byte copies."""
    return b"\x00a" + bytes([0xE0, 255, 0]) * ((size - 1) // 264)


def test_a_big_lzf_string_is_written_in_pieces_and_damage_found_late_is_named():
    size = 1 + 264 * 10_000  # 2.5 MiB
    compressed = _lzf_of_a(size)
    before = b"REDIS0010\x00\x01k\xc3" + length(len(compressed))
    blocks: list[bytes] = []
    rdb = before + length(size) + compressed + b"\xff" + bytes(8)
    walk_in_python(io.BytesIO(rdb), emit=blocks.append)
    pieces = [json.loads(line) for line in b"".join(blocks).splitlines()]
    assert [len(p["value"]) for p in pieces] == [1 << 20, 1 << 20, size - (2 << 20)]
    assert [(p.get("part"), p.get("more")) for p in pieces] == [(None, True), (1, True), (2, None)]
    short = before + length(size - 1) + compressed + b"\xff" + bytes(8)
    at = len(short) - 9  # just after the compressed bytes
    with pytest.raises(
        RdbFormatError, match=f"^damaged LZF data in the value of a key at byte {at}$"
    ):
        walk_in_python(io.BytesIO(short), emit=blocks.append)
