"""`backup files`: one complete snapshot of BACKUP_FILE_PATHS, storing only new content.

Order of writes: packs, then the index of the chunks they hold, then the
snapshot manifest (through `store_artifact`, which also records the snapshot
in the catalog). With `incremental`, files whose size, mtime, ctime and inode
match the previous snapshot keep their chunk list without being read.
"""

import os
import stat
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engines.catalog import Artifact, BackupSet, catalog_files
from engines.destinations.base import Destination
from engines.errors import IntegrityError, KeyNotAvailableError
from engines.jobs import JobContext
from engines.repository.artifacts import store_artifact
from engines.repository.resolve import resolved_from_catalog
from engines.store.index import Index, load_index, pack_sizes, write_index
from engines.store.ingest import CHANGED, Ingest
from engines.store.keys import CURRENT_CHUNK_IDS, StoreKeys, store_keys
from engines.store.layout import SNAPSHOT_NAME, SOURCE
from engines.store.packs import BlobLocation
from engines.store.resolve import newest_snapshot
from engines.store.snapshots import DIR, FILE, SYMLINK, Entry, Manifest, load_manifest, shown
from engines.store.walker import Walked, Walker, check_roots, snapshot_path
from engines.workspace import Workspace

MISSING_WARNING = (
    "does not exist and was not backed up; create it or remove it from BACKUP_FILE_PATHS"
)
# How new snapshots name their chunks (a module setting so tests can write an older one).
CHUNK_ID_VERSION = CURRENT_CHUNK_IDS


@dataclass(frozen=True)
class FilesBackupOptions:
    incremental: bool = False


class ProblemLog:
    """Counts problems by kind and logs each one as a warning."""

    def __init__(self, context: JobContext):
        self._context = context
        self.counts: Counter[str] = Counter()

    def report(self, kind: str, message: str) -> None:
        self.counts[kind] += 1
        self._context.log(message, level="warning")


def previous_manifest(
    workspace: Workspace, keys: StoreKeys, context: JobContext
) -> Manifest | None:
    """The newest complete files snapshot, if its chunks were named as `keys` name them
    (same master key, same chunk-id derivation)."""
    artifact = newest_snapshot(workspace)
    if artifact is None:
        context.log("no previous files snapshot: every file is read")
        return None
    known = resolved_from_catalog(workspace, artifact)
    try:
        keyring = workspace.keyring()
        manifest = load_manifest(known.stored, keyring, artifact.relpath, known.expected)
    except KeyNotAvailableError as exc:
        context.log(
            f"previous snapshot {artifact.set_id} needs key id {exc.key_id}, which is not "
            "configured (BACKUP_ENCRYPTION_KEY_PREVIOUS): every file is read",
            level="warning",
        )
        return None
    if manifest.key_id != keys.key_id:
        context.log(
            f"previous snapshot {artifact.set_id} was made with another encryption key: "
            "every file is read"
        )
        return None
    if manifest.chunk_id_version != keys.chunk_id_version:
        context.log(
            f"previous snapshot {artifact.set_id} names its chunks with chunk-id derivation "
            f"v{manifest.chunk_id_version}, new snapshots with v{keys.chunk_id_version}: "
            "every file is read (once)"
        )
        return None
    context.log(f"incremental: comparing with snapshot {artifact.set_id}")
    manifest.summary["set_id"] = artifact.set_id
    return manifest


def _entry_for(walked: Walked) -> Entry:
    info = walked.info
    mode = info.st_mode
    kind = DIR if stat.S_ISDIR(mode) else SYMLINK if stat.S_ISLNK(mode) else FILE
    return Entry(
        path=walked.path,
        type=kind,
        mode=stat.S_IMODE(mode),
        uid=info.st_uid,
        gid=info.st_gid,
        mtime_ns=info.st_mtime_ns,
    )


def _unchanged(previous: Entry | None, info: os.stat_result, index: Index) -> bool:
    return (
        previous is not None
        and previous.type == FILE
        and not previous.changed
        and previous.size == info.st_size
        and previous.mtime_ns == info.st_mtime_ns
        and previous.ctime_ns == info.st_ctime_ns
        and previous.inode == info.st_ino
        and all(chunk_id in index for chunk_id in previous.chunk_ids())
    )


