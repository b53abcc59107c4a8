"""Which archived WAL retention removes: per cluster (system id), every segment before the
start segment of the oldest base backup kept of that cluster, on every timeline, from the
repository and every copy destination. A cluster with no base backup kept keeps all its
WAL (a deletion cannot be undone; the operator decides). `.history` files are kept: they
are tiny and recovery follows timelines through them.

A segment's position, never the key it was sealed under, decides: WAL sealed under a
previous key stays as long as a kept base backup needs it (wal-fetch reads it with
BACKUP_ENCRYPTION_KEY_PREVIOUS).
"""

from collections.abc import Iterable
from dataclasses import dataclass, field

from engines.destinations import Destination
from engines.errors import JarvisError
from engines.pipeline.crypto import Keyring
from engines.pitr.archive_layout import WAL_FOLDER
from engines.pitr.restore_chain import segment_name, segment_size
from engines.pitr.restore_target import lsn_value
from engines.pitr.wal_files import WalNameError, parse_name, segment_number

SEGMENT_NAME_LENGTH = 24


@dataclass
class ClusterWal:
    """One cluster's archived WAL and what retention does with it."""

    system_id: int
    oldest_kept: str | None  # the first segment the oldest kept base backup needs
    # timeline (8 hex) -> keys of the repository to remove
    doomed: dict[str, list[str]] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return sum(len(keys) for keys in self.doomed.values())

    def describe(self, dry_run: bool = False) -> str:
        if self.oldest_kept is None:
            return (
                f"WAL of cluster {self.system_id}: no base backup of it is kept, all its WAL "
                "is kept (delete it by hand if the cluster is gone)"
            )
        counts = ", ".join(
            f"{len(keys)} on timeline {int(tl, 16)}" for tl, keys in sorted(self.doomed.items())
        )
        return (
            f"WAL of cluster {self.system_id}: {self.count} file(s) before {self.oldest_kept} "
            f"{'would go' if dry_run else 'removed'} ({counts or 'none'}); the oldest kept "
            f"base backup starts at {self.oldest_kept}"
        )


def _stem(key: str) -> str:
    return key.rsplit("/", 1)[-1].split(".enc", 1)[0].rsplit(".", 1)[0]


def _archived(repository: Destination, system_id: int) -> dict[str, list[tuple[str, str]]]:
    """timeline -> (file name, key) of every segment, .partial and .backup file."""
    found: dict[str, list[tuple[str, str]]] = {}
    for stored in repository.list(f"{WAL_FOLDER}/{system_id}/"):
        parts = stored.key.split("/")
        if len(parts) != 4:
            continue  # .history files sit directly under the cluster's folder
        try:
            name = parse_name(_stem(stored.key))
        except WalNameError:
            continue  # not ours: never deleted
        if name.kind != "history":
            found.setdefault(name.timeline, []).append((name.name, stored.key))
    return found


def _clusters(repository: Destination) -> list[int]:
    clusters = []
    for stored in repository.list(f"{WAL_FOLDER}/"):
        part = stored.key.split("/")[1]
        if part.isdigit() and int(part) not in clusters:
            clusters.append(int(part))
    return clusters


def plan_wal_retention(
    repository: Destination, keyring: Keyring, kept_bases: Iterable[dict]
) -> list[ClusterWal]:
    """What goes of each archived cluster's WAL, given the metadata of every base backup
    kept (any timeline)."""
    repository_id = repository.repository_id() or ""
    starts: dict[int, tuple[int, int]] = {}  # system id -> (start LSN, timeline)
    for base in kept_bases:
        system_id = int(base["system_identifier"])
        start = (lsn_value(base["start_lsn"]), int(base["timeline"]))
        starts[system_id] = min(start, starts.get(system_id, start))
    plans = []
    for system_id in _clusters(repository):
        archived = _archived(repository, system_id)
        if system_id not in starts:
            plans.append(ClusterWal(system_id, None))
            continue
        segments = sorted(
            name for files in archived.values() for name, _ in files
            if len(name) == SEGMENT_NAME_LENGTH
        )  # fmt: skip
        if not segments:
            plans.append(ClusterWal(system_id, "(no segment archived)"))
            continue
        size = segment_size(repository, keyring, repository_id, system_id, segments[0])
        lsn, timeline = starts[system_id]
        first = lsn // size
        plan = ClusterWal(system_id, segment_name(timeline, first, size))
        for timeline, files in archived.items():
            doomed = [key for name, key in files if segment_number(name, size) < first]
            if doomed:
                plan.doomed[timeline] = sorted(doomed)
        plans.append(plan)
    return plans


def remove_wal(plans: list[ClusterWal], destinations: Iterable[Destination]) -> list[str]:
    """Delete each plan's keys on every destination given (a key already gone is fine).
    Problems as lines; a destination that fails keeps the rest of its WAL for next time."""
    problems = []
    doomed = [key for plan in plans for keys in plan.doomed.values() for key in keys]
    for destination in destinations:
        for key in doomed:
            try:
                if destination.stat(key) is not None:
                    destination.delete(key)
            except (JarvisError, OSError) as error:
                problems.append(f"WAL {key} on {destination.name}: not deleted ({error})")
                break
    return problems
