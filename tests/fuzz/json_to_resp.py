"""_json_to_resp.c against the Python compiler.

compile_run: every line C takes, json.loads reads and engines/redis/json_compile
compiles to the same commands (the fast path, or the full parser's); a run of lines
gives what its lines give one at a time under the run's rules (one database, the key
and byte limits, expired and other-database keys dropped); a start outside the block is
a ValueError. seen_before: exactly a Python model of its Bloom filter, errors included.
The lines come from the project's encoder (json_format.dumps) in the exporter's shape,
from a real export, and from both with damage.
"""

import json
import random
from array import array
from collections import Counter
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from engines.redis import json_format
from engines.redis.json_compile import SLOW_ERRORS, compile_document, compile_line
from engines.redis.json_format import JsonFormatError
from engines.redis.json_spool import AGGREGATE, FINAL, FIRST
from engines.redis.native import json_to_resp
from tests.fuzz.buffers import exact_buffer
from tests.fuzz.mutate import damage

MODULE = "engines.redis._json_to_resp"
NOW_MS = 1_800_000_000_000
BIG = 1 << 62
stats: Counter = Counter()  # what the cases reached, for the run's summary
INT64 = (-(1 << 63), (1 << 63) - 1)
TOKENS = [
    b'"', b"\\", b"\\u00e9", b"\\ud800", b"\\n", b"]", b"[", b",", b"}\n", b"{", b":",
    b"9" * 19, b"9" * 18, b"0", b"-1", b"1.5", b"1e5", b"\xc3", b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80", b"\xc0\xaf", b"\x00", b"\x7f", b"\n", b'"0-0"',
    b'"inf"', b'"nan"', b'"1-"', b"[]",
    b'"groups":[]}', b'"type":"stream"', b'"type":"zset"', b',"expires_at_ms":0',
]  # fmt: skip


def load_corpus(folder: Path) -> list[bytes]:
    lines = []
    for path in sorted((folder / "json").glob("*.jsonl")):
        lines += path.read_bytes().splitlines(keepends=True)
    return lines


# --- cases ----------------------------------------------------------------------------
# Hypothesis draws few values per case (under ASan its own work dominates): which lines of
# a pool, what damage, which options. The pool holds lines of the real export and lines
# the project's encoder writes for random records, built once per run from a seed.

INTEGERS = [0, 1, 2, 3, 15, 16, NOW_MS, NOW_MS + 1, 2 * NOW_MS, -1, 10**18 - 1, 10**18,
            10**19 - 1, 2**31 - 1, 2**31, 2**63 - 1, 2**63, 10**25, 1.5, 0.0]  # fmt: skip
SCORES = ["1.5", "-1.25", "1e+300", "inf", "-inf", "+inf", "1e999", ".5", "5.", "-0", "1_0",
          "nan", " 1", "e5", "0x10", "١"]  # fmt: skip
STREAM_IDS = ["0-0", "1-1", "5-0", "99999999999999999999-1", "1", "a-1", "1-", "-1", "١-١"]


def _text(rnd: random.Random) -> str:
    alphabet = 'az09 "\\/\u00e9\u20ac\U0001d11e'
    if rnd.randrange(15) == 0:  # what json.dumps escapes, or \u-escapes C leaves to Python
        alphabet += "\b\f\n\r\t\x00\x1f\x7f\ufeff"
    return "".join(rnd.choice(alphabet) for _ in range(rnd.randrange(6)))


def _member(rnd: random.Random) -> Any:
    if rnd.randrange(20) == 0:
        return json_format.encode_bytes(rnd.randbytes(rnd.randrange(4)))
    return _text(rnd)


def _members(rnd: random.Random, pairs: bool = False, scores: bool = False) -> list:
    items = []
    for _ in range(rnd.choice([0, 1, 1, 2, 3, 70])):
        if not pairs:
            items.append(_member(rnd))
        else:
            items.append([_member(rnd), rnd.choice(SCORES) if scores else _member(rnd)])
    return items


def _stream(rnd: random.Random) -> dict:
    entries = [[rnd.choice(STREAM_IDS), [_text(rnd) for _ in range(rnd.choice([0, 2, 2, 3, 4]))]]
               for _ in range(rnd.choice([0, 1, 1, 2, 20]))]  # fmt: skip
    groups = (
        []
        if rnd.randrange(4)
        else [{"name": _text(rnd), "last_delivered_id": rnd.choice(STREAM_IDS), "entries_read": 1}]
    )
    return {"entries": entries, "last_id": rnd.choice(STREAM_IDS),
            "entries_added": rnd.choice([len(entries), *INTEGERS]),
            "max_deleted_id": rnd.choice(STREAM_IDS), "groups": groups}  # fmt: skip


