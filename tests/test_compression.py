"""Parallel multi-member gzip, zstd, and the checked decompressing readers."""

import functools
import gzip
import hashlib
import io
import itertools
import json
import os
import random
import subprocess
import threading
import tracemalloc
import zlib

import pytest
import zstandard
from hypothesis import example, given, settings
from hypothesis import strategies as st
from zlib_ng import zlib_ng

from engines.errors import IntegrityError
from engines.pipeline.compression import (
    ParallelGzipCompressor,
    compress_gzip_block,
    default_threads,
    deflate_block,
    make_compressor,
    open_decompressor,
)
from engines.pipeline.gzip_members import (
    HEADER_SIZE,
    MAX_MEMBER_PLAIN,
    PLAN_SAMPLE,
    DeflatePlan,
    deflate_plan,
    joined_member,
    member_length,
    sized_member,
)

MiB = 1024 * 1024


@functools.cache
def vocabulary() -> tuple[list[str], list[float]]:
    rng = random.Random(0)
    words = [
        "".join(rng.choices("etaoinshrdlcumwfgypbvk", k=rng.randint(2, 9))) for _ in range(3000)
    ]
    return words, list(itertools.accumulate(1 / (rank + 1) for rank in range(len(words))))


def text(size: int, seed: int = 1) -> bytes:
    """Log-like text with a skewed word distribution, as dumps and logs have."""
    rng = random.Random(seed)
    words, cumulative = vocabulary()
    picked = rng.choices(words, cum_weights=cumulative, k=size // 5)
    lines = (" ".join(picked[i : i + 12]) for i in range(0, len(picked), 12))
    body = "".join(f"{n} INFO {line}\n" for n, line in enumerate(lines))
    return body.encode()[:size]


def mixed(size: int, seed: int = 2) -> bytes:
    rng = random.Random(seed)
    parts, total, compressible = [], 0, True
    while total < size:
        length = rng.randint(100_000, 700_000)
        parts.append(text(length, rng.randint(0, 1000)) if compressible else rng.randbytes(length))
        total += length
        compressible = not compressible
    return b"".join(parts)[:size]


def gzip_members(stream: bytes) -> list[tuple[int, bytes]]:
    """Split a .gz into (deflate block type of its first block, plaintext) per member."""
    members = []
    while stream:
        decoder = zlib.decompressobj(31)
        plain = decoder.decompress(stream)
        assert decoder.eof, "member does not end"
        length = member_length(stream)
        assert length == len(stream) - len(decoder.unused_data), "length field is wrong"
        first_block_type = (stream[HEADER_SIZE] >> 1) & 3
        members.append((first_block_type, plain))
        stream = decoder.unused_data
    return members


def compress(codec: str, data: bytes, pieces: int = 3, **options) -> bytes:
    out = bytearray()
    compressor = make_compressor(codec, out.extend, **options)
    step = max(1, len(data) // pieces)
    for start in range(0, len(data), step):
        compressor.write(data[start : start + step])
    compressor.finish()
    return bytes(out)


def read_all(codec: str, stream: bytes) -> bytes:
    with open_decompressor(codec, io.BytesIO(stream), "files/x.tar") as reader:
        return reader.read()


@settings(max_examples=40, deadline=None)
@given(
    block_size=st.sampled_from([1, 7, 64, 1000]),
    data=st.binary(max_size=5000),
    split=st.integers(1, 5),
)
@example(block_size=64, data=b"", split=1)
@example(block_size=64, data=b"a", split=1)
@example(block_size=64, data=b"b" * 63, split=1)
@example(block_size=64, data=b"c" * 64, split=1)
@example(block_size=64, data=b"d" * 65, split=2)
def test_parallel_gzip_round_trip(block_size: int, data: bytes, split: int):
    out = bytearray()
    compressor = ParallelGzipCompressor(out.extend, level=6, threads=2, block_size=block_size)
    step = max(1, len(data) // split)
    for start in range(0, len(data), step):
        compressor.write(data[start : start + step])
    compressor.finish()
    assert gzip.decompress(bytes(out)) == data
    assert read_all("gzip", bytes(out)) == data
    assert len(gzip_members(bytes(out))) == max(1, -(-len(data) // block_size))


def test_gzip_tool_reads_the_multi_member_stream():
    data = mixed(13 * MiB)  # at level 9 a member holds four 1 MiB blocks
    stream = compress("gzip", data)
    assert len(gzip_members(stream)) > 3
    result = subprocess.run(["gzip", "-dc"], input=stream, capture_output=True, check=True)
    assert result.stdout == data


def test_incompressible_run_is_stored_and_the_rest_deflated():
    block = text(MiB // 2) + random.Random(3).randbytes(MiB // 2)
    members = gzip_members(compress_gzip_block(block, 9))
    assert [kind != 0 for kind, _ in members] == [True, False]
    assert b"".join(plain for _, plain in members) == block
    assert len(members[1][1]) == MiB // 2


def test_short_incompressible_run_is_deflated_with_its_neighbours():
    block = text(400_000) + os.urandom(64 * 1024) + text(400_000, seed=5)
    assert len(gzip_members(compress_gzip_block(block, 9))) == 1


def test_random_data_costs_almost_nothing_extra():
    block = os.urandom(MiB)
    assert len(compress_gzip_block(block, 9)) < MiB * 1.001


def test_size_stays_within_two_percent_of_gzip_9():
    data = mixed(8 * MiB)
    ours = compress("gzip", data, level=9)
    reference = subprocess.run(["gzip", "-9", "-c"], input=data, capture_output=True, check=True)
    assert len(ours) <= 1.02 * len(reference.stdout)
    assert gzip.decompress(ours) == data


def test_level_zero_stores_everything():
    members = gzip_members(compress("gzip", text(200_000), level=0))
    assert {kind for kind, _ in members} == {0}


@pytest.mark.parametrize(
    ("codec", "options", "message"),
    [
        ("bz2", {}, "unknown codec 'bz2'"),
        ("gzip", {"level": 10}, "gzip level must be 0..9, got 10"),
        ("zstd", {"level": 0}, "zstd level must be"),
        ("zstd", {"level": 23}, "zstd level must be"),
        ("gzip", {"threads": 0}, "threads must be at least 1"),
    ],
)
def test_bad_options_are_refused(codec: str, options: dict, message: str):
    with pytest.raises(ValueError, match=message):
        make_compressor(codec, lambda _: None, **options)


def test_worker_threads_end_with_the_compressor():
    before = threading.active_count()
    compress("gzip", mixed(2 * MiB), threads=2)
    assert threading.active_count() == before


def test_failing_sink_stops_the_workers():
    def refuse(_: bytes) -> None:
        raise OSError("disk full")

    before = threading.active_count()
    compressor = make_compressor("gzip", refuse, threads=2)
    with pytest.raises(OSError, match="disk full"):
        for _ in range(40):
            compressor.write(os.urandom(256 * 1024))
        compressor.finish()
    compressor.close()
    assert threading.active_count() == before


@settings(max_examples=25, deadline=None)
@given(data=st.binary(max_size=300_000), level=st.sampled_from([1, 3, 19]))
@example(data=b"", level=3)
def test_zstd_round_trip(data: bytes, level: int):
    stream = compress("zstd", data, level=level)
    assert read_all("zstd", stream) == data
    assert zstandard.ZstdDecompressor().decompressobj().decompress(stream) == data


def test_zstd_tool_reads_the_stream():
    data = mixed(3 * MiB)
    stream = compress("zstd", data, pieces=10)
    result = subprocess.run(["zstd", "-dc"], input=stream, capture_output=True, check=True)
    assert result.stdout == data


@pytest.mark.parametrize("codec", ["gzip", "zstd"])
def test_every_cut_of_the_stream_is_detected(codec: str):
    stream = compress(codec, mixed(300_000), level=1)
    for length in sorted({*range(0, 40), *range(0, len(stream), 997), len(stream) - 1}):
        with pytest.raises(IntegrityError, match=rf"files/x\.tar: {codec} stream is"):
            read_all(codec, stream[:length])


@pytest.mark.parametrize("codec", ["gzip", "zstd"])
def test_trailing_garbage_is_detected(codec: str):
    stream = compress(codec, b"payload")
    with pytest.raises(IntegrityError, match=r"files/x\.tar: "):
        read_all(codec, stream + b"garbage!")


@pytest.mark.parametrize("codec", ["gzip", "zstd"])
def test_damaged_checksum_is_detected(codec: str):
    stream = bytearray(compress(codec, text(50_000)))
    stream[-5 if codec == "gzip" else -1] ^= 0x01  # gzip: CRC32; zstd: content checksum
    with pytest.raises(IntegrityError, match=f"{codec} stream is damaged"):
        read_all(codec, bytes(stream))


def zeros_compressed(codec: str, mebibytes: int, level: int) -> bytes:
    """`mebibytes` MiB of zeros, compressed: a decompression bomb."""
    out = bytearray()
    compressor = make_compressor(codec, out.extend, level=level)
    for _ in range(mebibytes):
        compressor.write(bytes(MiB))
    compressor.finish()
    return bytes(out)


def read_with_peak(codec: str, stream: bytes) -> tuple[int, int]:
    """(bytes read back from `stream`, peak of Python's traced memory meanwhile)."""
    tracemalloc.start()
    try:
        total = 0
        with open_decompressor(codec, io.BytesIO(stream), "bomb") as reader:
            while block := reader.read(MiB):
                total += len(block)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return total, peak


@pytest.mark.parametrize("codec", ["gzip", "zstd"])
def test_reading_a_bomb_stays_within_a_few_mebibytes(codec: str):
    out = zeros_compressed(codec, 128, level=1)
    assert len(out) < MiB  # 128 MiB of zeros squeezed small
    total, peak = read_with_peak(codec, out)
    assert total == 128 * MiB
    # gzip inflates a member per thread (its output, 1 MiB, built from blocks and then
    # joined: 2 MiB at the moment of joining) plus one member's result waiting its turn.
    assert peak < (4 + 3 * default_threads()) * MiB


def test_members_carry_their_length_and_inflate_on_several_threads():
    data = mixed(3 * MiB + 12345)
    stream = compress("gzip", data, level=6)
    members = gzip_members(stream)  # checks every member's length field
    assert len(members) >= 4
    parallel = threading.active_count()
    with open_decompressor("gzip", io.BytesIO(stream), "files/x.tar") as reader:
        assert reader.read(10) == data[:10]
        assert threading.active_count() > parallel  # the inflating pool is running
        assert data[10:] == reader.read()


def test_streams_without_length_fields_still_read():
    data = text(300_000)
    plain_members = b"".join(
        zlib.compress(data[start : start + 100_000], 6, 31)
        for start in range(0, len(data), 100_000)
    )
    assert member_length(plain_members) is None
    assert read_all("gzip", plain_members) == data
    assert read_all("gzip", gzip.compress(data)) == data


def test_a_wrong_length_field_is_damage_not_a_crash():
    stream = bytearray(compress_gzip_block(text(200_000), 6))
    assert member_length(bytes(stream)) == len(stream)
    for wrong in (len(stream) - 1, len(stream) + 7, HEADER_SIZE):
        stream[HEADER_SIZE - 4 : HEADER_SIZE] = wrong.to_bytes(4, "little")
        with pytest.raises(IntegrityError, match=r"files/x\.tar: gzip stream is"):
            read_all("gzip", bytes(stream) + compress_gzip_block(b"next", 6))


def test_a_member_that_inflates_beyond_the_block_cap_is_refused():
    bomb = sized_member(zlib.compress(bytes(MAX_MEMBER_PLAIN + 1), 9, 31))
    with pytest.raises(IntegrityError, match="inflates to more than"):
        read_all("gzip", bomb)


# From level 7 up: blocks primed with the 32 KiB before them, four to a member.

PRIMED_LEVEL = 9
MEMBER = MAX_MEMBER_PLAIN


def repetitive(size: int, seed: int) -> bytes:
    """Chunks that come back thousands of bytes later: matches that reach into history."""
    rng = random.Random(seed)
    chunks = [rng.randbytes(rng.randint(20, 300)) for _ in range(40)]
    out = bytearray()
    while len(out) < size:
        out += rng.choice(chunks)
    return bytes(out[:size])


def gzip_tool_reads(stream: bytes, data: bytes) -> None:
    subprocess.run(["gzip", "-t"], input=stream, check=True)
    assert subprocess.run(["zcat"], input=stream, capture_output=True, check=True).stdout == data


@settings(max_examples=30, deadline=None, derandomize=True)
@given(
    block_size=st.sampled_from([1, 7, 1000, 40_000]),
    size=st.integers(0, 120_000),
    seed=st.integers(0, 5),
    split=st.integers(1, 7),
)
@example(block_size=1000, size=0, split=1, seed=0)
@example(block_size=40_000, size=40_000, split=1, seed=1)
@example(block_size=40_000, size=80_001, split=3, seed=2)
def test_primed_blocks_round_trip_whatever_the_block_size(
    block_size: int, size: int, seed: int, split: int
):
    data = repetitive(size, seed)
    out = bytearray()
    compressor = ParallelGzipCompressor(out.extend, PRIMED_LEVEL, threads=2, block_size=block_size)
    step = max(1, len(data) // split)
    for start in range(0, len(data), step):
        compressor.write(data[start : start + step])
    compressor.finish()
    assert read_all("gzip", bytes(out)) == data
    assert zlib.decompress(bytes(out), 31) == data
    assert len(gzip_members(bytes(out))) == 1  # all within one member's 4 MiB


@pytest.mark.parametrize(
    "size",
    [MiB - 1, MiB, MiB + 1, MEMBER - 1, MEMBER, MEMBER + 1, 2 * MEMBER + MiB // 2 + 123],
)
def test_round_trip_at_block_and_member_boundaries(size: int):
    # A random run straddles the first block boundary (stored blocks inside a member),
    # and the text repeats across every boundary, so primed blocks reach back over it.
    head = text(MiB - 200_000, seed=4) + random.Random(5).randbytes(400_000)
    data = (head + text(size, seed=6))[:size]
    stream = compress("gzip", data, pieces=7, level=PRIMED_LEVEL)
    members = gzip_members(stream)  # every member's length field checked
    assert len(members) == -(-size // MEMBER)
    assert [len(plain) for _, plain in members[:-1]] == [MEMBER] * (len(members) - 1)
    assert read_all("gzip", stream) == data
    gzip_tool_reads(stream, data)


def test_empty_input_is_one_member_gzip_reads():
    stream = compress("gzip", b"", level=PRIMED_LEVEL)
    assert len(gzip_members(stream)) == 1
    assert read_all("gzip", stream) == b""
    gzip_tool_reads(stream, b"")


@pytest.mark.parametrize(("level", "members"), [(1, 3), (5, 3), (6, 3), (7, 1), (9, 1)])
def test_levels_up_to_6_keep_a_member_per_block(level: int, members: int):
    data = text(3 * MiB)
    stream = compress("gzip", data, level=level)
    assert len(gzip_members(stream)) == members
    assert read_all("gzip", stream) == data


def test_random_data_is_stored_inside_members():
    data = random.Random(8).randbytes(2 * MiB) + text(MiB)
    stream = compress("gzip", data, level=PRIMED_LEVEL)
    (member,) = gzip_members(stream)
    assert member[0] == 0  # the member opens with a stored block
    # The text deflated by the member's plan, made from its first (random) block: level 9.
    assert len(stream) < 2 * MiB * 1.001 + len(zlib_ng.compress(text(MiB), 9, 31)) * 1.01
    gzip_tool_reads(stream, data)


def dump_rows() -> bytes:
    """pg_dump COPY rows of UUIDs, hex and numbers: Z_FILTERED's sample shrinks by 9%."""
    rows = []
    for n in range(12_000):
        h = hashlib.md5(str(n).encode()).hexdigest()
        uuid = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
        payload = f'{{"ip": "10.{n % 256}.{n // 256}.{int(h[5:7], 16)}", "score": 0.{h[7:11]}}}'
        rows.append(f"{n}\t{uuid}\t{int(h[:5], 16)}\tplay\t{payload}\t2025-01-01 {n % 24:02}:00\n")
    return "".join(rows).encode()[:MiB]


def json_lines() -> bytes:
    """Records with random names and numbers: Z_FILTERED's sample shrinks by 3.5%."""
    rng = random.Random(1)
    records = (
        {
            "key": f"user:{n}",
            "value": {"name": f"n{rng.randrange(1000)}", "v": rng.randrange(10**5)},
        }
        for n in range(30_000)
    )
    return "".join(json.dumps(record) + "\n" for record in records).encode()[:MiB]


def binary_records() -> bytes:
    """Short binary structures, as an RDB's: Z_FILTERED's sample grows by 4%."""
    rng = random.Random(2)
    return b"".join(
        n.to_bytes(4, "little") + rng.randbytes(2) + bytes([n % 7]) * 3 + b"key:%d" % n
        for n in range(100_000)
    )[:MiB]


def test_z_filtered_only_where_its_sample_shrinks_clearly():
    """It costs up to 1.5x the CPU: worth it on dumps' text, not for a few percent."""
    assert deflate_plan(dump_rows(), PRIMED_LEVEL) == DeflatePlan(9, zlib.Z_FILTERED)
    assert deflate_plan(json_lines(), PRIMED_LEVEL).strategy == zlib.Z_DEFAULT_STRATEGY
    assert deflate_plan(binary_records(), PRIMED_LEVEL).strategy == zlib.Z_DEFAULT_STRATEGY
    assert deflate_plan(dump_rows(), 6) == DeflatePlan(6)  # no effect below 7


def test_level_7_search_only_where_its_sample_comes_out_smaller():
    """zlib-ng's level 7 deflates an RDB smaller than its level 9 in half the time; where
    the sample says level 9's longer search pays, level 9 stays."""
    for data in (json_lines(), binary_records(), text(MiB)):
        plan = deflate_plan(data, PRIMED_LEVEL)
        middle = len(data) // 2 - PLAN_SAMPLE // 2
        sample = data[middle : middle + PLAN_SAMPLE]
        at_7, at_9 = (len(zlib_ng.compress(sample, level, -15)) for level in (7, 9))
        assert plan.level == (7 if at_7 < at_9 else 9)
    assert deflate_plan(json_lines(), 9) == DeflatePlan(7)
    assert deflate_plan(binary_records(), 9) == DeflatePlan(9)
    assert deflate_plan(binary_records(), 7) == DeflatePlan(7)


def test_streams_of_independent_1_mib_members_still_read():
    """Artifacts written before members held several primed blocks."""
    data = text(3 * MiB + 5000)
    old_stream = b"".join(
        sized_member(zlib.compress(data[start : start + MiB], 9, 31))
        for start in range(0, len(data), MiB)
    )
    assert len(gzip_members(old_stream)) == 4
    assert read_all("gzip", old_stream) == data


def test_a_member_of_exactly_the_cap_reads_and_a_larger_one_is_not_written():
    blocks = [deflate_block(bytes(MiB), b"", PRIMED_LEVEL) for _ in range(MEMBER // MiB)]
    assert read_all("gzip", joined_member(blocks, PRIMED_LEVEL)) == bytes(MEMBER)
    extra = deflate_block(b"x", b"", PRIMED_LEVEL)
    with pytest.raises(ValueError, match="a member holds at most"):
        joined_member([*blocks, extra], PRIMED_LEVEL)


@functools.cache
def primed_stream() -> tuple[bytes, bytes, list[int]]:
    """A level-9 stream of three members, and where each member starts."""
    data = text(2 * MEMBER + MiB, seed=9)
    stream = compress("gzip", data, level=PRIMED_LEVEL)
    starts, offset = [], 0
    while offset < len(stream):
        starts.append(offset)
        offset += member_length(stream[offset:])
    assert len(starts) == 3
    return data, stream, starts


@pytest.mark.parametrize("where", ["header", "deflate data", "crc", "size"])
def test_damage_in_a_primed_member_names_the_artifact(where: str):
    _, stream, starts = primed_stream()
    damaged = bytearray(stream)
    second_end = starts[2]
    position = {
        "header": starts[1] + 2,  # the compression method
        "deflate data": (starts[1] + second_end) // 2,
        "crc": second_end - 6,
        "size": second_end - 2,
    }[where]
    damaged[position] ^= 0x40
    with pytest.raises(IntegrityError, match=r"files/x\.tar: gzip stream is (damaged|truncated)"):
        read_all("gzip", bytes(damaged))


def test_a_cut_inside_any_primed_member_names_the_artifact():
    _, stream, starts = primed_stream()
    boundaries = set(starts)
    cuts = {
        start + offset for start in starts for offset in (1, HEADER_SIZE - 1, HEADER_SIZE, 5000)
    }
    cuts |= {end - offset for end in [*starts[1:], len(stream)] for offset in (1, 4, 8, 10)}
    for cut in sorted(cuts - boundaries):
        with pytest.raises(IntegrityError, match=r"files/x\.tar: gzip stream is"):
            read_all("gzip", stream[:cut])


@pytest.mark.parametrize("claim", [+1, +5000, 64 * MiB, -1])
def test_a_primed_member_claiming_a_wrong_length_names_the_artifact(claim: int):
    _, stream, starts = primed_stream()
    damaged = bytearray(stream)
    field = slice(starts[1] + HEADER_SIZE - 4, starts[1] + HEADER_SIZE)
    true_length = starts[2] - starts[1]
    damaged[field] = (true_length + claim).to_bytes(4, "little")
    with pytest.raises(IntegrityError, match=r"files/x\.tar: gzip stream is"):
        read_all("gzip", bytes(damaged))


def test_primed_members_inflate_on_the_reader_pool():
    data, stream, _ = primed_stream()

    def inflating_threads() -> int:
        return sum(thread.name.startswith("gunzip") for thread in threading.enumerate())

    assert inflating_threads() == 0
    with open_decompressor("gzip", io.BytesIO(stream), "files/x.tar") as reader:
        assert reader.read(10) == data[:10]
        # Every member was handed to the pool at once: one thread per core, up to three.
        assert inflating_threads() == min(3, default_threads())
        assert reader.read() == data[10:]
    assert inflating_threads() == 0


def test_reading_a_primed_bomb_stays_within_a_few_members():
    out = zeros_compressed("gzip", 64, level=PRIMED_LEVEL)
    assert len(out) < MiB
    total, peak = read_with_peak("gzip", out)
    assert total == 64 * MiB
    # As at level 1, with members of four blocks: a member per thread while it is
    # joined (twice its size) and one waiting its turn.
    assert peak < (1 + 3 * default_threads()) * MEMBER
