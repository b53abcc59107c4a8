"""`prune`: remove data no snapshot references, under the repository lock.

What is referenced comes from every snapshot manifest in the repository (the
repository is the truth, not the catalog); what exists comes from the packs'
own trailers, so packs of an interrupted backup that no index lists are found
too. Packs with nothing referenced are deleted; packs that are mostly unused
are repacked. Order: new packs, the new index, then old index files, then old
packs, so a prune interrupted at any point leaves every snapshot readable.

Prune deletes only what it can prove unreferenced: a pack it cannot read (its
trailer or layout damaged), or a referenced chunk found in no pack, stops it
before anything is written or deleted, with exit 4 and a pointer to `repair`.
"""

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from engines.destinations.base import Destination, StoredObject
from engines.errors import IntegrityError, JarvisError, KeyNotAvailableError
from engines.jobs import JobContext
from engines.store.index import index_files, load_index, write_index
from engines.store.keys import ID_SIZE
from engines.store.layout import SOURCE, is_snapshot_key
from engines.store.pack_reader import (
    PackKey,
    iter_pack_files,
    pack_name_of,
    read_pack_bytes,
    read_trailer,
)
from engines.store.packs import BlobLocation, PackSealer, PackWriter
from engines.store.snapshots import load_stored_manifest
from engines.workspace import Workspace

if TYPE_CHECKING:
    from engines.store.prune_copies import CopyPruneReport

# A pack whose unused bytes reach this share of it is rewritten with only the used chunks.
REPACK_UNUSED_SHARE = 0.2
# Jobs that hold the repository lock themselves never run beside a prune.
_LOCKING_JOBS = ("backup", "cleanup", "prune", "repair")