def _value(rnd: random.Random, kind: str) -> Any:
    if kind in ("list", "set"):
        return _members(rnd)
    if kind in ("hash", "zset"):
        return _members(rnd, pairs=True, scores=kind == "zset")
    if kind == "stream":
        return _stream(rnd)
    return _member(rnd)


def record(rnd: random.Random) -> bytes:
    """A key line in the exporter's field order, now and then with a value of another
    type, or a field it writes only for big keys, or one it never writes."""
    kind = rnd.choice([*json_format.TYPES * 4, "none"])
    db = rnd.choice([0, 0, 1, 2, rnd.choice(INTEGERS)])
    line: dict[str, Any] = {"db": db, "key": _member(rnd), "type": kind}
    if rnd.randrange(3) == 0:
        line["expires_at_ms"] = rnd.choice([NOW_MS - 1, NOW_MS, NOW_MS + 1, *INTEGERS])
    line["value"] = _value(rnd, kind if rnd.randrange(20) else rnd.choice(json_format.TYPES))
    extra = rnd.choice([None] * 27 + ["more", "part", "other"])
    if extra is not None:
        line[extra] = True if extra == "more" else rnd.randrange(3)
    return json_format.dumps(line)


def pool(corpus: list[bytes], seed: int, size: int = 400) -> list[bytes]:
    rnd = random.Random(seed)
    return corpus + [record(rnd) for _ in range(size)]


@st.composite
def runs(draw, lines: list[bytes], fast: list[bytes]) -> dict:
    """A block of lines: half the time undamaged lines the Python fast path takes (runs
    that C should take whole), else any lines, a third of them damaged."""
    clean = draw(st.booleans()) and fast
    source = fast if clean else lines
    chosen = []
    for _ in range(draw(st.integers(1, 6))):
        line = source[draw(st.integers(0, len(source) - 1))]
        if not clean and draw(st.integers(0, 2)) == 0:
            seed = draw(st.integers(0, 1 << 32))
            line = damage(line, seed, TOKENS, lines[seed % len(lines)])
        chosen.append(line)
    block = b"".join(chosen)
    boundaries = [0, len(block)] + [i + 1 for i, b in enumerate(block) if b == ord("\n")]
    start = draw(st.one_of(st.sampled_from(boundaries), st.integers(-3, len(block) + 3),
                           st.sampled_from(INT64)))  # fmt: skip
    return {
        "call": "compile_run",
        "block": block,
        "start": start,
        "now_ms": draw(st.sampled_from([NOW_MS, NOW_MS, 0, -1, *INT64])),
        "only_db": draw(st.sampled_from([-1, -1, 0, 1, 2, -5, *INT64])),
        "delete_first": draw(st.booleans()),
        "max_keys": draw(st.sampled_from([BIG, BIG, 0, 1, 2, 3, -1])),
        "max_bytes": draw(st.sampled_from([BIG, BIG, 0, 1, 40, 200, -1])),
    }


@st.composite
def filters(draw) -> dict:
    rnd = random.Random(draw(st.integers(0, 1 << 32)))
    size = draw(st.sampled_from([1 << n for n in range(13)] + [0, 3, 5, 24]))
    keys = [rnd.randbytes(rnd.randrange(6)) for _ in range(draw(st.integers(0, 12)))]
    keys += draw(st.sampled_from([[], keys[:2]]))  # the same keys again
    flags = bytes(rnd.randrange(8) for _ in keys)
    sizes = array("I", [len(key) for key in keys] + [0] * (2 * len(keys))).tobytes()
    index = flags + sizes + b"".join(keys)
    if draw(st.integers(0, 3)) == 0:
        index = damage(index, rnd.randrange(1 << 32), [b"\xff\xff\xff\xff", b"\x00\x00\x00\x80"])
    frames = len(keys)
    if draw(st.integers(0, 3)) == 0:
        frames = draw(st.sampled_from([-1, 0, frames + 1, frames + 2, (1 << 63) // 13 + 1,
                                       1 << 62, (1 << 63) - 1, -(1 << 63)]))  # fmt: skip
    seen = bytes(size) if draw(st.booleans()) else rnd.randbytes(size)
    return {"call": "seen_before", "seen": seen, "db": draw(st.sampled_from([0, 1, -1, *INT64])),
            "index": index, "frames": frames}  # fmt: skip


def _fast_path_takes(line: bytes) -> bool:
    try:
        compile_document(json.loads(line), False)
    except (*SLOW_ERRORS, ValueError):
        return False
    return True


def cases(corpus: list[bytes], seed: int) -> st.SearchStrategy:
    lines = pool(corpus, seed)
    fast = [line for line in lines if _fast_path_takes(line)]
    return st.one_of(runs(lines, fast), runs(lines, fast), filters())


