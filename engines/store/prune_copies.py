"""Prune on every copy destination: after the repository's prune, each copy drops the
files store's data that no snapshot stored *there* references.

Nothing is taken on the repository's word. On each destination its snapshot
manifests are read and authenticated with the key, its live index (the newest
generation, authenticated) says which pack holds each chunk they reference, and
every pack it names stays; a chunk the live index does not place (a snapshot there
whose set's deletion waits) keeps every pack whose authenticated trailer holds it,
and every index file. Deleted there, and only if the repository no longer holds
them (a copy would otherwise just send them again): index files of an older
generation (a prune's new index replaced them), then unreferenced packs, the
reverse of the copy order. A snapshot goes with its set (cleanup deletes sets
before it prunes).

The repository's new packs and index are copied first, so what the local prune
replaced is replaced there too. A snapshot there that cannot be read stops the
prune on that destination before anything is deleted. Each S3 prefix is pruned
under its lock.
"""

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

from engines.destinations import Destination, copy_destinations
from engines.destinations.deletion_locks import DeletionLocks, locked_for_deleting
from engines.errors import IntegrityError, JarvisError, KeyNotAvailableError
from engines.jobs import JobContext
from engines.pipeline.crypto import Keyring
from engines.repository.copies import alert_copy_outcomes, copy_to_destinations
from engines.store.index import load_index
from engines.store.layout import (
    INDEX_PREFIX,
    INDEX_SUFFIX,
    PACK_SUFFIX,
    PACKS_PREFIX,
    SOURCE,
    is_snapshot_key,
    pack_key,
)
from engines.store.pack_reader import read_trailer
from engines.store.prune import rewriting_store
from engines.store.snapshots import load_stored_manifest
from engines.workspace import Workspace


@dataclass
class CopyPruneReport:
    destination: str
    dry_run: bool
    snapshots: int = 0
    index_files: list[str] = field(default_factory=list)
    packs: list[str] = field(default_factory=list)
    bytes_freed: int = 0
    error: str | None = None  # why nothing (more) was deleted there
    sizes: dict[str, int] = field(default_factory=dict, repr=False)  # of what is planned

    @property
    def ok(self) -> bool:
        return self.error is None

    def __str__(self) -> str:
        if self.error is not None:
            return f"{self.destination}: not pruned: {self.error}"
        verb = "would delete" if self.dry_run else "deleted"
        return (
            f"{self.destination}: {self.snapshots} snapshot(s) there; {verb} "
            f"{len(self.index_files)} index file(s) and {len(self.packs)} pack(s), "
            f"{self.bytes_freed} bytes"
        )


@dataclass(frozen=True)
class Foreseen:
    """For a dry run: what the repository's prune would replace (its `replaced` keys) and
    the chunks its snapshots reference, which its new index would place."""

    replaced: set[str]
    referenced: set[bytes]


def plan_copy_prune(
    repository: Destination,
    destination: Destination,
    keyring: Keyring,
    context: JobContext,
    foreseen: Foreseen | None = None,
) -> CopyPruneReport:
    """What pruning `destination` deletes (nothing is deleted here). With `foreseen` (a
    dry run, the repository not pruned yet) as if its prune and the copy of its new
    index had happened: that index then supersedes every index file there, and places
    each chunk the repository's snapshots reference in a pack it keeps or writes."""
    report = CopyPruneReport(destination.name, dry_run=True)
    there = {item.key: item.size for item in destination.list(f"{SOURCE}/")}
    here = {item.key for item in repository.list(f"{SOURCE}/")}
    if foreseen is not None:
        here -= foreseen.replaced
    snapshots = sorted(key for key in there if is_snapshot_key(key))
    referenced: set[bytes] = set()
    for key in snapshots:
        context.raise_if_cancelled()
        try:
            manifest = load_stored_manifest(destination, key, keyring)
        except (IntegrityError, KeyNotAvailableError) as error:
            raise IntegrityError(
                f"cannot read snapshot {key} on {destination.name} ({error}); pruning there "
                "needs every snapshot to know which data is still used, so nothing was deleted "
                "there"
            ) from None
        for entry in manifest.entries:
            referenced.update(entry.chunk_ids())
    report.snapshots = len(snapshots)
    index = load_index(destination, keyring, every_key=True)
    # Which pack holds each chunk there; None: one the repository's prune writes.
    placed: dict[bytes, str | None] = {
        chunk: pack_key(location.pack) for chunk, location in index.locations.items()
    }
    live_index = set(index.keys)
    if foreseen is not None:
        placed = {
            chunk: pack if pack in here else None
            for chunk, pack in placed.items()
            if pack in here or chunk in foreseen.referenced
        }
        live_index = set()
    # Every pack the live index names stays (the index there stays whole), so the packs
    # to consider are the others the repository no longer holds.
    needed: set[str] = {pack for pack in placed.values() if pack is not None}
    gone_here = sorted(key for key in there if key not in here)
    candidates = [key for key in gone_here if _is_pack(key) and key not in needed]
    unplaced = referenced - placed.keys()
    if unplaced:
        # Snapshots there that its live index does not cover (a set whose deletion there
        # waits): each pack prune would delete says in its authenticated trailer what it
        # holds; one holding any of their chunks stays, and so does every index file.
        context.log(
            f"{destination.name}: {len(unplaced)} chunk(s) its snapshots reference are not "
            f"in its live index; reading the trailers of {len(candidates)} pack(s)",
            level="warning",
        )
        for key in candidates:
            context.raise_if_cancelled()
            held = {chunk for chunk, _ in read_trailer(destination, key, keyring)} & unplaced
            if held:
                needed.add(key)
    for key in gone_here:
        if _is_index_file(key) and key not in live_index and not unplaced:
            report.index_files.append(key)
        elif key in candidates and key not in needed:
            report.packs.append(key)
        else:
            continue
        report.sizes[key] = there[key]
        report.bytes_freed += there[key]
    return report


