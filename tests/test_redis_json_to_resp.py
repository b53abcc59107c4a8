"""The C compile step of a JSON restore gives exactly the commands of the Python one.

Whatever line it takes, the full parser takes too and compiles to the same bytes; a
line it does not take goes to Python. Checked on generated keys in the exporter's shape
and on those lines with a byte changed, and on whole exports compiled both ways."""

import io
import json
import random
from array import array

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engines.catalog import Catalog
from engines.jobs import JobContext
from engines.redis import json_blocks, json_format, json_reader
from engines.redis.connection import target_from_url
from engines.redis.json_compile import SLOW_ERRORS, compile_document, compile_line
from engines.redis.json_format import JsonFormatError
from engines.redis.json_import import FrameWriter, compile_export
from engines.redis.json_spool import AGGREGATE, FINAL, FIRST, Batch, batch_writer, read_batches
from engines.redis.native import json_to_resp
from engines.redis.resp import RespConnection
from engines.redis.writer import PipelinedWriter

NOW_MS = 1_800_000_000_000


def test_the_c_compiler_is_built():
    assert json_to_resp is not None, (
        "engines/redis/_json_to_resp.c was not built: install with a C compiler and the "
        "Python headers (pip install -e .), or JSON restores run at Python speed"
    )


def _line(db, key, kind, value, expires=None) -> bytes:
    """A key line as the exporter writes it (its field order)."""
    record = {"db": db, "key": key, "type": kind}
    if expires is not None:
        record["expires_at_ms"] = expires
    return json_format.dumps({**record, "value": value})


def _c_frames(line: bytes, delete_first: bool, only_db: int = -1):
    """(taken, db, [(flags, key, commands, count)], kind counts, with_ttl, past, expired)."""
    (end, lines, db, frames, _replies, commands, index, kinds, with_ttl, past,
     expired) = json_to_resp.compile_run(line, 0, NOW_MS, only_db, delete_first, 2000,
                                          1 << 20)  # fmt: skip
    assert end == (len(line) if lines else 0)
    sizes = array("I")
    sizes.frombytes(index[frames : frames * 13])
    keys, found, at, key_at = index[frames * 13 :], [], 0, 0
    for i in range(frames):
        key = keys[key_at : key_at + sizes[i]]
        found.append((index[i], key, commands[at : at + sizes[frames + i]], sizes[2 * frames + i]))
        key_at += sizes[i]
        at += sizes[frames + i]
    return bool(lines), db, found, kinds, with_ttl, past, expired


def _python(line: bytes, delete_first: bool):
    document = json.loads(line)
    try:
        return compile_document(document, delete_first)
    except SLOW_ERRORS:
        pass
    db, key, kind, expires, _part, more, commands = compile_line(document, 1)
    assert not more
    if kind != "string" and delete_first:
        commands.insert(0, b"*2\r\n$3\r\nDEL\r\n$%d\r\n%b\r\n" % (len(key), key))
    if expires is not None:
        commands.append(b"*3\r\n$9\r\nPEXPIREAT\r\n$%d\r\n%b\r\n$%d\r\n%d\r\n"
                        % (len(key), key, len(b"%d" % expires), expires))  # fmt: skip
    return db, key, kind, expires, b"".join(commands), len(commands)


def _same_as_python(line: bytes, delete_first: bool) -> bool:
    """Whether C took the line; when it did, assert Python gives the same."""
    taken, c_db, frames, kinds, with_ttl, past, expired = _c_frames(line, delete_first)
    if not taken:
        return False
    db, key, kind, expires, commands, count = _python(line, delete_first)
    assert c_db == db
    assert kinds[json_format.TYPES.index(kind)] == 1 and sum(kinds) == 1
    assert with_ttl == (expires is not None)
    assert past == (expires is not None and expires <= NOW_MS)
    if expired:
        assert frames == [] and 0 <= expires <= NOW_MS
        return True
    flags = FIRST | FINAL | (0 if kind == "string" else AGGREGATE)
    assert frames == [(flags, key, commands, count)]
    return True


texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
scores = st.one_of(
    st.floats(allow_nan=False).map(repr),
    st.sampled_from(["inf", "-inf", "+inf", "1e+20", ".5", "5.", "-0", "1_0", "nan", " 1"]),
)
stream_ids = st.one_of(
    st.tuples(st.integers(0, 10**15), st.integers(0, 99)).map(lambda t: f"{t[0]}-{t[1]}"),
    st.sampled_from(["0-0", "1", "a-1", "1-"]),
)
fields = st.lists(texts, min_size=0, max_size=6)
values = {
    "string": texts,
    "list": fields,
    "set": fields,
    "hash": st.lists(st.tuples(texts, texts).map(list), max_size=4),
    "zset": st.lists(st.tuples(texts, scores).map(list), max_size=4),
    "stream": st.builds(
        lambda entries, last, added, deleted: {
            "entries": entries, "last_id": last, "entries_added": added,
            "max_deleted_id": deleted, "groups": []},
        st.lists(st.tuples(stream_ids, fields).map(list), max_size=3),
        stream_ids, st.integers(0, 5), stream_ids,
    ),
}  # fmt: skip
key_lines = st.sampled_from(sorted(values)).flatmap(
    lambda kind: st.builds(
        _line,
        st.integers(0, 20),
        texts,
        st.just(kind),
        values[kind],
        st.one_of(st.none(), st.integers(0, 2 * NOW_MS)),
    )
)


@pytest.mark.parametrize("delete_first", [True, False])
@pytest.mark.parametrize(
    "line",
    [
        _line(0, "s", "string", "Zoë \r\n $3 \"q\" \\ \t / \x7f 𝄞"),
        _line(2, "s", "string", "", 1795906505445),
        _line(0, "l", "list", ["a", "", "ü", "a"]),
        _line(0, "t", "set", ["x", "y"], 5),
        _line(0, "h", "hash", [["f", "v"], ["g", ""]]),
        _line(0, "z", "zset", [["a", "1.5"], ["b", "-inf"], ["c", "1e+20"], ["d", "+inf"]]),
        _line(1, "x", "stream", {"entries": [["1-1", ["a", "b"]], ["2-0", ["c", "d", "e", "f"]]],
                                 "last_id": "5-0", "entries_added": 7, "max_deleted_id": "3-0",
                                 "groups": []}),
        _line(1, "x", "stream", {"entries": [["0-1", ["a", "b"]]], "last_id": "0-0",
                                 "entries_added": 1, "max_deleted_id": "0-0", "groups": []}),
        _line(1, "x", "stream", {"entries": [["6-0", ["a", "b"]], ["7-1", ["c", "d"]]],
                                 "last_id": "7-1", "entries_added": 2, "max_deleted_id": "0-0",
                                 "groups": []}),
        # more strings and entries than the C compiler first makes room for
        _line(0, "long", "list", [f"item {i}" for i in range(300)]),
        _line(1, "x", "stream", {"entries": [[f"{i}-0", ["f", str(i)]] for i in range(1, 41)],
                                 "last_id": "40-0", "entries_added": 40, "max_deleted_id": "0-0",
                                 "groups": []}),
    ],
)  # fmt: skip
def test_the_exporters_lines_are_taken_by_c(line, delete_first):
    assert _same_as_python(line, delete_first)


@settings(max_examples=400, deadline=None)
@given(key_lines, st.booleans())
def test_generated_keys_compile_to_the_same_commands(line, delete_first):
    _same_as_python(line, delete_first)


@settings(max_examples=400, deadline=None)
@given(key_lines, st.integers(0, 10**6), st.integers(0, 255), st.booleans())
def test_a_changed_byte_is_taken_only_when_python_agrees(line, where, byte, delete_first):
    where %= len(line) - 1  # keep the newline: lines come whole
    changed = line[:where] + bytes([byte]) + line[where + 1 :]
    taken, *_ = _c_frames(changed, delete_first)
    if not taken:
        return
    try:
        json.loads(changed)
    except (ValueError, UnicodeDecodeError):
        pytest.fail(f"C took a line that is not JSON: {changed!r}")
    try:
        _same_as_python(changed, delete_first)
    except JsonFormatError:
        pytest.fail(f"C took a line the parser refuses: {changed!r}")


