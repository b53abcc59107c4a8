"""What PostgreSQL hands `archive_command`: WAL segments, `.partial` segments, timeline
`.history` files and `.backup` labels, told apart by name; and what a segment says
of itself in its first page's long header (which cluster wrote it, where it belongs).

A segment is checked against its own header before it is stored and after it is
fetched: another cluster's segment (another system identifier) or a file renamed to
another segment's name (its page address belongs elsewhere) is refused.
"""

import re
import struct
from dataclasses import dataclass
from pathlib import Path

from engines.errors import IntegrityError, JarvisError

_SEGMENT = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$")
_PARTIAL = re.compile(r"^([0-9A-F]{8})[0-9A-F]{16}\.partial$")
_HISTORY = re.compile(r"^([0-9A-F]{8})\.history$")
_BACKUP = re.compile(r"^([0-9A-F]{8})[0-9A-F]{16}\.[0-9A-F]{8}\.backup$")

# XLogLongPageHeaderData: magic, info, tli, pageaddr, rem_len, (pad), sysid, seg_size, blcksz.
_LONG_HEADER = struct.Struct("<HHIQI4xQII")
XLP_LONG_HEADER = 0x0002
MIN_SEGMENT_SIZE = 1 << 20
MAX_SEGMENT_SIZE = 1 << 30


class WalNameError(JarvisError):
    """Not a name PostgreSQL archives."""


@dataclass(frozen=True)
class WalName:
    name: str
    kind: str  # segment, partial, history, backup
    timeline: str  # 8 upper hex digits

    @property
    def is_segment(self) -> bool:
        return self.kind in ("segment", "partial")


def parse_name(name: str) -> WalName:
    for kind, pattern in (
        ("segment", _SEGMENT),
        ("partial", _PARTIAL),
        ("history", _HISTORY),
        ("backup", _BACKUP),
    ):
        found = pattern.match(name)
        if found:
            return WalName(name, kind, found.group(1))
    raise WalNameError(
        f"{name!r} is not a WAL file name (a segment such as 000000010000000000000001, or a "
        ".partial, .history or .backup file); give PostgreSQL's %p (wal-push) or %f (wal-fetch)"
    )


def segment_number(name: str, segment_size: int) -> int:
    """The segment's number counted from the start of WAL (the name's log and seg parts)."""
    found = _SEGMENT.match(name[:24])
    assert found is not None
    per_log = 0x100000000 // segment_size
    return int(found.group(2), 16) * per_log + int(found.group(3), 16)


@dataclass(frozen=True)
class SegmentHeader:
    magic: int  # XLOG_PAGE_MAGIC: one value per major version
    timeline: int
    page_address: int
    system_id: int
    segment_size: int


def read_header(data: bytes, where: str) -> SegmentHeader:
    """The first page's long header; IntegrityError naming `where` if there is none."""
    if len(data) < _LONG_HEADER.size:
        raise IntegrityError(f"{where}: too short to be a WAL segment ({len(data)} bytes)")
    magic, info, tli, pageaddr, _, sysid, seg_size, _ = _LONG_HEADER.unpack_from(data)
    valid_size = MIN_SEGMENT_SIZE <= seg_size <= MAX_SEGMENT_SIZE and seg_size & (seg_size - 1) == 0
    if not 0xD000 <= magic <= 0xD1FF or not info & XLP_LONG_HEADER or not valid_size:
        raise IntegrityError(
            f"{where}: not a WAL segment (its first page has no valid long header)"
        )
    return SegmentHeader(magic, tli, pageaddr, sysid, seg_size)


def check_segment(data: bytes, name: WalName, where: str) -> SegmentHeader:
    """The segment's header, after checking it is whole and is the segment `name` says."""
    header = read_header(data, where)
    if len(data) != header.segment_size:
        raise IntegrityError(
            f"{where}: {len(data)} bytes, but its header says segments are "
            f"{header.segment_size} bytes (cut short or padded)"
        )
    expected = segment_number(name.name, header.segment_size) * header.segment_size
    if header.page_address != expected:
        raise IntegrityError(
            f"{where}: its first page belongs at WAL position {header.page_address:X}, not at "
            f"{expected:X} where {name.name[:24]} starts: a segment renamed or swapped"
        )
    if header.timeline > int(name.timeline, 16):
        raise IntegrityError(
            f"{where}: written on timeline {header.timeline}, after the name's timeline "
            f"{int(name.timeline, 16)}: a segment renamed or swapped"
        )
    return header


def control_file_system_id(pgdata: Path) -> int | None:
    """The system identifier at the start of `pgdata`'s global/pg_control, if readable
    (archive_command and restore_command run in the data folder)."""
    try:
        with open(pgdata / "global" / "pg_control", "rb") as control:
            raw = control.read(8)
    except OSError:
        return None
    return struct.unpack("<Q", raw)[0] if len(raw) == 8 else None
