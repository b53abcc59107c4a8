"""_archive_chunks.c against a Python model of its chunk walk.

Alone: for every data, position, pending count and integer size, chunks() returns what
the model returns, or the same ValueError. In engines/postgres/archive_stream: the
walker fed real pg_dump output (whole, cut, damaged, in pieces of every size) gives the
same events, or the same error, with the C walk as with the model.
"""

import random
from collections import Counter
from pathlib import Path

from hypothesis import strategies as st

from engines.postgres import archive_stream
from engines.postgres.archive_layout import read_table_of_contents
from tests.fuzz.buffers import exact_buffer
from tests.fuzz.mutate import damage

MODULE = "engines.postgres._archive_chunks"
SSIZE_MAX = (1 << 63) - 1
stats: Counter = Counter()  # what the cases reached, for the run's summary


def load_corpus(folder: Path) -> list[bytes]:
    return [path.read_bytes() for path in sorted((folder / "pg").glob("*.dump"))]


def model_chunks(data: bytes, pos: int, pending: int, int_size: int) -> tuple:
    """chunks() in Python: what _archive_chunks.c promises."""
    if not 1 <= int_size <= 8 or not 0 <= pos <= len(data) or pending < 0:
        raise ValueError("chunks: position, pending or int_size out of range")
    payload = bytearray()
    while True:
        if pending > 0:
            take = min(len(data) - pos, pending)
            payload += data[pos : pos + take]
            pos, pending = pos + take, pending - take
            if pending > 0:
                break
        if len(data) - pos < 1 + int_size:
            break
        size = int.from_bytes(data[pos + 1 : pos + 1 + int_size], "little")
        if (data[pos] != 0 and size != 0) or size > SSIZE_MAX:
            raise ValueError("a data chunk with a negative or impossible length")
        pos += 1 + int_size
        if size == 0:
            return bytes(payload), pos, pending, True
        pending = size
    return bytes(payload), pos, pending, False


class _Model:
    chunks = staticmethod(model_chunks)


# --- cases ------------------------------------------------------------------------------

TOKENS = [b"\x00\x00\x00\x00\x00", b"\x01\x01\x00\x00\x00", b"\x00\xff\xff\xff\x7f",
          b"\x00\xff\xff\xff\xff", b"\x01", b"\x03", b"\\.\n\n\n", b"\n"]  # fmt: skip


def chunk_run(rnd: random.Random, int_size: int) -> bytes:
    out = b""
    for _ in range(rnd.randrange(6)):
        text = rnd.choice([b"", b"a\tb\n", b"\\.\n", b"\n", rnd.randbytes(rnd.randrange(40))])
        size = len(text) if rnd.randrange(8) else rnd.choice([0, 1, 1 << (8 * int_size - 1)])
        sign = 0 if rnd.randrange(30) else rnd.choice([1, 255])
        out += bytes([sign]) + (size % (1 << (8 * int_size))).to_bytes(int_size, "little") + text
    if rnd.randrange(3):
        out += bytes([rnd.choice([0, 0, 1])]) + bytes(int_size)  # the end of the run
    return out + rnd.randbytes(rnd.choice([0, 0, 3]))


@st.composite
def alone(draw) -> dict:
    rnd = random.Random(draw(st.integers(0, 1 << 32)))
    int_size = draw(st.sampled_from([4, 4, 4, 8, 1, 2]))
    data = chunk_run(rnd, int_size)
    if draw(st.integers(0, 3)) == 0:
        data = damage(data, rnd.randrange(1 << 32), TOKENS)
    pos = draw(st.sampled_from([0, 0, 0, len(data) // 2, len(data)]))
    pending = draw(st.sampled_from([0, 0, 0, 0, 1, 3, 50, SSIZE_MAX]))
    wrong = draw(st.integers(0, 12))  # now and then one argument out of range
    if wrong == 1:
        int_size = draw(st.sampled_from([0, 9, -1]))
    elif wrong == 2:
        pos = draw(st.sampled_from([-1, len(data) + 1, -SSIZE_MAX - 1]))
    elif wrong == 3:
        pending = draw(st.sampled_from([-1, -SSIZE_MAX - 1]))
    return {"call": "chunks", "data": data, "pos": pos, "pending": pending, "int_size": int_size}


@st.composite
def walks(draw, corpus: list[bytes]) -> dict:
    rnd = random.Random(draw(st.integers(0, 1 << 32)))
    archive = corpus[draw(st.integers(0, len(corpus) - 1))]
    toc = read_table_of_contents(archive)
    data_from = toc.end if toc is not None else 0
    shape = draw(st.sampled_from(["whole", "cut", "damaged", "damaged", "damaged"]))
    if shape == "cut":
        archive = archive[: rnd.randrange(len(archive) + 1)]
    elif shape == "damaged":  # in the data blocks, mostly: the C walk reads those
        at = 0 if rnd.randrange(10) == 0 else data_from
        archive = archive[:at] + damage(archive[at:], rnd.randrange(1 << 32), TOKENS)
    pieces = draw(st.sampled_from([[1 << 20], [7], [1, 2, 13], [4096, 3], [100, 1], [64]]))
    return {"call": "walker", "archive": archive, "pieces": pieces}


def cases(corpus: list[bytes], seed: int) -> st.SearchStrategy:
    if not corpus:
        return alone()
    return st.one_of(alone(), walks(corpus))


# --- the oracle -------------------------------------------------------------------------


def check(case: dict) -> None:
    if case["call"] == "chunks":
        _check_alone(case)
    else:
        _check_walker(case)


def _outcome(call, *args):
    try:
        return call(*args)
    except Exception as error:  # the same kind and message on both sides
        return f"{type(error).__name__}: {error}"


def _check_alone(case: dict) -> None:
    data, args = case["data"], (case["pos"], case["pending"], case["int_size"])
    expected = _outcome(model_chunks, data, *args)
    with exact_buffer(data) as view:
        got = _outcome(archive_stream._chunks.chunks, view, *args)
    stats["chunks: " + (got[:40] if isinstance(got, str) else f"ended {got[3]}")] += 1
    assert got == expected, (got, expected)


def _events(archive: bytes, pieces: list[int], toc_end: int) -> list:
    """What the walker gives for `archive` fed in pieces of the sizes given, in turn,
    after the table of contents (which it parses again whole on every feed until
    complete: in small pieces that would be most of the run)."""
    walker = archive_stream.ArchiveWalker()
    found: list = []
    at = turn = 0
    while at < len(archive):
        size = max(pieces[turn % len(pieces)], toc_end - at)
        for event in walker.feed(archive[at : at + size]):
            payload = getattr(event, "text", getattr(event, "data", getattr(event, "rows", 0)))
            found.append((type(event).__name__, event.entry.dump_id, payload))
        at, turn = at + size, turn + 1
    walker.finish()
    return found


def _check_walker(case: dict) -> None:
    archive, pieces = case["archive"], case["pieces"]
    toc = _outcome(read_table_of_contents, archive)
    toc_end = getattr(toc, "end", len(archive))  # no table of contents: one feed
    got = _outcome(_events, archive, pieces, toc_end)
    native = archive_stream._chunks
    archive_stream._chunks = _Model
    try:
        expected = _outcome(_events, archive, pieces, toc_end)
    finally:
        archive_stream._chunks = native
    stats["walker: " + (got.split(":")[0] if isinstance(got, str) else "walked")] += 1
    assert got == expected, (got, expected)


# --- the smallest inputs of what fuzzing found ------------------------------------------

REGRESSIONS: dict[str, dict] = {}