def back_up_files(
    workspace: Workspace,
    backup_set: BackupSet,
    options: FilesBackupOptions,
    context: JobContext,
) -> list[Artifact]:
    settings = workspace.settings
    checked = check_roots(settings.file_paths)
    roots = checked.present
    keyring = workspace.keyring()
    keys = store_keys(keyring.current, CHUNK_ID_VERSION)
    repository = workspace.repository
    repository.ensure_repository_id()
    index = load_index(repository, keyring)
    for problem in index.problems:
        context.log(problem, level="warning")
    previous = previous_manifest(workspace, keys, context) if options.incremental else None
    earlier = previous.by_path() if previous else {}
    problems = ProblemLog(context)
    skip = [
        # The folder of this host that holds the lock, the work folders and a local
        # repository's bytes is never backed up into itself (a walk, not stored bytes).
        workspace.local_root.resolve(),
        *catalog_files(settings.catalog_path.resolve()),
        settings.log_dir.resolve(),
    ]
    walker = Walker(settings.backup_file_excludes, skip, problems.report)
    for path in checked.missing:
        context.log(f"BACKUP_FILE_PATHS: {path} {MISSING_WARNING}", level="warning")

    entries: list[Entry] = []
    to_read: list[tuple[Entry, str, int]] = []
    for walked in walker.walk(roots):
        entry = _entry_for(walked)
        if entry.type == SYMLINK:
            try:
                entry.target = os.readlink(walked.absolute)
            except OSError as exc:
                problems.report("unreadable", f"{walked.absolute}: cannot read link ({exc})")
                continue
        elif entry.type == FILE:
            before = earlier.get(entry.path)
            if _unchanged(before, walked.info, index):
                assert before is not None
                entry.size, entry.chunks = before.size, before.chunks
                entry.ctime_ns, entry.inode = before.ctime_ns, before.inode
            else:
                to_read.append((entry, walked.absolute, walked.info.st_size))
        entries.append(entry)
    context.raise_if_cancelled()

    total = sum(size for _, _, size in to_read)
    files = sum(1 for e in entries if e.type == FILE)
    context.log(
        f"{files} files in {len(roots)} folder(s); reading {len(to_read)} "
        f"({total} bytes), {files - len(to_read)} unchanged since the previous snapshot"
    )
    ingest = Ingest(
        repository,
        keyring.current,
        keys,
        index,
        codec=settings.backup_compression,
        level=settings.compression_level,
        report=problems.report,
        progress=lambda done: context.progress(done, max(total, done)),
    )
    try:
        for entry, absolute, _ in to_read:
            context.raise_if_cancelled()
            ingest.add_file(entry, absolute)
        ingest.finish()
    except BaseException:
        ingest.abort()
        raise
    locations = ingest.packs.locations
    index_key = (
        write_index(
            repository, keyring.current, locations, generation=index.generation, base=index.base
        )
        if locations
        else None
    )
    kept = [e for e in entries if id(e) not in ingest.failed]
    check_chunks_stored(repository, kept, index, dict(locations))
    summary = _summary(kept, roots, ingest, problems, previous, index_key, options)
    summary["missing"] = checked.missing
    manifest = Manifest(
        [snapshot_path(root) for root in roots], kept, keys.key_id, summary, keys.chunk_id_version
    )
    context.log(_describe(summary))
    artifact = store_artifact(
        workspace,
        backup_set,
        context,
        source=SOURCE,
        mode="incremental" if options.incremental else "full",
        name=SNAPSHOT_NAME,
        stream=[manifest.to_bytes()],
        metadata={"snapshot": summary},
    )
    return [artifact]


def check_chunks_stored(
    repository: Destination,
    entries: list[Entry],
    index: Index,
    written: dict[bytes, BlobLocation],
) -> None:
    """Read back, before the manifest is stored, that every chunk it names is in a pack
    that exists and is long enough; a snapshot that could not be restored is never made."""
    sizes = pack_sizes(repository) if entries else {}
    for entry in entries:
        for chunk_id in entry.chunk_ids():
            location = written.get(chunk_id) or index.get(chunk_id)
            if location is None or sizes.get(location.pack, -1) < location.offset + location.length:
                raise IntegrityError(
                    f"{shown(entry.path)}: chunk {chunk_id.hex()[:16]} is in no pack of the "
                    "repository (a pack vanished during the backup?); the snapshot was not "
                    "stored: run `jarvis-tui repair`, then back up again"
                )


def _summary(
    entries: list[Entry],
    roots: list[Path],
    ingest: Ingest,
    problems: ProblemLog,
    previous: Manifest | None,
    index_key: str | None,
    options: FilesBackupOptions,
) -> dict[str, Any]:
    kinds = Counter(entry.type for entry in entries)
    return {
        "paths": [str(root) for root in roots],
        "files": kinds[FILE],
        "dirs": kinds[DIR],
        "symlinks": kinds[SYMLINK],
        "bytes": sum(entry.size for entry in entries),
        "files_read": ingest.stats.files_read,
        "bytes_read": ingest.stats.bytes_read,
        "new_chunks": ingest.stats.chunks_new,
        "new_bytes": ingest.stats.bytes_new,
        "packs_written": ingest.packs.packs_written,
        "stored_bytes": ingest.packs.bytes_written,
        "index": index_key,
        "incremental": options.incremental,
        "parent": previous.summary.get("set_id") if previous else None,
        "unreadable": problems.counts["unreadable"],
        "changed_while_reading": problems.counts[CHANGED],
        "vanished": problems.counts["vanished"],
        "special_skipped": problems.counts["special"],
    }


def _describe(summary: dict[str, Any]) -> str:
    text = (
        f"snapshot: {summary['files']} files, {summary['dirs']} folders, "
        f"{summary['symlinks']} symlinks, {summary['bytes']} bytes; read "
        f"{summary['files_read']} files; new data {summary['new_bytes']} bytes in "
        f"{summary['new_chunks']} chunks, {summary['stored_bytes']} bytes stored in "
        f"{summary['packs_written']} packs"
    )
    warnings = {
        key: len(summary[key]) if key == "missing" else summary[key]
        for key in ("missing", "unreadable", "changed_while_reading", "vanished", "special_skipped")
        if summary.get(key)
    }
    if warnings:
        text += "; " + ", ".join(
            f"{key.replace('_', ' ')}: {count}" for key, count in warnings.items()
        )
    return text


def warnings_of(summary: dict[str, Any]) -> list[str]:
    """Operator-facing lines for a snapshot that is not a perfect copy."""
    lines = [f"BACKUP_FILE_PATHS: {path} {MISSING_WARNING}" for path in summary.get("missing", [])]
    if summary.get("unreadable"):
        lines.append(f"{summary['unreadable']} file(s) or folder(s) could not be read")
    if summary.get("changed_while_reading"):
        lines.append(
            f"{summary['changed_while_reading']} file(s) changed while being read "
            "(stored as read, marked changed)"
        )
    return lines
