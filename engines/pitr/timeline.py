"""`pitr timeline`: per cluster (system id) and timeline, the moments a point-in-time
restore can reach. A range of the window starts where a base backup ended (its WAL from
its start segment to its stop segment archived) and runs to the last segment archived
without a gap after it; the base backups ending inside one unbroken run share its end.
Gaps (missing segments) are listed: nothing after one is reachable from a backup before it.

The continuity rule is the restore's (restore_chain.check_chain: every segment from the
base backup's start on), so a range shown here is one `restore postgres --pitr` accepts.
WAL is not in the catalog: the repository's listing is the truth, and a segment's time is
when it was stored (wal-push writes it once).

A timeline after a promotion (its .history file archived) is shown along its path: its
ancestors' WAL up to each switch point, then its own, so a timeline with WAL but no base
backup of its own is reachable from an ancestor's base backup taken before the switch.
"""

from dataclasses import dataclass, field

from engines.catalog import Catalog
from engines.destinations import Destination
from engines.errors import JarvisError
from engines.pipeline.crypto import Keyring
from engines.pitr.restore_chain import archived_listing, segment_name, segment_size
from engines.pitr.restore_target import lsn_value
from engines.pitr.timeline_history import (
    Switch,
    TimelinePath,
    archived_history_timelines,
    timeline_path,
)
from engines.pitr.wal_files import segment_number

SOURCE = "postgres"
NO_BASE = (
    "no PostgreSQL base backup yet, so no moment to restore to "
    "(`jarvis-tui backup postgres --mode base` takes one)"
)


@dataclass(frozen=True)
class BaseBackup:
    set_id: str
    start_lsn: str
    stop_lsn: str
    stop_time: str
    timeline: int = 1


@dataclass(frozen=True)
class WindowRange:
    """From `earliest_*` (the oldest base backup's end) to the end of `latest_segment`."""

    earliest_lsn: str
    earliest_time: str
    latest_lsn: str
    latest_segment: str
    latest_archived_at: str
    base_backups: list[str]


@dataclass(frozen=True)
class Gap:
    first: str
    last: str
    count: int

    @property
    def span(self) -> str:
        """The missing segment, or the first and last of them."""
        return self.first if self.count == 1 else f"{self.first} .. {self.last}"


@dataclass(frozen=True)
class TimelineWindow:
    system_id: str
    timeline: int
    ranges: list[WindowRange] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    # Base backups whose own WAL (start to stop segment) is not all archived.
    unusable: list[str] = field(default_factory=list)
    note: str = ""
    # Ancestors and where each was left (oldest first): the window runs through them.
    switches: list[Switch] = field(default_factory=list)


@dataclass(frozen=True)
class TimelineReport:
    windows: list[TimelineWindow]
    note: str = ""


def format_lsn(value: int) -> str:
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


def base_backups(catalog: Catalog) -> dict[tuple[str, int], list[BaseBackup]]:
    """Every complete base backup, by (system id, timeline), oldest first."""
    found: dict[tuple[str, int], list[BaseBackup]] = {}
    for backup_set in reversed(catalog.list_backup_sets(kind=SOURCE)):
        if backup_set.status != "complete":
            continue
        for artifact in catalog.artifacts_of(backup_set.id):
            meta = artifact.metadata
            if artifact.mode != "base" or not meta.get("stop_lsn"):
                continue
            key = (str(meta["system_identifier"]), int(meta["timeline"]))
            found.setdefault(key, []).append(
                BaseBackup(backup_set.id, meta["start_lsn"], meta["stop_lsn"],
                           str(meta.get("stop_time", "")), key[1])
            )  # fmt: skip
    return found