# --- the oracle -----------------------------------------------------------------------


def check(case: dict) -> None:
    if case["call"] == "seen_before":
        _check_filter(case)
    else:
        _check_run(case)


def _options(case: dict) -> tuple:
    return case["now_ms"], case["only_db"], case["delete_first"]


def _compile_run(block: bytes, start: int, case: dict, max_keys: int, max_bytes: int):
    with exact_buffer(block) as view:
        try:
            return json_to_resp.compile_run(view, start, *_options(case), max_keys, max_bytes)
        except ValueError as error:
            return ValueError(str(error))


def _check_run(case: dict) -> None:
    block, start = case["block"], case["start"]
    got = _compile_run(block, start, case, case["max_keys"], case["max_bytes"])
    if not 0 <= start <= len(block):
        assert isinstance(got, ValueError) and "outside the block" in str(got), got
        return
    assert not isinstance(got, ValueError), got
    assert _tuple(got) == _tuple(_run_of_single_lines(block, start, case))
    pieces = block[start:].split(b"\n")
    for piece in pieces[1:-1]:  # each line, also those after where the run stopped
        _single_line(piece + b"\n", case)


def _tuple(result) -> tuple:
    """A result with its index as columns, so that a difference reads."""
    end, lines, db, frames, replies, commands, index, kinds, with_ttl, past, expired = result
    return end, lines, db, frames, replies, commands, _columns(index, frames), kinds, \
        with_ttl, past, expired  # fmt: skip


def _columns(index: bytes, frames: int) -> tuple:
    numbers = array("I")
    numbers.frombytes(index[frames : frames * 13])
    return (index[:frames], numbers[:frames].tolist(), numbers[frames : 2 * frames].tolist(),
            numbers[2 * frames :].tolist(), index[frames * 13 :])  # fmt: skip


def _run_of_single_lines(block: bytes, start: int, case: dict) -> tuple:
    """What compile_run must return: its lines compiled one at a time (each checked against
    Python), put together as the run's rules say."""
    at, lines, run_db, frames, replies = start, 0, -1, 0, 0
    commands, flags, key_sizes, command_sizes, counts, keys = (bytearray() for _ in range(6))
    kinds, with_ttl, past, expired = [0] * 6, 0, 0, 0
    while at < len(block) and frames < case["max_keys"] and len(commands) < case["max_bytes"]:
        newline = block.find(b"\n", at)
        line = block[at : len(block) if newline < 0 else newline + 1]
        one = _single_line(line, case)
        if one is None or (run_db >= 0 and one[2] != run_db):
            break
        _end, _lines, run_db, one_frames, one_replies, one_commands, one_index, one_kinds, \
            one_ttl, one_past, one_expired = one  # fmt: skip
        at += len(line)
        lines += 1
        frames += one_frames
        replies += one_replies
        commands += one_commands
        if one_frames:
            flags += one_index[:1]
            key_sizes += one_index[1:5]
            command_sizes += one_index[5:9]
            counts += one_index[9:13]
            keys += one_index[13:]
        kinds = [a + b for a, b in zip(kinds, one_kinds, strict=True)]
        with_ttl, past, expired = with_ttl + one_ttl, past + one_past, expired + one_expired
    index = bytes(flags + key_sizes + command_sizes + counts + keys)
    return (at, lines, run_db, frames, replies, bytes(commands), index, tuple(kinds), with_ttl,
            past, expired)  # fmt: skip


def _single_line(line: bytes, case: dict):
    """C's result for one line alone, None when it leaves the line to Python; a line it
    takes is checked against Python here."""
    result = _compile_run(line, 0, case, BIG, BIG)
    assert not isinstance(result, ValueError), result
    end, lines, *_ = result
    stats["lines taken" if lines else "lines left to Python"] += 1
    if not lines:
        assert end == 0, result
        return None
    assert end == len(line) and line.endswith(b"\n"), result
    _same_as_python(line, result, case)
    return result


def _same_as_python(line: bytes, result: tuple, case: dict) -> None:
    now_ms, only_db, delete_first = _options(case)
    _end, _lines, c_db, frames, replies, commands, index, kinds, with_ttl, past, expired = result
    try:
        document = json.loads(line)
    except ValueError:
        raise AssertionError(f"C took a line that is not JSON: {line!r}") from None
    try:
        db, key, kind, expires, python_commands, count = _python(document, delete_first)
    except JsonFormatError as error:
        raise AssertionError(f"C took a line the parser refuses ({error}): {line!r}") from None
    assert c_db == db
    assert kinds == tuple(int(kind == name) for name in json_format.TYPES)
    assert with_ttl == (expires is not None)
    assert past == (expires is not None and expires <= now_ms)
    assert expired == (past and (only_db < 0 or db == only_db))
    if expired or (only_db >= 0 and db != only_db):
        assert (frames, replies, commands, index) == (0, 0, b"", b"")
        return
    flags = FIRST | FINAL | (0 if kind == "string" else AGGREGATE)
    sizes = array("I", [len(key), len(python_commands), count]).tobytes()
    assert (frames, replies, commands) == (1, count, python_commands)
    assert index == bytes([flags]) + sizes + key


