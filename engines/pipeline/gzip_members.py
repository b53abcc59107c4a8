"""gzip members that carry their own length, so a reader can inflate several at once.

Each member the artifact pipeline writes has an extra header field (RFC 1952 FEXTRA,
as BGZF does) holding the member's total length. Any gzip reader skips the field;
ours uses it to cut the stream into members without inflating and to inflate them on
a thread pool (zlib releases the GIL), which makes a restore's decompression scale
with cores as the backup's compression does. Streams written before the field
existed are read one member after another, as before.

Two things kept our gzip-9 from `gzip -9`'s size and one cost CPU for nothing (measured on
benchmarks/pipeline.py's data sets against `gzip -9`); from level 7 up each is dealt with:
- zlib-ng's level 9 takes 3-byte matches however far back they lie, which on text full
  of hex, UUIDs and numbers costs more than the literals would: a realistic pg_dump is
  1.034x in 1 MiB members and still 1.032x as one stream. Its Z_FILTERED strategy drops
  matches shorter than 6 bytes: that dump 0.917x. But it is not free, and an RDB's binary
  structure needs the short matches. Per 1 MiB block at level 9 (primed), against the
  default strategy: realistic dump 0.886x the size at 1.10x the CPU, mixed file 0.993x
  at 1.04x (its text 0.986x at 1.05x), JSON export 0.982x at 1.00x, pgbench 1.004x at
  0.98x, RDB 1.054x at 1.46x. So a sample from the middle of a plan's first block is
  deflated both ways and Z_FILTERED deflates the plan's members only where the sample
  shrinks by FILTERED_MIN_SAVING (6%): on 64 KiB samples realistic dumps shrink by
  11.3-11.9%, the mixed file's text by up to 3.8%, the JSON export by 1.4-1.7%, RDBs and
  pgbench not at all. The mixed file and the JSON export thus stay within 1.02x (1.001x,
  1.007x) for 5% and 0% less CPU than with Z_FILTERED.
- zlib-ng's level 9 searches longer chains than its level 7 for matches that, on an RDB's
  binary structure, do not pay: level 7 deflates the benchmark's 1,000,000-key RDB 0.9%
  smaller (0.993x `gzip -9` against 1.002x) in 0.52x the CPU, but the JSON export 1.6%
  larger (at 1.40x the CPU). So the same sample also goes through level 7, which deflates
  the plan's members where it comes out smaller than at level 9 (on 64 KiB samples: every
  RDB and realistic-dump member, half the mixed file's, no JSON or pgbench member; a
  16 KiB sample picked level 7 for the JSON export too). A plan's three sample deflates
  cost about 4% of a 4 MiB member, so one plan covers PLAN_MEMBERS members (16 MiB):
  measured on 128 MiB of each data set, two threads, best of 4 against one 16 KiB
  strategy sample per member: RDB 0.52x the CPU and 0.99x the size, the mixed file
  0.98x and 0.998x, the JSON export, realistic and pgbench dumps equal in size and
  within 3% (noise) in CPU.
  zlib's level 9 also matches `gzip -9` but deflates 1.5x (RDB) to 7x (JSON) slower;
  libdeflate is smaller on dumps but 2-3x slower on the JSON export.
- History lost at member boundaries: 0.1-0.3% on the benchmark's data sets, but 1.5% on
  a small, very compressible RDB (1.026x in 1 MiB members, 1.012x as one stream). So,
  as pigz does, every 1 MiB block is deflated with the 32 KiB before it as its
  dictionary (known when the block is submitted, so blocks still deflate in parallel),
  ends with a sync flush, and four blocks are joined into one member (an empty final
  block, the CRC-32 combined from the blocks' own): 1.015x on that RDB, for 0.3-1.5% more
  CPU per block than without the dictionary (0.1-0.4% smaller there). Members stay
  independent and at most MAX_MEMBER_PLAIN, so a restore still inflates them in
  parallel with bounded memory; members of 8 MiB would gain another 0.3% there, at
  twice the reader's memory and a cap older readers refuse.
Levels up to 6 keep one member per 1 MiB block: their aim is speed, not gzip -9's size.
"""

import zlib
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO

from zlib_ng import zlib_ng

from engines.plumbing.streams import read_up_to

