"""`jarvis-tui rekey`: every artifact sealed under a previous key, sealed again under the
current one, so the old key can leave BACKUP_ENCRYPTION_KEY_PREVIOUS; artifacts of the
first container format (no identity in their header) are sealed again too.

Each artifact is checked to be what the catalog says (identity, key id, checksum),
sealed again beside itself with its identity (the compressed stream is carried
over as it is), read back, renamed over the old file, and then its sidecar and
catalog row are updated. A run cut short leaves either the old file or the new
one: the next run finishes what it finds already sealed under the current key. Each
set's sealed record (`sets/`) is sealed again too, once it authenticates as its set's,
and so is the archived WAL (`wal/`) on the repository and every copy destination
(engines/pitr/wal_reseal.py: each object replaced whole under its own key).
"""

import os
from dataclasses import dataclass, field

from engines.actions.verbs import Request
from engines.catalog import Artifact
from engines.destinations import copy_destinations
from engines.destinations.base import Destination
from engines.errors import IntegrityError, JarvisError, KeyNotAvailableError, NotFoundError
from engines.jobs import JobContext
from engines.pipeline.artifacts import (
    SIDECAR_SUFFIX,
    Expected,
    check_resealed,
    read_sealed_metadata,
    reseal_artifact,
    sidecar_bytes,
    verify_artifact,
)
from engines.pipeline.crypto import MAGIC, read_header
from engines.pitr.wal_reseal import reseal_wal
from engines.plumbing.fsutil import fsync_directory, temporary_path_for
from engines.repository.resolve import resolved_from_catalog
from engines.repository.set_records import (
    read_set_record,
    record_keys,
    record_relpath,
    seal_record,
    set_id_of_record,
)
from engines.store.index import index_files
from engines.store.pack_reader import iter_pack_files
from engines.workspace import Workspace


@dataclass
class RekeyReport:
    dry_run: bool
    current_key_id: str
    rekeyed: list[str] = field(default_factory=list)
    # What still needs an old key after this run: (what, key id).
    remaining: list[tuple[str, str]] = field(default_factory=list)
    # Archived WAL a destination did not let this run seal again (read-only, unreachable).
    problems: list[str] = field(default_factory=list)

    @property
    def old_key_ids(self) -> set[str]:
        return {key_id for _, key_id in self.remaining}


def rekey(workspace: Workspace, context: JobContext, *, dry_run: bool = False) -> RekeyReport:
    keyring = workspace.keyring()
    report = RekeyReport(dry_run, keyring.current.key_id)
    with workspace.lock("rekey", reading_only=dry_run):
        if not dry_run:  # what a killed rekey (or any killed writer) left
            workspace.remove_abandoned_temporaries()
        stale = [
            artifact
            for artifact in _complete_artifacts(workspace)
            if artifact.key_id != report.current_key_id or _first_format(workspace, artifact)
        ]
        total = len(stale)
        for done, artifact in enumerate(stale, start=1):
            context.raise_if_cancelled()
            if dry_run:
                report.rekeyed.append(artifact.relpath)
                context.log(f"would seal {artifact.relpath} again (now key id {artifact.key_id})")
            else:
                _rekey_one(workspace, artifact, context)
                report.rekeyed.append(artifact.relpath)
            context.progress(done, total)
        report.remaining = _objects_under_old_keys(workspace, report.current_key_id)
        report.remaining += _reseal_set_records(workspace, report, context)
        report.remaining += _reseal_archived_wal(workspace, report, context)
    return report


def _reseal_set_records(
    workspace: Workspace, report: RekeyReport, context: JobContext
) -> list[tuple[str, str]]:
    """Seal each set record under an old key (or without its identity) again; a record
    that does not authenticate as its set's is left, and named."""
    keyring = workspace.keyring()
    remaining = []
    for key in record_keys(workspace.repository):
        key_id = _object_key_id(workspace.repository, key)
        set_id = set_id_of_record(key)
        relpath = record_relpath(set_id)
        if key_id == report.current_key_id and not _first_format_object(workspace, key):
            continue
        if report.dry_run:
            report.rekeyed.append(relpath)
            continue
        try:
            sealed = read_set_record(workspace.repository, keyring, set_id)
        except (IntegrityError, KeyNotAvailableError) as error:
            context.log(f"{relpath}: not sealed again: {error}", level="warning")
            remaining.append((relpath, key_id or "unknown"))
            continue
        seal_record(workspace.repository, keyring, sealed)
        report.rekeyed.append(relpath)
        context.log(f"sealed {relpath} again under key id {report.current_key_id}")
    return remaining


def _reseal_archived_wal(
    workspace: Workspace, report: RekeyReport, context: JobContext
) -> list[tuple[str, str]]:
    """Archived WAL under an old key sealed again on the repository, then on each copy
    destination; what still needs an old key afterwards, named with its destination."""
    repository = workspace.repository
    remaining = []
    for destination in [repository, *copy_destinations(workspace.settings)]:
        where = "" if destination is repository else f" on {destination.name}"
        result = reseal_wal(
            destination,
            workspace.keyring(),
            repository.repository_id(),
            dry_run=report.dry_run,
            check=context.raise_if_cancelled,
        )
        report.rekeyed += [key + where for key in result.resealed]
        remaining += [(key + where, key_id) for key, key_id in result.remaining]
        report.problems += result.problems
        for problem in result.problems:
            context.log(problem, level="warning")
        if result.resealed and not report.dry_run:
            context.log(
                f"{len(result.resealed)} archived WAL file(s) sealed again under key id "
                f"{report.current_key_id}{where or ' in the repository'}"
            )
    return remaining


