"""Timelines: a promoted recovery starts timeline N+1, whose `.history` file (archived by
wal-push under wal/<system id>/) names every ancestor and the WAL position where it was
left. Timeline 2's WAL is timeline 1's up to that switch point, then its own.

Which copy of a segment recovery reads: the newest timeline of the path that had begun by
that segment. The segment holding a switch point is archived under both names (the
parent's, written on; the child's, which starts with the parent's WAL up to the switch),
and PostgreSQL fetches the child's: so does every check here.

A base backup serves a timeline whose path holds it: taken on a timeline of the path and
ended before that timeline was left (one taken later holds WAL of another branch).
"""

from dataclasses import dataclass
from itertools import pairwise

from engines.destinations import Destination
from engines.errors import IntegrityError, JarvisError
from engines.pipeline.crypto import Keyring
from engines.pitr.archive_layout import WAL_FOLDER, candidate_keys, wal_identity
from engines.pitr.archive_store import find_key, read_whole
from engines.pitr.restore_target import lsn_value
from engines.pitr.wal_files import parse_name


class HistoryMissingError(IntegrityError):
    """A timeline's .history file is not in the archive (or not readable)."""


@dataclass(frozen=True)
class Switch:
    timeline: int  # the ancestor
    lsn: str  # where it was left: its child begins here


@dataclass(frozen=True)
class TimelinePath:
    timeline: int
    switches: tuple[Switch, ...] = ()  # oldest ancestor first

    def timelines(self) -> list[int]:
        return [switch.timeline for switch in self.switches] + [self.timeline]

    def begins(self) -> dict[int, int]:
        """Each timeline of the path and the WAL position where it begins."""
        timelines = self.timelines()
        starts = {timelines[0]: 0}
        for switch, child in zip(self.switches, timelines[1:], strict=True):
            starts[child] = lsn_value(switch.lsn)
        return starts

    def left_at(self, timeline: int) -> int | None:
        """Where the path leaves `timeline` (None: the path's own timeline, never left)."""
        for switch in self.switches:
            if switch.timeline == timeline:
                return lsn_value(switch.lsn)
        return None

    def holds(self, timeline: int, stop_lsn: str) -> bool:
        """Whether a base backup of `timeline` that ended at `stop_lsn` lies on this path."""
        if timeline not in self.timelines():
            return False
        left = self.left_at(timeline)
        return left is None or lsn_value(stop_lsn) <= left

    def holds_base(self, base: dict) -> bool:
        """`holds` for a base backup's catalog metadata."""
        return self.holds(int(base["timeline"]), str(base["stop_lsn"]))

    def timeline_at(self, number: int, segment_size: int) -> int:
        """The timeline whose copy of segment `number` recovery reads."""
        chosen = self.timelines()[0]
        for timeline, begin in self.begins().items():
            if begin // segment_size <= number:
                chosen = timeline
        return chosen

    def describe(self) -> str:
        steps = [f"timeline {s.timeline} up to {s.lsn}" for s in self.switches]
        return ", then ".join([*steps, f"timeline {self.timeline}"])


def parse_history(text: str) -> tuple[Switch, ...]:
    """`<parent tli>\\t<switch LSN>\\t<reason>` lines (comments and blanks skipped)."""
    switches = []
    for line in text.splitlines():
        words = line.strip().split()
        if len(words) >= 2 and not words[0].startswith("#") and words[0].isdigit():
            try:
                lsn_value(words[1])
            except JarvisError:  # its line speaks of a target: the caller names the file
                raise ValueError(repr(words[1])) from None
            switches.append(Switch(int(words[0]), words[1].upper()))
    return tuple(switches)


def history_name(timeline: int) -> str:
    return f"{timeline:08X}.history"


def archived_history_timelines(repository: Destination, system_id: int) -> set[int]:
    """The timelines whose .history file is archived for this cluster."""
    found = set()
    for stored in repository.list(f"{WAL_FOLDER}/{system_id}/"):
        name = stored.key.rsplit("/", 1)[-1]
        stem = ".".join(name.split(".")[:2])
        if stem.endswith(".history") and len(stem) == 16:
            found.add(int(stem[:8], 16))
    return found


def timeline_path(
    repository: Destination, keyring: Keyring, repository_id: str, system_id: int, timeline: int
) -> TimelinePath:
    """Timeline `timeline`'s ancestry, from its archived .history file (timeline 1 has none)."""
    if timeline == 1:
        return TimelinePath(1)
    name = parse_name(history_name(timeline))
    key = find_key(repository, candidate_keys(system_id, name))
    where = f"{WAL_FOLDER}/{system_id}"
    if key is None:
        raise HistoryMissingError(
            f"timeline {timeline}'s history file {name.name} is not in the archive ({where}); "
            "nothing was changed. Restore to a timeline whose history is archived "
            "(`jarvis-tui pitr timeline` lists them)"
        )
    fetched = read_whole(repository, key, keyring, wal_identity(repository_id, system_id, name))
    try:
        switches = parse_history(fetched.data.decode("utf-8", errors="replace"))
    except ValueError as error:
        raise HistoryMissingError(
            f"{key}: {error} is not a WAL position; the file is damaged. Restore along "
            "another --target-timeline (`jarvis-tui pitr timeline` lists them)"
        ) from None
    if not switches:
        raise HistoryMissingError(f"{key}: names no parent timeline; the file is damaged")
    ancestors = [switch.timeline for switch in switches] + [timeline]
    if any(older >= newer for older, newer in pairwise(ancestors)):
        # PostgreSQL refuses such a file too, but only once the folder is laid out
        raise HistoryMissingError(
            f"{key}: names timelines {', '.join(map(str, ancestors[:-1]))} as timeline "
            f"{timeline}'s ancestors, not each older than the next; the file is damaged. "
            "Restore along another --target-timeline (`jarvis-tui pitr timeline` lists them)"
        )
    return TimelinePath(timeline, switches)
