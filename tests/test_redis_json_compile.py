"""The restore's fast compiler gives the same commands as the full parser, and leaves to
the full parser whatever it does not check itself; blocks compiled in worker processes
give the same spool as blocks compiled in order."""

import io
import json
import multiprocessing
import threading

import pytest

from engines.errors import JobCancelledError
from engines.redis import json_format, json_reader
from engines.redis.json_compile import SLOW_ERRORS, compile_document, compile_line
from engines.redis.json_format import JsonFormatError
from engines.redis.json_import import compile_export
from engines.redis.json_spool import batch_writer
from engines.redis.resp import encode_command

WHOLE_KEYS = [
    {"db": 0, "key": "s", "type": "string", "value": "Zoë \r\n $3"},
    {"db": 2, "key": "s", "type": "string", "value": "", "expires_at_ms": 1795906505445},
    {"db": 0, "key": "l", "type": "list", "value": ["a", "", "ü", "a"]},
    {"db": 0, "key": "t", "type": "set", "value": ["x", "y"], "expires_at_ms": 5},
    {"db": 0, "key": "h", "type": "hash", "value": [["f", "v"], ["g", ""]]},
    {"db": 0, "key": "z", "type": "zset", "value": [["a", "1.5"], ["b", "-inf"], ["c", "1e+20"]]},
    {"db": 1, "key": "x", "type": "stream", "value": {
        "entries": [["1-1", ["a", "b"]], ["2-0", ["c", "d", "e", "f"]]], "last_id": "5-0",
        "entries_added": 7, "max_deleted_id": "3-0", "groups": []}},
    {"db": 1, "key": "x", "type": "stream", "value": {
        "entries": [["0-1", ["a", "b"]]], "last_id": "0-0", "entries_added": 1,
        "max_deleted_id": "0-0", "groups": []}},
    {"db": 1, "key": "x", "type": "stream", "value": {  # as its entries leave it: no XSETID
        "entries": [["6-0", ["a", "b"]], ["7-1", ["c", "d"]]], "last_id": "7-1",
        "entries_added": 2, "max_deleted_id": "0-0", "groups": []}},
]  # fmt: skip

LEFT_TO_THE_PARSER = [
    {"db": 0, "key": {"base64": "/w=="}, "type": "string", "value": "x"},
    {"db": 0, "key": "h", "type": "hash", "value": [["a", {"base64": "AAA="}]]},
    {"db": 0, "key": "h", "type": "hash", "value": ["ab"]},
    {"db": 0, "key": "l", "type": "list", "value": ["a", 1]},
    {"db": 0, "key": "l", "type": "list", "value": []},
    {"db": 0, "key": "z", "type": "zset", "value": [["a", "nan"]]},
    {"db": 0, "key": "z", "type": "zset", "value": [["a", 1.5]]},
    {"db": 0, "key": "s", "type": "string", "value": "x", "expires_at_ms": None},
    {"db": 0, "key": "s", "type": "string", "value": "x", "part": 0},
    {"db": 0, "key": "s", "type": "string", "value": "x", "more": True},
    {"db": True, "key": "s", "type": "string", "value": "x"},
    {"db": 0, "key": "s", "type": "string", "value": "\ud800"},
    {"db": 0, "key": "x", "type": "stream", "value": {
        "entries": [["1-1", ["a", "b"]]], "last_id": "1-1", "entries_added": 1,
        "max_deleted_id": "0-0", "groups": [{"name": "g", "last_delivered_id": "0-0"}]}},
    {"db": 0, "key": "x", "type": "stream", "value": {
        "entries": [["1-1", ["a", "b"]]], "last_id": "1-1", "entries_added": 1,
        "max_deleted_id": "bad", "groups": []}},
    {"db": 0, "key": "m", "type": "module", "value": []},
]  # fmt: skip


def _full_parser(document, delete_first):
    db, key, kind, expires, _part, _more, commands = compile_line(document, 1)
    if kind != "string" and delete_first:
        commands.insert(0, encode_command("DEL", key))
    if expires is not None:
        commands.append(encode_command("PEXPIREAT", key, b"%d" % expires))
    return db, key, kind, expires, b"".join(commands), len(commands)


