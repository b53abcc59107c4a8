"""Making backups: a backup set under the repository lock, artifacts written safely.

`store_artifact` is the one way a source puts bytes into the repository: the
catalog row says `writing` until the artifact and its sidecar are renamed into
place, so a crash never leaves something that looks complete.
"""

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, BinaryIO

from engines.actions.backup_alerts import alert_backup_outcome
from engines.alerts import AlertDispatcher
from engines.catalog import Artifact, BackupSet
from engines.errors import IntegrityError, JarvisError, JobCancelledError, RepositoryLockedError
from engines.jobs import JobContext
from engines.pipeline.artifacts import (
    Expected,
    VerifyReport,
    artifact_filename,
    artifact_identity,
    verify_artifact,
    write_artifact,
)
from engines.plumbing.fsutil import remove_abandoned_temporaries
from engines.plumbing.os_errors import explain_os_error
from engines.repository.lock import RepositoryLock
from engines.repository.set_records import RUNNING, record_relpath, set_fields, write_set_record
from engines.sources import get_source
from engines.workspace import Workspace


def read_back(
    workspace: Workspace, relpath: str, identity: dict[str, str] | None = None
) -> VerifyReport:
    """Read a just-written artifact back from disk: checksum, every chunk authenticated
    and, given its `identity`, the identity and key it was sealed with.

    Cheap enough for every backup (no decompression); `verify` and the restore drills
    go further.
    """
    path = workspace.repository.path_for(relpath)
    keyring = workspace.keyring()
    expected = Expected(identity, key_id=keyring.current.key_id) if identity else None
    return verify_artifact(path, keyring, decompress=False, expected=expected)


def store_artifact(
    workspace: Workspace,
    backup_set: BackupSet,
    context: JobContext,
    *,
    source: str,
    mode: str,
    name: str,
    stream: Iterable[bytes] | BinaryIO,
    metadata: dict[str, Any] | Callable[[], dict[str, Any]],
) -> Artifact:
    """Compress, encrypt and store `stream` as `<source>/<set id>_<name>.<gz|zst>.enc`."""
    settings = workspace.settings
    codec = settings.backup_compression
    relpath = f"{source}/{artifact_filename(f'{backup_set.id}_{name}', codec)}"
    workspace.repository.ensure_repository_id()
    repository_id = workspace.repository.repository_id() or ""
    identity = artifact_identity(repository_id, source, backup_set.id, relpath)
    row = workspace.catalog.add_artifact(backup_set.id, source, mode, relpath)

    def full_metadata() -> dict[str, Any]:
        extra = metadata() if callable(metadata) else metadata
        return {
            **set_fields(backup_set),
            "set_record": record_relpath(backup_set.id),
            "source": source,
            "mode": mode,
            "type": source,
            "created_at": datetime.now(UTC).isoformat(timespec="microseconds"),
            **extra,
        }

    context.log(f"writing {relpath} ({codec} level {settings.compression_level}, AES-256-GCM)")
    try:
        info = write_artifact(
            stream,
            workspace.repository.path_for(relpath),
            workspace.keyring(),
            full_metadata,
            codec=codec,
            level=settings.compression_level,
            progress=lambda done: context.progress(done, None),
            cancelled=lambda: context.cancelled,
            identity=identity,
        )
    except BaseException as error:
        workspace.catalog.fail_artifact(row.id, str(error) or type(error).__name__)
        raise
    check = read_back(workspace, relpath, identity)
    if not check.ok:
        workspace.catalog.fail_artifact(row.id, check.problems[0])
        workspace.catalog.record_alert("critical", "verification", check.problems[0])
        raise IntegrityError(f"{relpath} failed its read-back check: {check.problems[0]}")
    workspace.catalog.complete_artifact(
        row.id,
        checksum=info.checksum,
        stored_size=info.stored_size,
        plain_size=info.plain_size,
        key_id=info.key_id,
        codec=info.codec,
        metadata=info.metadata,
    )
    workspace.catalog.record_verification(
        row.id, True, f"authenticated after backup: sha256 {check.checksum}, {check.chunks} chunks"
    )
    workspace.catalog.set_copy_state(row.id, "local", "stored")
    context.log(f"stored {relpath}: {info.stored_size} bytes, sha256 {info.checksum}")
    return workspace.catalog.find_artifact_by_relpath(relpath) or row