@pytest.mark.parametrize(
    "line",
    [
        b'{"db":0,"key":"a","type":"string","value":"\\u00e9"}\n',  # \u: Python's rules
        b'{"db":0,"key":"a","type":"string","value":"x","value":"y"}\n',
        b'{"db":0,"key":"a","type":"string","value":"\x01"}\n',  # raw control character
        b'{"db":0,"key":"a","type":"string","value":"\xed\xa0\x80"}\n',  # a surrogate
        b'{"db":0,"key":"a","type":"string","value":"\xc0\xaf"}\n',  # overlong
        b'{"db":01,"key":"a","type":"string","value":"x"}\n',
        b'{"db":0,"key":"a","type":"string","expires_at_ms":-5,"value":"x"}\n',
        b'{"db":0,"key":"a","type":"string","expires_at_ms":1.0,"value":"x"}\n',
        b'{"db": 0,"key":"a","type":"string","value":"x"}\n',
        b'{"db":0,"key":"a","type":"list","value":[]}\n',
        b'{"db":0,"key":"a","type":"zset","value":[["m","nan"]]}\n',
        b'{"db":0,"key":"a","type":"zset","value":[["m",1]]}\n',
        b'{"db":0,"key":"a","type":"string","value":"x","more":true}\n',
        b'{"db":0,"key":{"base64":"/w=="},"type":"string","value":"x"}\n',
        b'{"end":true,"keys":0}\n',
    ],
)
def test_lines_left_to_python(line):
    taken, *_ = _c_frames(line, True)
    assert not taken


def _export(now_ms: int) -> bytes:
    rnd = random.Random(3)
    lines = [json_format.dumps(json_format.header("7.0.15", 0, "now"))]
    keys = 0
    for i in range(600):
        db = i // 200
        kind = rnd.choice(sorted(values))
        value = {
            "string": f"v{i}\n\"ü\"", "list": ["a", "b"], "set": ["x"], "hash": [["f", "v"]],
            "zset": [["m", "1.5"]],
            "stream": {"entries": [[f"{i}-1", ["a", "b"]]], "last_id": f"{i}-1",
                       "entries_added": 1, "max_deleted_id": "0-0", "groups": []},
        }[kind]  # fmt: skip
        expires = rnd.choice([None, None, now_ms - 1, now_ms + 10])
        lines.append(_line(db, f"k{i}", kind, value, expires))
        keys += 1
        if i % 37 == 0:  # a key over two lines, then one the C compiler leaves alone
            piece = {"db": db, "key": f"big{i}", "type": "list"}
            lines.append(json_format.dumps({**piece, "value": ["p0"], "more": True}))
            lines.append(json_format.dumps({**piece, "value": ["p1"], "part": 1}))
            lines.append(_line(db, {"base64": "/w=="}, "set", ["a"]))
            keys += 2
    lines.append(json_format.dumps({"end": True, "keys": keys}))
    return b"".join(lines)


def _compiled(export: bytes, tmp_path, only_db, workers):
    spool = tmp_path / "spool"
    with open(spool, "wb") as out:
        result = compile_export(io.BytesIO(export), batch_writer(out), work_folder=tmp_path,
                                now_ms=NOW_MS, only_db=only_db, delete_first=True,
                                workers=workers)  # fmt: skip
    frames = [(f.db, f.flags, f.key, f.commands, f.count)
              for batch in read_batches(spool) for f in batch.each_frame()]  # fmt: skip
    spool.unlink()
    counts = result.reader.counts
    return frames, result.expired, counts.per_db_type, counts.with_ttl, counts.expired


@pytest.mark.parametrize("only_db", [None, 1])
def test_whole_exports_compile_the_same_with_and_without_c(tmp_path, monkeypatch, only_db):
    monkeypatch.setattr(json_reader, "BLOCK_BYTES", 900)
    export = _export(NOW_MS)
    with_c = _compiled(export, tmp_path, only_db, workers=0)
    in_workers = _compiled(export, tmp_path, only_db, workers=2)
    monkeypatch.setattr(json_blocks, "json_to_resp", None)
    python_only = _compiled(export, tmp_path, only_db, workers=0)
    assert with_c == python_only == in_workers
    assert with_c[1] > 0 and len(with_c[0]) > 100