def _python(document: Any, delete_first: bool) -> tuple:
    """(db, key, type, expires, commands, count) as the Python compiler gives them."""
    try:
        return compile_document(document, delete_first)
    except SLOW_ERRORS:
        pass
    db, key, kind, expires, part, more, commands = compile_line(document, 1)
    assert part == 0 and not more, document
    if kind != "string" and delete_first:
        commands.insert(0, b"*2\r\n$3\r\nDEL\r\n$%d\r\n%b\r\n" % (len(key), key))
    if expires is not None:
        commands.append(b"*3\r\n$9\r\nPEXPIREAT\r\n$%d\r\n%b\r\n$%d\r\n%d\r\n"
                        % (len(key), key, len(b"%d" % expires), expires))  # fmt: skip
    return db, key, kind, expires, b"".join(commands), len(commands)


def _check_filter(case: dict) -> None:
    seen, index, frames, db = case["seen"], case["index"], case["frames"], case["db"]
    model = bytearray(seen)
    try:
        expected: Any = _seen_before_model(model, db, index, frames)
    except ValueError as error:
        expected = str(error)
    with exact_buffer(seen) as filter_view, exact_buffer(index) as index_view:
        try:
            got: Any = json_to_resp.seen_before(filter_view, db, index_view, frames)
        except ValueError as error:
            got = str(error)
        after = bytes(filter_view)
    stats["filters refused" if isinstance(got, str) else "filters"] += 1
    assert got == expected, (got, expected)
    assert after == model


MASK = (1 << 64) - 1


def _key_hash(db: int, key: bytes) -> int:
    h = 0xCBF29CE484222325 ^ (db & MASK)
    for byte in key:
        h = ((h ^ byte) * 0x100000001B3) & MASK
    h ^= h >> 30
    h = (h * 0xBF58476D1CE4E5B9) & MASK
    h ^= h >> 27
    h = (h * 0x94D049BB133111EB) & MASK
    return h ^ (h >> 31)


def _seen_before_model(seen: bytearray, db: int, index: bytes, frames: int) -> list[int]:
    bits = len(seen) * 8
    if not seen or bits & (bits - 1) or bits > 1 << 32 or frames < 0 or len(index) < frames * 13:
        raise ValueError("seen_before: a filter of 2**n bytes and an index")
    found, at = [], frames * 13
    for i in range(frames):
        size = int.from_bytes(index[frames + 4 * i : frames + 4 * i + 4], "little")
        if len(index) - at < size:
            raise ValueError("seen_before: the index is cut short")
        if index[i] & FIRST:
            h = _key_hash(db, index[at : at + size])
            one, two = h & (bits - 1), (h >> 32) & (bits - 1)
            known = (seen[one >> 3] >> (one & 7)) & (seen[two >> 3] >> (two & 7)) & 1
            seen[one >> 3] |= 1 << (one & 7)
            seen[two >> 3] |= 1 << (two & 7)
            if known and index[i] & AGGREGATE:
                found.append(i)
        at += size
    return found


# --- the smallest inputs of what fuzzing found ----------------------------------------

_OPTIONS = {"now_ms": NOW_MS, "only_db": -1, "delete_first": False, "max_keys": BIG,
            "max_bytes": BIG}  # fmt: skip
REGRESSIONS: dict[str, dict] = {
    # a db of 19 digits overflowed int64 before the digit count refused it
    "json_19_digit_integer": {"call": "compile_run", "start": 0, **_OPTIONS,
                              "block": b'{"db":9999999999999999999,"key":"k","type":"string",'
                                       b'"value":"v"}\n'},
    # no line taken: the empty index was built with memcpy(NULL, NULL, 0)
    "json_empty_block": {"call": "compile_run", "start": 0, **_OPTIONS, "block": b""},
    # block + start was computed before start was checked: far out, it wrapped around
    "json_start_far_outside": {"call": "compile_run", "start": -(1 << 63), **_OPTIONS,
                               "block": b"{}\n"},
    # a frame count whose 13 bytes each overflowed the check of the index's size
    "json_filter_frames_overflow": {"call": "seen_before", "seen": b"\0", "db": 0,
                                    "index": b"", "frames": 1 << 62},
}  # fmt: skip