def recoverable_timeline(
    catalog: Catalog, repository: Destination, keyring: Keyring, repository_id: str
) -> TimelineReport:
    groups = base_backups(catalog)
    if not groups:
        return TimelineReport([], NO_BASE)
    windows = []
    for system_id in sorted({system_id for system_id, _ in groups}):
        bases = [b for (s, _), found in groups.items() if s == system_id for b in found]
        timelines = {timeline for s, timeline in groups if s == system_id}
        timelines |= archived_history_timelines(repository, int(system_id))
        windows += [
            _window(repository, keyring, repository_id, system_id, timeline, bases)
            for timeline in sorted(timelines)
        ]
    return TimelineReport(windows)


def _window(
    repository: Destination,
    keyring: Keyring,
    repository_id: str,
    system_id: str,
    timeline: int,
    every_base: list[BaseBackup],
) -> TimelineWindow:
    """Timeline `timeline`'s window along its path: its ancestors' WAL up to each switch
    (the base backups of the path serve it), then its own."""
    try:
        path = timeline_path(repository, keyring, repository_id, int(system_id), timeline)
    except JarvisError as error:
        return TimelineWindow(system_id, timeline, note=str(error))
    switches = list(path.switches)
    bases = [b for b in every_base if path.holds(b.timeline, b.stop_lsn)]
    listings = {
        line: archived_listing(repository, int(system_id), line) for line in path.timelines()
    }
    if not any(listings.values()):
        return TimelineWindow(
            system_id, timeline, unusable=[b.set_id for b in bases],
            note=f"the archive holds no WAL of this cluster on timeline {timeline} "
            "(`jarvis-tui pitr setup` and `pitr check` set archiving up)",
        )  # fmt: skip
    first = min(name for listing in listings.values() for name in listing)
    size = segment_size(repository, keyring, repository_id, int(system_id), first)
    by_number, stored_at = {}, {}
    for line, listing in listings.items():
        for name, moment in listing.items():
            number = segment_number(name, size)
            if path.timeline_at(number, size) == line:
                by_number[number], stored_at[name] = name, moment
    archived = set(by_number)
    if not archived:
        return TimelineWindow(system_id, timeline, unusable=[b.set_id for b in bases],
                              note=f"no WAL archived along {path.describe()}",
                              switches=switches)  # fmt: skip
    newest = max(archived)
    runs: dict[int, list[BaseBackup]] = {}  # last segment of an unbroken run -> its bases
    unusable = []
    for base in sorted(bases, key=lambda b: lsn_value(b.start_lsn)):
        start = lsn_value(base.start_lsn) // size
        stop = lsn_value(base.stop_lsn) // size
        if first_missing(archived, start, stop) is not None:
            unusable.append(base.set_id)
            continue
        missing = first_missing(archived, stop, newest)
        runs.setdefault(newest if missing is None else missing - 1, []).append(base)
    ranges = [
        _range(bases_of_run, by_number[end], (end + 1) * size, stored_at)
        for end, bases_of_run in sorted(runs.items())
    ]
    gaps = _gaps(archived, path, size)
    return TimelineWindow(system_id, timeline, ranges, gaps, unusable, switches=switches)


def _range(bases: list[BaseBackup], last: str, end: int, listing: dict) -> WindowRange:
    oldest = min(bases, key=lambda b: lsn_value(b.stop_lsn))
    return WindowRange(
        oldest.stop_lsn, oldest.stop_time, format_lsn(end), last,
        listing[last].isoformat(timespec="seconds"), [b.set_id for b in bases],
    )  # fmt: skip


def _gaps(archived: set[int], path: TimelinePath, size: int) -> list[Gap]:
    """Missing segments, each named as recovery along the path would ask for it."""
    gaps = []
    number, newest = min(archived), max(archived)
    while (missing := first_missing(archived, number, newest)) is not None:
        number = missing
        while number not in archived:
            number += 1
        first, last = (
            segment_name(path.timeline_at(n, size), n, size) for n in (missing, number - 1)
        )
        gaps.append(Gap(first, last, number - missing))
    return gaps


def first_missing(archived: set[int], start: int, end: int) -> int | None:
    """The first segment number from start to end (inclusive) not archived, or None."""
    return next((number for number in range(start, end + 1) if number not in archived), None)
