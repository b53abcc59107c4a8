"""Parallel multi-member gzip, zstd, and the checked decompressing readers."""

import functools
import gzip
import io
import itertools
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

from engines.errors import IntegrityError
from engines.pipeline.compression import (
    ParallelGzipCompressor,
    compress_gzip_block,
    default_threads,
    make_compressor,
    open_decompressor,
)
from engines.pipeline.gzip_members import HEADER_SIZE, MAX_MEMBER_PLAIN, member_length, sized_member

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


@pytest.mark.parametrize("codec", ["gzip", "zstd"])
def test_reading_a_bomb_stays_within_a_few_mebibytes(codec: str):
    zeros = bytes(MiB)
    out = bytearray()
    compressor = make_compressor(codec, out.extend, level=1)
    for _ in range(128):
        compressor.write(zeros)
    compressor.finish()
    assert len(out) < MiB  # 128 MiB of zeros squeezed small
    tracemalloc.start()
    try:
        total = 0
        with open_decompressor(codec, io.BytesIO(bytes(out)), "bomb") as reader:
            while block := reader.read(MiB):
                total += len(block)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
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