GZIP_WBITS = 31
_FLAG_EXTRA = 0x04
_SUBFIELD = b"JS"  # "Jarvis size"; any other reader skips it
_FIELD = 2 + 2 + 4  # subfield id, its length, the member length
HEADER_SIZE = 10 + 2 + _FIELD  # fixed header, XLEN, our one subfield
# Our members hold one to four 1 MiB compression blocks; the cap bounds a reader's memory.
MAX_MEMBER_PLAIN = 4 * 1024 * 1024
INFLATE_PIECE = 1024 * 1024
# A final, empty fixed-Huffman block: ends a deflate stream after a sync flush (as pigz).
_LAST_EMPTY_BLOCK = b"\x03\x00"
_OS_UNIX = 3
DEFAULT_MEM_LEVEL = 8  # what zlib's compress() uses
# Below level 7 zlib-ng's deflate ignores the strategy (same bytes either way).
FILTERED_FROM_LEVEL = 7
PLAN_SAMPLE = 64 * 1024
# zlib-ng from level 8 up searches longer for matches; level 7 wins where that does not pay.
SHORT_SEARCH_LEVEL = 7
# Z_FILTERED costs up to 1.5x the CPU; it is taken where it saves at least this much.
FILTERED_MIN_SAVING = 0.06


def sized_member(member: bytes) -> bytes:
    """Add the length field to a member as zlib writes it (10-byte header, no flags)."""
    if member[:3] != b"\x1f\x8b\x08" or member[3] != 0:
        raise ValueError("not a plain gzip member")
    total = len(member) + 2 + _FIELD
    extra = _FIELD.to_bytes(2, "little") + _SUBFIELD + (4).to_bytes(2, "little")
    return (
        member[:3]
        + bytes([_FLAG_EXTRA])
        + member[4:10]
        + extra
        + total.to_bytes(4, "little")
        + member[10:]
    )


@dataclass(frozen=True)
class DeflatedBlock:
    """A block as raw deflate that ends on a byte boundary (a sync flush), not final."""

    raw: bytes
    crc: int  # CRC-32 of the block's plain bytes
    size: int  # its plain length


def joined_member(blocks: Sequence[DeflatedBlock], level: int) -> bytes:
    """One sized gzip member from consecutive blocks, each deflated with the history of
    the ones before it; the member's CRC-32 is combined from the blocks' own."""
    crc = size = 0
    for block in blocks:
        crc = zlib_ng.crc32_combine(crc, block.crc, block.size)
        size += block.size
    if size > MAX_MEMBER_PLAIN:
        raise ValueError(f"a member holds at most {MAX_MEMBER_PLAIN} bytes, not {size}")
    total = HEADER_SIZE + sum(len(block.raw) for block in blocks) + len(_LAST_EMPTY_BLOCK) + 8
    extra_flags = 2 if level == 9 else 0  # as zlib marks its maximum compression
    header = (
        b"\x1f\x8b\x08"
        + bytes([_FLAG_EXTRA])
        + bytes(4)  # no modification time
        + bytes([extra_flags, _OS_UNIX])
        + _FIELD.to_bytes(2, "little")
        + _SUBFIELD
        + (4).to_bytes(2, "little")
        + total.to_bytes(4, "little")
    )
    trailer = crc.to_bytes(4, "little") + size.to_bytes(4, "little")
    return b"".join([header, *(block.raw for block in blocks), _LAST_EMPTY_BLOCK, trailer])


def compress_member(data: bytes | memoryview, level: int) -> bytes:
    """From level 6 up zlib-ng deflates 1.8-3x as fast as zlib (level 9: an RDB at 15.1
    against 8.7 MB/s). Its lower levels trade size for speed, so zlib keeps those."""
    if level < 6:
        return sized_member(zlib.compress(data, level, GZIP_WBITS))
    plan = deflate_plan(data, level)
    deflater = zlib_ng.compressobj(
        plan.level, zlib.DEFLATED, GZIP_WBITS, DEFAULT_MEM_LEVEL, plan.strategy
    )
    return sized_member(deflater.compress(data) + deflater.flush())


@dataclass(frozen=True)
class DeflatePlan:
    """How a member's blocks are deflated: zlib-ng's level and strategy."""

    level: int
    strategy: int = zlib.Z_DEFAULT_STRATEGY