def _complete_artifacts(workspace: Workspace) -> list[Artifact]:
    catalog = workspace.catalog
    return [
        artifact
        for backup_set in catalog.list_backup_sets()
        for artifact in catalog.artifacts_of(backup_set.id)
        if artifact.status == "complete"
    ]


def _first_format(workspace: Workspace, artifact: Artifact) -> bool:
    """Is the artifact a version 1 container (its identity not bound in)?"""
    return _first_format_object(workspace, artifact.relpath)


def _first_format_object(workspace: Workspace, key: str) -> bool:
    try:
        with workspace.repository.open_read(key, 0, len(MAGIC) + 1) as handle:
            start = handle.read(len(MAGIC) + 1)
    except (OSError, NotFoundError):
        return False
    return start[: len(MAGIC)] == MAGIC and start[len(MAGIC) :] == b"\x01"


def _rekey_one(workspace: Workspace, artifact: Artifact, context: JobContext) -> None:
    keyring = workspace.keyring()
    current = keyring.current.key_id
    resolved = resolved_from_catalog(workspace, artifact)
    assert resolved.expected is not None
    if workspace.repository.stat(artifact.relpath) is None:
        raise NotFoundError(f"{artifact.relpath}: missing from the repository; nothing rekeyed")
    with workspace.repository.open_read(artifact.relpath) as handle:
        header = read_header(handle, artifact.relpath)[0]
    # The new container is staged beside the old file and checked before it replaces it,
    # which needs the file on this host; a destination elsewhere would stage it in a work
    # folder and put it (its open_write replaces atomically too).
    path = workspace.repository.local_path(artifact.relpath)
    if path is None:
        raise JarvisError(
            f"{artifact.relpath}: rekey works on a repository on this host only (BACKUP_DIR)"
        )
    already = header.key_id == current and header.version >= 2
    if already:
        # An earlier run renamed the new file into place and stopped before the catalog.
        context.log(f"{artifact.relpath}: already sealed under the current key; recording it")
    else:
        staged = temporary_path_for(path)
        try:
            resealed = reseal_artifact(
                resolved.stored, keyring, resolved.expected, resolved.expected.identity, staged
            )
            check_resealed(staged, keyring, resolved.expected.identity, artifact.relpath)
            os.replace(staged, path)
            fsync_directory(path.parent)
        finally:
            staged.unlink(missing_ok=True)
    expected = Expected(resolved.expected.identity, key_id=current)
    report = verify_artifact(resolved.stored, keyring, decompress=False, expected=expected)
    problems = [p for p in report.problems if "sidecar" not in p]
    if problems:
        raise IntegrityError(f"{artifact.relpath}: {problems[0]}; the old key is still needed")
    sealed = _sealed_fields(workspace, artifact) if already else resealed.sealed
    stored_size = resolved.stored.size()
    with workspace.repository.open_write(artifact.relpath + SIDECAR_SUFFIX) as out:
        out.write(sidecar_bytes(sealed, report.checksum, stored_size))
    workspace.catalog.complete_artifact(
        artifact.id,
        checksum=report.checksum,
        stored_size=stored_size,
        plain_size=artifact.plain_size,
        key_id=current,
        codec=artifact.codec,
        metadata={**artifact.metadata, **sealed},
    )
    context.log(f"sealed {artifact.relpath} again under key id {current}")


def _sealed_fields(workspace: Workspace, artifact: Artifact) -> dict:
    resolved = resolved_from_catalog(workspace, artifact)
    return read_sealed_metadata(resolved.stored, workspace.keyring())


def _objects_under_old_keys(workspace: Workspace, current: str) -> list[tuple[str, str]]:
    """Packs and index files of the files store are not sealed again (yet): name those
    that still need an old key, so the operator knows when one can go (a rotated key
    never strands them)."""
    repository = workspace.repository
    packs = [stored.key for stored in iter_pack_files(repository)]
    remaining = []
    for key in sorted([*packs, *index_files(repository)]):
        key_id = _object_key_id(repository, key)
        if key_id is not None and key_id != current:
            remaining.append((key, key_id))
    return remaining


def _object_key_id(repository: Destination, key: str) -> str | None:
    """The key id in a pack's or an index's header (both start magic, version, ...)."""
    try:
        with repository.open_read(key, 0, 18) as handle:
            head = handle.read(18)
    except (OSError, NotFoundError):
        return None
    if head.startswith(b"JARVPACK") and len(head) >= 17:
        return head[9:17].hex()  # magic, version, key id
    if len(head) >= 18:
        return head[10:18].hex()  # the container: magic, version, codec id, key id
    return None


def run(workspace: Workspace, request: Request, context: JobContext) -> RekeyReport:
    """The `rekey` verb."""
    return rekey(workspace, context, dry_run=request.dry_run)
