"""Compression stages of the artifact pipeline: parallel multi-member gzip, and zstd.

Writers are push-style: `write(data)` any number of times, then `finish()`;
every compressed piece goes to the `sink` callable in stream order. Readers
decompress with bounded memory and raise IntegrityError for a damaged stream.
"""

import gzip
import io
import os
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO, Protocol

import zstandard
from zlib_ng import gzip_ng, zlib_ng

from engines.errors import IntegrityError
from engines.pipeline.gzip_members import (
    DEFAULT_MEM_LEVEL,
    MAX_MEMBER_PLAIN,
    DeflatedBlock,
    DeflatePlan,
    compress_member,
    deflate_plan,
    joined_member,
    open_members,
)

CODEC_IDS = {"gzip": 1, "zstd": 2}
CODEC_SUFFIXES = {"gzip": ".gz", "zstd": ".zst"}
DEFAULT_LEVELS = {"gzip": 9, "zstd": 3}

GZIP_BLOCK_SIZE = 1024 * 1024
# Members deflated by one plan (deflate_plan): its samples cost about 4% of one member.
PLAN_MEMBERS = 4
# From this level up, blocks are primed with the 32 KiB before them and joined four to a
# member (gzip_members.py says why); below it every block is a member of its own.
PRIMED_FROM_LEVEL = 7
WINDOW = 32 * 1024
PROBE_SLICE = 64 * 1024
PROBE_SAMPLE = 1024
# A sample this compressible at level 1 marks its slice as worth deflating.
PROBE_RATIO = 0.9
# Shorter incompressible runs are deflated anyway: a stored member costs a new
# member and restarts the compression window of the data after it.
MIN_STORED_SLICES = 4
# zstd's default job for a stream of unknown size is so large that two workers
# rarely overlap, and its buffers grow with the job: 2 MiB jobs keep both
# workers busy in about 35 MB (the default takes over 100 MB).
ZSTD_JOB_SIZE = 2 * 1024 * 1024

Sink = Callable[[bytes], None]


class Compressor(Protocol):
    def write(self, data: bytes) -> None: ...
    def finish(self) -> None: ...
    def close(self) -> None: ...


def check_codec(codec: str) -> str:
    if codec not in CODEC_IDS:
        raise ValueError(f"unknown codec {codec!r}; expected one of {', '.join(CODEC_IDS)}")
    return codec


def codec_for_id(codec_id: int) -> str | None:
    return next((name for name, known in CODEC_IDS.items() if known == codec_id), None)


def default_threads() -> int:
    return len(os.sched_getaffinity(0))


def make_compressor(
    codec: str, sink: Sink, level: int | None = None, threads: int | None = None
) -> Compressor:
    check_codec(codec)
    level = DEFAULT_LEVELS[codec] if level is None else level
    threads = default_threads() if threads is None else threads
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    if codec == "gzip":
        return ParallelGzipCompressor(sink, level, threads)
    return ZstdCompressor(sink, level, threads)


def _looks_compressible(piece: memoryview) -> bool:
    size = len(piece)
    if size <= 3 * PROBE_SAMPLE:
        samples = [piece]
    else:
        middle = size // 2 - PROBE_SAMPLE // 2
        # Both ends are sampled so a slice straddling a text/binary boundary is
        # deflated rather than stored.
        samples = [
            piece[middle : middle + PROBE_SAMPLE],
            piece[:PROBE_SAMPLE],
            piece[-PROBE_SAMPLE:],
        ]
    for sample in samples:
        # A small window and memLevel keep each probe's setup cost to microseconds.
        probe = zlib.compressobj(1, zlib.DEFLATED, -10, 4)
        if len(probe.compress(sample)) + len(probe.flush()) < len(sample) * PROBE_RATIO:
            return True
    return False