def deflate_plan(data: bytes | memoryview, level: int) -> DeflatePlan:
    """From FILTERED_FROM_LEVEL up, deflated PLAN_SAMPLE bytes from the middle of `data`
    decide: Z_FILTERED where it comes out at least FILTERED_MIN_SAVING smaller; else
    SHORT_SEARCH_LEVEL where it comes out smaller than at `level` (see the module's
    opening comment); else `level` as it is."""
    if level < FILTERED_FROM_LEVEL:
        return DeflatePlan(level)
    middle = max(0, len(data) // 2 - PLAN_SAMPLE // 2)
    sample = data[middle : middle + PLAN_SAMPLE]

    def deflated_size(at_level: int, strategy: int = zlib.Z_DEFAULT_STRATEGY) -> int:
        deflater = zlib_ng.compressobj(at_level, zlib.DEFLATED, -15, DEFAULT_MEM_LEVEL, strategy)
        return len(deflater.compress(sample)) + len(deflater.flush())

    default = deflated_size(level)
    if deflated_size(level, zlib.Z_FILTERED) <= default * (1 - FILTERED_MIN_SAVING):
        return DeflatePlan(level, zlib.Z_FILTERED)
    if level > SHORT_SEARCH_LEVEL and deflated_size(SHORT_SEARCH_LEVEL) < default:
        return DeflatePlan(SHORT_SEARCH_LEVEL)
    return DeflatePlan(level)


def member_length(header: bytes) -> int | None:
    """The length a member's header declares, or None for a member without the field."""
    if len(header) < HEADER_SIZE or header[:3] != b"\x1f\x8b\x08":
        return None
    if header[3] != _FLAG_EXTRA or header[10:12] != _FIELD.to_bytes(2, "little"):
        return None
    if header[12:14] != _SUBFIELD or header[14:16] != (4).to_bytes(2, "little"):
        return None
    return int.from_bytes(header[16:20], "little")


def inflate_member(member: bytes) -> list[bytes]:
    """Inflate exactly one whole member, in pieces of at most INFLATE_PIECE bytes (no
    member-sized join: a reader holds several members); zlib checks its CRC and size."""
    decoder = zlib_ng.decompressobj(GZIP_WBITS)
    pieces = []
    total = 0
    pending = member
    while not decoder.eof:
        # Output held back at the limit comes out of the next call, even without input.
        piece = decoder.decompress(pending, INFLATE_PIECE)
        pending = decoder.unconsumed_tail
        if not piece and not pending:
            break  # the input ran out before the member's end
        total += len(piece)
        if total > MAX_MEMBER_PLAIN:
            raise zlib_ng.error(f"gzip member inflates to more than {MAX_MEMBER_PLAIN} bytes")
        pieces.append(piece)
    if not decoder.eof:
        raise EOFError("gzip member ended early")
    if decoder.unused_data:
        raise zlib_ng.error("gzip member is longer than its length field says")
    return pieces


class ParallelMemberReader:
    """Read a stream of sized members, inflating up to `threads + 1` ahead, in order."""

    def __init__(self, raw: BinaryIO, first_header: bytes, threads: int):
        self._raw = raw
        self._pending_header = first_header
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="gunzip")
        self._in_flight: deque[Future[list[bytes]]] = deque()
        self._ahead = threads + 1
        self._pieces: deque[bytes] = deque()  # the rest of the member being read
        self._output = memoryview(b"")
        self._ended = False

    def readinto(self, buffer) -> int:
        while not self._output:
            if self._pieces:
                self._output = memoryview(self._pieces.popleft())
                continue
            self._fill()
            if not self._in_flight:
                return 0
            self._pieces.extend(self._in_flight.popleft().result())  # none for an empty member
        count = min(len(buffer), len(self._output))
        buffer[:count] = self._output[:count]
        self._output = self._output[count:]
        return count

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _fill(self) -> None:
        while not self._ended and len(self._in_flight) < self._ahead:
            member = self._next_member()
            if member is None:
                self._ended = True
                break
            self._in_flight.append(self._executor.submit(inflate_member, member))

    def _next_member(self) -> bytes | None:
        header = self._pending_header or read_up_to(self._raw, HEADER_SIZE)
        self._pending_header = b""
        if not header:
            return None
        if len(header) < HEADER_SIZE:
            raise EOFError("gzip stream ended inside a member header")
        length = member_length(header)
        if length is None or length < HEADER_SIZE + 8:
            raise zlib_ng.error("gzip member without its length field")
        member = header + read_up_to(self._raw, length - HEADER_SIZE)
        if len(member) < length:
            raise EOFError("gzip stream ended inside a member")
        return member


def open_members(
    raw: BinaryIO, threads: int, sequential: Callable[[BinaryIO], BinaryIO]
) -> ParallelMemberReader | BinaryIO:
    """A parallel reader when the stream's first member is sized, else `sequential(raw)`."""
    header = read_up_to(raw, HEADER_SIZE)
    if member_length(header) is not None:
        return ParallelMemberReader(raw, header, threads)
    return sequential(_Replayed(header, raw))


class _Replayed:
    """`raw` with bytes already read from it put back in front."""

    def __init__(self, head: bytes, raw: BinaryIO):
        self._head = head
        self._raw = raw

    def read(self, size: int = -1) -> bytes:
        if not self._head:
            return self._raw.read(size)
        if size < 0:
            data, self._head = self._head + self._raw.read(), b""
            return data
        data, self._head = self._head[:size], self._head[size:]
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)