@pytest.mark.parametrize("delete_first", [True, False])
@pytest.mark.parametrize("document", WHOLE_KEYS, ids=lambda d: d["type"])
def test_fast_commands_are_the_full_parsers(document, delete_first):
    document = json.loads(json.dumps(document))
    assert compile_document(document, delete_first) == _full_parser(document, delete_first)


@pytest.mark.parametrize("document", LEFT_TO_THE_PARSER)
def test_what_the_fast_path_does_not_check_goes_to_the_full_parser(document):
    with pytest.raises(SLOW_ERRORS):
        compile_document(document, True)


def _export(now_ms: int) -> bytes:
    lines = [{"format": "jarvis-redis-json/1", "server_version": "7.0.15", "server_time_ms": 0}]
    for i in range(300):
        lines.append({"db": i % 3, "key": f"k{i}", "type": "string", "value": "v" * (i % 50)})
        if i % 7 == 0:  # a key over three lines, often across a block's end
            for part in range(3):
                piece = {"db": 1, "key": f"big{i}", "type": "list", "value": [f"x{part}"]}
                lines.append({**piece, "part": part, "more": part < 2} if part else
                             {**piece, "more": True})  # fmt: skip
        if i % 11 == 0:
            lines.append({"db": 0, "key": f"gone{i}", "type": "hash", "value": [["f", "v"]],
                          "expires_at_ms": now_ms - 1})  # fmt: skip
        if i % 13 == 0:
            lines.append({"db": 2, "key": {"base64": "/w=="}, "type": "set", "value": ["a"]})
    keys = sum(1 for line in lines[1:] if not line.get("part"))
    lines.append({"end": True, "keys": keys})
    return b"".join(json_format.dumps(line) for line in lines)


@pytest.mark.parametrize("only_db", [None, 1])
def test_blocks_compiled_in_workers_give_the_same_spool(tmp_path, monkeypatch, only_db):
    monkeypatch.setattr(json_reader, "BLOCK_BYTES", 700)  # many blocks, keys across them
    now_ms = 1_800_000_000_000
    outcomes = []
    for workers in (0, 2):
        spool = tmp_path / f"spool{workers}"
        with open(spool, "wb") as out:
            result = compile_export(io.BytesIO(_export(now_ms)), batch_writer(out),
                                    work_folder=tmp_path, now_ms=now_ms, only_db=only_db,
                                    delete_first=True, workers=workers)  # fmt: skip
        counts = result.reader.counts
        outcomes.append((spool.read_bytes(), result.expired, counts.per_db_type, counts.with_ttl))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][1] == (28 if only_db is None else 0)


def test_a_damaged_line_in_a_workers_block_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(json_reader, "BLOCK_BYTES", 700)
    lines = _export(0).splitlines(keepends=True)
    lines[150] = b'{"db": 0, "key": "x", "type": "hash", "value": "not pairs"}\n'
    damaged = pytest.raises(JsonFormatError, match="line 151: expected a list of pairs")
    with damaged, open(tmp_path / "spool", "wb") as out:
        compile_export(io.BytesIO(b"".join(lines)), batch_writer(out), work_folder=tmp_path,
                       now_ms=0, only_db=None, delete_first=False, workers=2)  # fmt: skip


@pytest.mark.parametrize("workers", [0, 2])
def test_a_cancelled_compile_stops_between_blocks_with_its_workers(tmp_path, monkeypatch, workers):
    monkeypatch.setattr(json_reader, "BLOCK_BYTES", 700)
    checks = 0

    def cancel_on_the_fifth_block() -> None:
        nonlocal checks
        checks += 1
        if checks == 5:
            raise JobCancelledError("cancelled by the operator")

    before = set(threading.enumerate())
    with pytest.raises(JobCancelledError), open(tmp_path / "spool", "wb") as out:
        compile_export(io.BytesIO(_export(0)), batch_writer(out), work_folder=tmp_path, now_ms=0,
                       only_db=None, delete_first=False, workers=workers,
                       between_blocks=cancel_on_the_fifth_block)  # fmt: skip
    assert checks == 5
    assert not multiprocessing.active_children()  # the pool's workers are gone
    assert set(threading.enumerate()) <= before