def clear_leftovers(workspace: Workspace, context: JobContext) -> None:
    """Temporaries and work folders of killed processes, anywhere in the repository; run
    under the repository lock, so no backup of ours is writing meanwhile."""
    removed = remove_abandoned_temporaries(workspace.repository.root)
    if removed:
        context.log(f"removed {len(removed)} temporaries left by interrupted runs")


def run_backup(
    workspace: Workspace,
    kind: str,
    options: Any,
    context: JobContext,
    *,
    tier: str | None = "manual",
    dispatcher: AlertDispatcher | None = None,
) -> BackupSet:
    """One source's backup as its own set, under the repository lock. A failure raises
    the `backup_failure:<kind>` alert a failed part of `backup full` raises; a success
    clears it. Alerts go out after the lock is released, so a slow channel holds up
    no other backup."""
    source = get_source(kind)
    reason = source.configured(workspace.settings)
    if reason:
        raise JarvisError(f"{kind} backup skipped: {reason}")
    workspace.keyring()  # fail before touching anything when the key is missing
    label = f"backup {kind}"
    try:
        backup_set = _back_up_source(workspace, source, kind, options, context, tier)
    except (JobCancelledError, RepositoryLockedError):
        raise
    except OSError as error:
        explained = explain_os_error(error, where=workspace.repository.root)
        _alert(workspace, dispatcher, label, kind, str(explained))
        raise explained from error
    except Exception as error:
        _alert(workspace, dispatcher, label, kind, str(error) or type(error).__name__)
        raise
    _alert(workspace, dispatcher, f"backup {backup_set.id}", kind, None)
    return backup_set


def _alert(
    workspace: Workspace,
    dispatcher: AlertDispatcher | None,
    label: str,
    kind: str,
    failure: str | None,
) -> None:
    dispatcher = dispatcher or AlertDispatcher(workspace.catalog, workspace.settings)
    alert_backup_outcome(dispatcher, label, kind, failure)


def _back_up_source(
    workspace: Workspace,
    source: Any,
    kind: str,
    options: Any,
    context: JobContext,
    tier: str | None,
) -> BackupSet:
    workspace.repository.ensure_repository_id()
    with RepositoryLock(workspace.repository.root, f"backup {kind}"):
        clear_leftovers(workspace, context)
        backup_set = workspace.catalog.create_backup_set(kind, tier=tier, job_id=context.job_id)
        try:
            start_set_record(workspace, backup_set)
            artifacts = source.back_up(workspace, backup_set, options, context)
        except OSError as error:
            # Recorded in the operator's words: which path, and what to do.
            explained = explain_os_error(error, where=workspace.repository.root)
            finish_set(workspace, backup_set, "failed", str(explained))
            raise explained from error
        except BaseException as error:
            finish_set(workspace, backup_set, "failed", str(error) or "interrupted")
            raise
        # As in `backup full`: a copy that left configured paths out is partial.
        left_out = source.left_out(artifacts)
        if left_out:
            finish_set(workspace, backup_set, "partial", "; ".join(left_out))
        else:
            finish_set(workspace, backup_set, "complete")
    return workspace.catalog.get_backup_set(backup_set.id)


def start_set_record(workspace: Workspace, backup_set: BackupSet) -> None:
    """The set's sealed record says "running" until `finish_set` replaces it, so a run
    killed after storing an artifact is never taken for a complete set."""
    write_set_record(workspace.repository, workspace.keyring(), backup_set, RUNNING)


def finish_set(
    workspace: Workspace,
    backup_set: BackupSet,
    status: str,
    error: str | None = None,
    *,
    note: str | None = None,
) -> None:
    """The set's sealed record, then its catalog row. A set whose final record cannot be
    written is failed (its record still says running, which reads as interrupted)."""
    try:
        write_set_record(workspace.repository, workspace.keyring(), backup_set, status, error)
    except (OSError, JarvisError) as record_error:
        if status != "failed":
            problem = record_error
            if isinstance(record_error, OSError):
                problem = explain_os_error(record_error, where=workspace.repository.root)
            reason = f"its set record could not be written: {problem}"
            workspace.catalog.finish_backup_set(backup_set.id, "failed", reason, note=note)
            raise
    workspace.catalog.finish_backup_set(backup_set.id, status, error, note=note)