def _member_runs(block: memoryview) -> Iterator[tuple[int, int, bool]]:
    """Yield (start, end, compressible) runs of PROBE_SLICE slices of `block`."""
    slices = [
        (start, min(start + PROBE_SLICE, len(block))) for start in range(0, len(block), PROBE_SLICE)
    ]
    flags = [_looks_compressible(block[start:end]) for start, end in slices]
    index = 0
    while index < len(slices):
        stop = index
        while stop < len(slices) and flags[stop] == flags[index]:
            stop += 1
        compressible = flags[index] or stop - index < MIN_STORED_SLICES
        yield slices[index][0], slices[stop - 1][1], compressible
        index = stop


def _segments(block: memoryview) -> Iterator[tuple[int, int, bool]]:
    """(start, end, deflate) pieces of `block`: incompressible runs apart, the rest merged."""
    if len(block) <= PROBE_SLICE:
        yield 0, len(block), True
        return
    pending_start = 0
    for start, end, compressible in _member_runs(block):
        if not compressible:
            if start > pending_start:
                yield pending_start, start, True
            yield start, end, False
            pending_start = end
    if pending_start < len(block):
        yield pending_start, len(block), True


def compress_gzip_block(block: bytes, level: int) -> bytes:
    """Compress one block into one or more complete gzip members."""
    if level == 0:
        return compress_member(block, level)
    view = memoryview(block)
    return b"".join(
        compress_member(view[start:end], level if deflate else 0)
        for start, end, deflate in _segments(view)
    )


def _window_before(history: bytes, block: memoryview, start: int) -> bytes:
    """The (up to) 32 KiB of plain data before `start` of `block`, `history` before it."""
    if start >= WINDOW:
        return bytes(block[start - WINDOW : start])
    return history[max(0, len(history) - (WINDOW - start)) :] + bytes(block[:start])


def deflate_block(
    block: bytes, history: bytes, level: int, plan: Future[DeflatePlan] | DeflatePlan | None = None
) -> DeflatedBlock:
    """`block` as raw deflate that goes on from `history` (the data before it in its
    member, empty at a member's start); incompressible runs go in stored blocks.
    `plan` is its member's (deflate_plan of the member's first block), or None to
    choose one from `block`."""
    view = memoryview(block)
    if plan is None:
        plan = deflate_plan(view, level)
    elif isinstance(plan, Future):
        plan = plan.result()
    pieces = []
    for start, end, deflate in _segments(view):
        segment = view[start:end]
        if deflate:
            options = {}
            if window := _window_before(history, view, start):
                options["zdict"] = window
            deflater = zlib_ng.compressobj(
                plan.level, zlib.DEFLATED, -15, DEFAULT_MEM_LEVEL, plan.strategy, **options
            )
        else:
            deflater = zlib_ng.compressobj(0, zlib.DEFLATED, -15)
        pieces.append(deflater.compress(segment))
        pieces.append(deflater.flush(zlib.Z_SYNC_FLUSH))
    return DeflatedBlock(b"".join(pieces), zlib_ng.crc32(view), len(view))