@dataclass
class PruneReport:
    dry_run: bool
    snapshots: int = 0
    packs: int = 0
    packs_deleted: int = 0
    packs_repacked: int = 0
    packs_written: int = 0
    bytes_freed: int = 0
    chunks_removed: int = 0
    problems: list[str] = field(default_factory=list)
    # Each copy destination's prune (engines/store/prune_copies.py), when the verb ran it.
    copies: list["CopyPruneReport"] = field(default_factory=list)
    # What this prune deletes (or would): the old index files and the packs dropped or
    # repacked; and the chunks the snapshots reference. A dry run of the copies' prune
    # foresees from these what the repository's new index will replace there.
    replaced: set[str] = field(default_factory=set, repr=False)
    referenced: set[bytes] = field(default_factory=set, repr=False)

    def __str__(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        return (
            f"{self.snapshots} snapshot(s), {self.packs} pack(s): {verb} {self.packs_deleted}, "
            f"repacked {self.packs_repacked}; {self.chunks_removed} unreferenced chunk(s), "
            f"{self.bytes_freed} bytes freed"
        )


def snapshot_keys(workspace: Workspace) -> list[str]:
    """The key of every snapshot manifest in the repository, in key order."""
    listed = workspace.repository.list(f"{SOURCE}/")
    return [stored.key for stored in listed if is_snapshot_key(stored.key)]


def readers_running(workspace: Workspace, own_job_id: int | None) -> str | None:
    for job in workspace.catalog.unfinished_jobs():
        if job.id == own_job_id or job.kind in _LOCKING_JOBS:
            continue
        if job.gone_here():
            continue
        return f"job {job.id} ({job.description}) is running and may be reading packs"
    return None


def referenced_chunks(workspace: Workspace, context: JobContext) -> tuple[set[bytes], int]:
    keyring = workspace.keyring()
    referenced: set[bytes] = set()
    keys = snapshot_keys(workspace)
    for key in keys:
        context.raise_if_cancelled()
        try:
            manifest = load_stored_manifest(workspace.repository, key, keyring)
        except KeyNotAvailableError as exc:
            context.log(f"cannot read snapshot {key}; nothing was deleted", level="error")
            raise exc from None
        except IntegrityError as exc:
            raise IntegrityError(
                f"cannot read snapshot {key} ({exc}); prune needs every snapshot to know which "
                "data is still used, so nothing was deleted"
            ) from None
        for entry in manifest.entries:
            referenced.update(entry.chunk_ids())
    return referenced, len(keys)


@contextlib.contextmanager
def rewriting_store(
    workspace: Workspace, context: JobContext, verb: str, *, dry_run: bool
) -> Iterator[None]:
    """What `prune` and `repair` hold while they rewrite packs and the index: the
    repository lock, no job reading packs, and what killed writers left removed."""
    with workspace.lock(f"{verb} files store", reading_only=dry_run):
        busy = readers_running(workspace, context.job_id)
        if busy:
            raise JarvisError(f"{verb} postponed: {busy}; run it again when that job has finished")
        if not dry_run:
            # Everywhere in the repository: this is also how operators clear up after kills.
            workspace.remove_abandoned_temporaries()
        yield


def prune_store(workspace: Workspace, context: JobContext, *, dry_run: bool = False) -> PruneReport:
    repository = workspace.repository
    with rewriting_store(workspace, context, "prune", dry_run=dry_run):
        keyring = workspace.keyring()
        referenced, snapshots = referenced_chunks(workspace, context)
        report = PruneReport(dry_run, snapshots=snapshots)
        loaded = load_index(repository, keyring, every_key=True)
        report.problems.extend(loaded.problems)
        old_indexes = index_files(repository)
        keep: list[tuple[bytes, BlobLocation]] = []
        repack: list[tuple[StoredObject, list[tuple[bytes, BlobLocation]]]] = []
        doomed: list[StoredObject] = []
        seen: set[bytes] = set()
        damaged: list[str] = []
        for pack in iter_pack_files(repository):
            context.raise_if_cancelled()
            report.packs += 1
            try:
                entries = read_trailer(repository, pack.key, keyring)
            except IntegrityError as exc:
                damaged.append(str(exc))
                continue
            used = [(i, loc) for i, loc in entries if i in referenced and i not in seen]
            used_ids = {i for i, _ in used}
            seen.update(used_ids)
            size = pack.size
            unused_bytes = sum(loc.length for i, loc in entries if i not in used_ids)
            report.chunks_removed += len(entries) - len(used)
            if not used:
                doomed.append(pack)
                report.packs_deleted += 1
                report.bytes_freed += size
            elif unused_bytes >= REPACK_UNUSED_SHARE * size:
                repack.append((pack, used))
                report.packs_repacked += 1
                report.bytes_freed += unused_bytes  # an estimate until the new packs exist
            else:
                keep.extend(entries)
                report.chunks_removed -= len(entries) - len(used)
        _refuse_unaccounted(damaged, len(referenced - seen))
        report.referenced = referenced
        report.replaced = {*old_indexes, *(p.key for p in doomed), *(p.key for p, _ in repack)}
        for problem in report.problems:
            context.log(problem, level="warning")
        if dry_run:
            context.log(f"prune (dry run): {report}")
            return report
        writer = PackWriter(repository, PackSealer(keyring.current))
        with writer:
            for pack, used in repack:
                context.raise_if_cancelled()
                try:
                    _copy_chunks(repository, pack.key, used, writer, keyring)
                except IntegrityError as exc:
                    raise IntegrityError(
                        f"prune refused: {exc}; nothing was deleted. Run `jarvis-tui repair` "
                        "to salvage what still authenticates, then prune again"
                    ) from None
        report.packs_written = writer.packs_written
        entries = keep + writer.locations
        write_index(
            repository, keyring.current, entries, generation=loaded.generation + 1, rebuilt=True
        )
        for key in old_indexes:
            repository.delete(key)
        doomed.extend(pack for pack, _ in repack)
        freed = sum(pack.size for pack in doomed)
        for pack in doomed:
            repository.delete(pack.key)
        report.bytes_freed = freed - writer.bytes_written
        context.log(f"prune: {report}")
        return report


def _refuse_unaccounted(damaged: list[str], missing: int) -> None:
    """Stop before any change when some data cannot be accounted for."""
    if not damaged and not missing:
        return
    found = []
    if damaged:
        found.append(f"{len(damaged)} damaged pack(s) ({'; '.join(damaged[:3])})")
    if missing:
        found.append(f"{missing} chunk(s) that snapshots reference are in no pack")
    raise IntegrityError(
        f"prune refused: {' and '.join(found)}; nothing was deleted. Run `jarvis-tui repair` "
        "to salvage what still authenticates and rebuild the index (it lists the snapshots "
        "still affected), then prune again"
    )


def _copy_chunks(
    repository: Destination,
    pack: str,
    used: list[tuple[bytes, BlobLocation]],
    writer: PackWriter,
    keyring,
) -> None:
    """Re-seal the used chunks of the pack under key `pack` into the writer's packs (no
    recompression)."""
    data = read_pack_bytes(repository, pack)
    key = PackKey(data, keyring, pack_name_of(pack))
    for chunk_id, location in used:
        sealed = data[location.offset : location.offset + location.length]
        if len(chunk_id) != ID_SIZE or len(sealed) != location.length:
            raise IntegrityError(f"pack {pack.rpartition('/')[2]}: chunk past the end of the pack")
        blob = key.open_blob(chunk_id, sealed)
        writer.add(chunk_id, writer.seal(chunk_id, blob), location.raw_length)