def test_a_damaged_line_after_c_runs_is_named(tmp_path):
    lines = _export(NOW_MS).splitlines(keepends=True)
    lines[300] = b'{"db":0,"key":"x","type":"hash","value":"not pairs"}\n'
    damaged = pytest.raises(JsonFormatError, match="line 301: expected a list of pairs")
    with damaged, open(tmp_path / "spool", "wb") as out:
        compile_export(io.BytesIO(b"".join(lines)), batch_writer(out), work_folder=tmp_path,
                       now_ms=NOW_MS, only_db=None, delete_first=False)  # fmt: skip


def _restore_with_flush_semantics(export: bytes, tmp_path, server) -> list[Batch]:
    """Compiled without DELs, written finding repeated keys, into `server` (empty); the
    batches that were written."""
    catalog = Catalog.open(tmp_path / "catalog.sqlite3")
    job = catalog.create_job("restore", "repeats")
    context = JobContext(catalog, job.id)
    batches: list[Batch] = []
    with RespConnection.open(target_from_url(server.url()), 10) as connection:
        writer = PipelinedWriter(connection, context, None)
        frames = FrameWriter(writer, check_conflicts=False, dry_run=False, find_repeats=True)

        def write(batch: Batch) -> None:
            batches.append(batch)
            frames.write(batch)

        compile_export(io.BytesIO(export), write, work_folder=tmp_path, now_ms=NOW_MS,
                       only_db=None, delete_first=False)  # fmt: skip
        frames.finish()
    catalog.close()
    assert writer.tally.total_written == 12  # every line, repeats included
    return batches


def test_a_key_the_export_holds_twice_is_written_once(tmp_path, monkeypatch, redis_server):
    """SCAN can list a key twice; the later copy wins, even across batches."""
    monkeypatch.setattr(json_blocks, "BATCH_KEYS", 3)  # the repeats are batches apart
    header = json_format.dumps(json_format.header("7.0.15", 0, "now"))
    lines = [
        _line(0, "queue", "list", ["a", "b"]),
        _line(0, "tags", "set", ["x"]),
        _line(0, "s", "string", "first"),
        _line(0, "retyped", "string", "a string first"),
        *[_line(0, f"other{i}", "hash", [["f", "v"]]) for i in range(4)],
        _line(0, "queue", "list", ["a", "b", "c"]),  # listed again, changed meanwhile
        _line(0, "tags", "set", ["y"]),
        _line(0, "s", "string", "second"),
        _line(0, "retyped", "list", ["then a list"]),
    ]
    keys = len(lines)
    export = header + b"".join(lines) + json_format.dumps({"end": True, "keys": keys})
    redis_server.flush()
    client = redis_server.client()
    client.config_resetstat()  # the server is shared: count only this restore's DELs
    assert len(_restore_with_flush_semantics(export, tmp_path, redis_server)) == 4
    assert client.lrange("queue", 0, -1) == [b"a", b"b", b"c"]
    assert client.smembers("tags") == {b"y"}
    assert client.get("s") == b"second"
    assert client.lrange("retyped", 0, -1) == [b"then a list"]
    assert client.dbsize() == 8
    assert client.info("commandstats")["cmdstat_del"]["calls"] == 3  # only the repeats


def test_the_repeat_filter_finds_every_repeat_and_few_false_alarms():
    seen = bytearray(1 << 16)  # 2**19 bits, small on purpose: about 36 false alarms expected
    first = [f"key{i}".encode() for i in range(20_000)]
    index = _index(first)
    assert len(json_to_resp.seen_before(seen, 0, index, len(first))) < 80
    again = first[::7]
    assert json_to_resp.seen_before(seen, 0, _index(again), len(again)) == list(range(len(again)))
    # the same keys in another database: new keys, false alarms about 0.5% of the time
    assert len(json_to_resp.seen_before(seen, 1, _index(again), len(again))) < 40
    with pytest.raises(ValueError, match="filter"):
        json_to_resp.seen_before(bytearray(3), 0, index, len(first))
    with pytest.raises(ValueError, match="cut short"):
        json_to_resp.seen_before(seen, 0, index[:-1], len(first))


def _index(keys: list[bytes]) -> bytes:
    """A spool index of aggregate keys that each start in the batch."""
    sizes = array("I", map(len, keys))
    sizes.extend([0] * (2 * len(keys)))
    return bytes([FIRST | FINAL | AGGREGATE]) * len(keys) + sizes.tobytes() + b"".join(keys)