def prune_copy(
    workspace: Workspace,
    destination: Destination,
    locks: DeletionLocks,
    context: JobContext,
    *,
    dry_run: bool,
    foreseen: Foreseen | None = None,
) -> CopyPruneReport:
    """Plan, then (unless `dry_run`) delete; a failure midway is the report's error, its
    lists then holding what was deleted before it."""
    try:
        report = plan_copy_prune(
            workspace.repository, destination, workspace.keyring(), context, foreseen
        )
    except (JarvisError, OSError) as error:
        return CopyPruneReport(destination.name, dry_run, error=str(error) or type(error).__name__)
    report.dry_run = dry_run
    if dry_run:
        for key in report.index_files + report.packs:
            context.log(f"{destination.name}: would delete {key}", level="debug")
        return report
    planned = [*report.index_files, *report.packs]
    report.index_files, report.packs, report.bytes_freed = [], [], 0
    for key in planned:  # index files first: they name packs
        context.raise_if_cancelled()
        try:
            locks.ensure_held(destination)
            destination.delete(key)
        except (JarvisError, OSError) as error:
            report.error = f"stopped at {key}: {error}"
            break
        (report.packs if _is_pack(key) else report.index_files).append(key)
        report.bytes_freed += report.sizes[key]
    return report


def prune_copies(
    workspace: Workspace,
    context: JobContext,
    *,
    dry_run: bool = False,
    foreseen: Foreseen | None = None,
) -> list[CopyPruneReport]:
    """Prune every copy destination, after the repository's own prune: under the
    repository lock, refused (JarvisError) while a job may be reading packs. A dry run
    given what the repository's dry run `foreseen` says what the two would delete."""
    destinations = copy_destinations(workspace.settings)
    if not destinations:
        return []
    reports = []
    with (
        rewriting_store(workspace, context, "prune copies", dry_run=dry_run),
        _locks(destinations, dry_run) as locks,
    ):
        if not dry_run:
            outcomes = copy_to_destinations(workspace, context, locks.destinations)
            alert_copy_outcomes(workspace, outcomes)
        for line in locks.took_over():
            context.log(line, level="warning")
        for destination in destinations:
            if destination.name in locks.unavailable:
                report = CopyPruneReport(
                    destination.name, dry_run, error=locks.unavailable[destination.name]
                )
            else:
                report = prune_copy(
                    workspace, destination, locks, context, dry_run=dry_run, foreseen=foreseen
                )
            context.log(f"prune: {report}", level="info" if report.ok else "error")
            reports.append(report)
    return reports


def _locks(destinations: list[Destination], dry_run: bool) -> AbstractContextManager[DeletionLocks]:
    """A dry run deletes nothing and so writes no lock object either."""
    if dry_run:
        return nullcontext(DeletionLocks(destinations=list(destinations)))
    return locked_for_deleting(destinations, "prune", busy_raises=False)


def _is_index_file(key: str) -> bool:
    name = key[len(INDEX_PREFIX) :]
    return key.startswith(INDEX_PREFIX) and key.endswith(INDEX_SUFFIX) and "/" not in name


def _is_pack(key: str) -> bool:
    folder, _, name = key[len(PACKS_PREFIX) :].partition("/")
    return key.startswith(PACKS_PREFIX) and bool(folder) and name.endswith(PACK_SUFFIX)