class ParallelGzipCompressor:
    """Blocks compressed on a thread pool into gzip members, emitted in order.

    zlib releases the GIL, so threads give real parallelism; at most
    `4 * threads` blocks are in flight, which keeps memory flat while a slow
    (compressible) block at the head of the queue does not idle the others.
    From PRIMED_FROM_LEVEL up a block is deflated with the 32 KiB before it as its
    dictionary (known when it is submitted, so blocks still go in parallel) and
    consecutive blocks are joined into members of up to MAX_MEMBER_PLAIN bytes.
    """

    def __init__(self, sink: Sink, level: int, threads: int, block_size: int = GZIP_BLOCK_SIZE):
        if not 0 <= level <= 9:
            raise ValueError(f"gzip level must be 0..9, got {level}")
        if not 0 < block_size <= MAX_MEMBER_PLAIN:
            raise ValueError(f"gzip block size must be 1..{MAX_MEMBER_PLAIN}, got {block_size}")
        self._sink = sink
        self._level = level
        self._block_size = block_size
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="gzip")
        self._in_flight: deque[Future[bytes | DeflatedBlock]] = deque()
        self._max_in_flight = 4 * threads
        self._pending = bytearray()
        self._submitted = 0
        self._primed = level >= PRIMED_FROM_LEVEL
        self._member_blocks = MAX_MEMBER_PLAIN // block_size if self._primed else 1
        self._history = b""  # the last WINDOW bytes submitted to the current member
        self._member: list[DeflatedBlock] = []
        self._plan: Future[DeflatePlan] | None = None  # the current member's

    def write(self, data: bytes) -> None:
        self._pending += data
        size = self._block_size
        if len(self._pending) < size:
            return
        with memoryview(self._pending) as view:
            start = 0
            while len(view) - start >= size:
                self._submit(bytes(view[start : start + size]))
                start += size
        del self._pending[:start]

    def finish(self) -> None:
        if self._pending or not self._submitted:
            self._submit(bytes(self._pending))
            self._pending.clear()
        while self._in_flight:
            self._emit(self._in_flight.popleft().result())
        if self._member:
            self._sink(joined_member(self._member, self._level))
            self._member = []
        self.close()

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _submit(self, block: bytes) -> None:
        while len(self._in_flight) >= self._max_in_flight:
            self._emit(self._in_flight.popleft().result())
        future: Future[bytes | DeflatedBlock]
        if self._primed:
            if self._submitted % self._member_blocks == 0:
                self._history = b""
            if self._submitted % (self._member_blocks * PLAN_MEMBERS) == 0:
                # Submitted before the blocks it plans, so a worker waiting on it never
                # waits on a task that no worker has started (the pool runs tasks in order).
                self._plan = self._executor.submit(deflate_plan, block, self._level)
            future = self._executor.submit(
                deflate_block, block, self._history, self._level, self._plan
            )
            self._history = (self._history + block if len(block) < WINDOW else block)[-WINDOW:]
        else:
            future = self._executor.submit(compress_gzip_block, block, self._level)
        self._in_flight.append(future)
        self._submitted += 1
        while self._in_flight and self._in_flight[0].done():
            self._emit(self._in_flight.popleft().result())

    def _emit(self, done: bytes | DeflatedBlock) -> None:
        if isinstance(done, bytes):
            self._sink(done)
            return
        self._member.append(done)
        if len(self._member) == self._member_blocks:
            self._sink(joined_member(self._member, self._level))
            self._member = []


class ZstdCompressor:
    """One zstd frame with a content checksum; zstd's own worker threads do the work."""

    def __init__(self, sink: Sink, level: int, threads: int):
        low, high = -(1 << 17), zstandard.MAX_COMPRESSION_LEVEL
        if not low <= level <= high or level == 0:
            raise ValueError(f"zstd level must be {low}..{high} (not 0), got {level}")
        params = zstandard.ZstdCompressionParameters.from_level(
            level, threads=threads, job_size=ZSTD_JOB_SIZE, write_checksum=1
        )
        self._stream = zstandard.ZstdCompressor(compression_params=params).compressobj()
        self._sink = sink

    def write(self, data: bytes) -> None:
        out = self._stream.compress(data)
        if out:
            self._sink(out)

    def finish(self) -> None:
        self._sink(self._stream.flush())

    def close(self) -> None:
        pass


def open_decompressor(codec: str, raw: BinaryIO, name: str) -> BinaryIO:
    """Decompress `raw` as `codec`; errors name the artifact `name`.

    End of file is reached only after the whole compressed stream was checked
    and `raw` was read to its end.
    """
    counted = _CountingReader(raw)
    inner: BinaryIO
    if check_codec(codec) == "gzip":
        # Members we wrote carry their length and inflate on all cores; older streams
        # go through zlib-ng, which inflates about a third faster than zlib.
        inner = open_members(
            counted, default_threads(), lambda raw: gzip_ng.GzipFile(fileobj=raw, mode="rb")
        )
    else:
        inner = ZstdFrameReader(counted)
    return io.BufferedReader(_CheckedReader(inner, counted, codec, name))


class _CountingReader:
    def __init__(self, raw: BinaryIO):
        self._raw = raw
        self.consumed = 0

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self.consumed += len(data)
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class _CheckedReader(io.RawIOBase):
    def __init__(self, inner: BinaryIO, raw: _CountingReader, codec: str, name: str):
        self._inner = inner
        self._raw = raw
        self._codec = codec
        self._name = name

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            count = self._inner.readinto(buffer)
            if count == 0:
                self._check_end()
        except EOFError:
            raise IntegrityError(f"{self._name}: {self._codec} stream is truncated") from None
        except (gzip.BadGzipFile, zlib.error, zlib_ng.error, zstandard.ZstdError) as exc:
            raise IntegrityError(f"{self._name}: {self._codec} stream is damaged ({exc})") from None
        return count

    def _check_end(self) -> None:
        # gzip readers accept an empty input as zero members; gzip(1) does not.
        if self._raw.consumed == 0:
            raise IntegrityError(f"{self._name}: {self._codec} stream is empty")
        if self._raw.read(1):
            raise IntegrityError(f"{self._name}: unexpected data after the {self._codec} stream")

    def close(self) -> None:
        self._inner.close()
        super().close()


ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
ZSTD_MAX_BLOCK = 128 * 1024
_ZSTD_FCS_SIZES = (0, 2, 4, 8)
_ZSTD_DICT_ID_SIZES = (0, 1, 2, 4)


class ZstdFrameReader(io.RawIOBase):
    """Decode exactly one zstd frame, one block at a time.

    zstandard's decompressobj has no output limit, so feeding it a single
    block (at most 128 KiB of output) is what bounds memory; walking the block
    headers also tells a truncated frame from a complete one.
    """

    def __init__(self, raw: BinaryIO):
        self._raw = raw
        self._decoder = zstandard.ZstdDecompressor().decompressobj()
        self._output = memoryview(b"")
        self._units = self._frame_units()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._output:
            unit = next(self._units, None)
            if unit is None:
                return 0
            self._output = memoryview(self._decoder.decompress(unit))
        count = min(len(buffer), len(self._output))
        buffer[:count] = self._output[:count]
        self._output = self._output[count:]
        return count

    def _read(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            part = self._raw.read(size - len(data))
            if not part:
                raise EOFError("zstd frame ended early")
            data += part
        return data

    def _frame_units(self) -> Iterator[bytes]:
        magic = self._raw.read(len(ZSTD_MAGIC))
        if magic != ZSTD_MAGIC:
            raise zstandard.ZstdError("not a zstd frame (bad magic bytes)")
        descriptor = self._read(1)[0]
        single_segment = bool(descriptor & 0x20)
        has_checksum = bool(descriptor & 0x04)
        fcs_size = _ZSTD_FCS_SIZES[descriptor >> 6] or (1 if single_segment else 0)
        size = (0 if single_segment else 1) + _ZSTD_DICT_ID_SIZES[descriptor & 3] + fcs_size
        yield magic + bytes([descriptor]) + self._read(size)
        last = False
        while not last:
            header = self._read(3)
            value = int.from_bytes(header, "little")
            last, block_type, block_size = bool(value & 1), (value >> 1) & 3, value >> 3
            if block_type == 3 or block_size > ZSTD_MAX_BLOCK:
                raise zstandard.ZstdError("invalid block header")
            yield header + self._read(1 if block_type == 1 else block_size)
        if has_checksum:
            yield self._read(4)
        if not self._decoder.eof:
            raise EOFError("zstd frame did not end after its last block")
