"""Making backups: a backup set under the repository lock, its artifacts written by
the repository layer (`engines/repository/artifacts.py`), and the `--output` copy."""

from datetime import datetime
from typing import Any

from engines.actions.backup_alerts import alert_backup_outcome
from engines.actions.output_copy import check_output_path, copy_artifacts
from engines.actions.verbs import Request
from engines.alerts import AlertDispatcher
from engines.catalog import BackupSet
from engines.errors import JarvisError, JobCancelledError, RepositoryLockedError
from engines.jobs import JobContext
from engines.plumbing.os_errors import explain_os_error
from engines.repository.artifacts import clear_leftovers
from engines.repository.copies import CopyOutcome, alert_copy_outcomes, copy_to_destinations
from engines.repository.set_records import RUNNING, write_set_record
from engines.sources import get_source
from engines.workspace import Workspace


def run_backup(
    workspace: Workspace,
    kind: str,
    options: Any,
    context: JobContext,
    *,
    tier: str | None = "manual",
    dispatcher: AlertDispatcher | None = None,
    created_at: datetime | None = None,
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
        backup_set, copies = _back_up_source(
            workspace, source, kind, options, context, tier, created_at
        )
    except (JobCancelledError, RepositoryLockedError):
        raise
    except OSError as error:
        explained = explain_os_error(error, where=workspace.local_root)
        _alert(workspace, dispatcher, label, kind, str(explained))
        raise explained from error
    except Exception as error:
        _alert(workspace, dispatcher, label, kind, str(error) or type(error).__name__)
        raise
    _alert(workspace, dispatcher, f"backup {backup_set.id}", kind, None)
    alert_copy_outcomes(workspace, copies, dispatcher)
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
    created_at: datetime | None = None,
) -> tuple[BackupSet, list[CopyOutcome]]:
    workspace.repository.ensure_repository_id()
    with workspace.lock(f"backup {kind}"):
        clear_leftovers(workspace, context)
        backup_set = workspace.catalog.create_backup_set(
            kind, tier=tier, job_id=context.job_id, created_at=created_at
        )
        try:
            start_set_record(workspace, backup_set)
            output = getattr(options, "output", None)  # `--output`, for sources that offer it
            check_output_path(output)
            artifacts = source.back_up(workspace, backup_set, options, context)
            if output is not None:
                for artifact, copied in zip(
                    artifacts, copy_artifacts(workspace, artifacts, output), strict=True
                ):
                    context.log(f"copied {artifact.relpath} to {copied}")
        except OSError as error:
            # Recorded in the operator's words: which path, and what to do.
            explained = explain_os_error(error, where=workspace.local_root)
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
        # The off-site copies, once the set is final; a failed copy leaves it as it is.
        copies = copy_to_destinations(workspace, context)
    return workspace.catalog.get_backup_set(backup_set.id), copies


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
                problem = explain_os_error(record_error, where=workspace.local_root)
            reason = f"its set record could not be written: {problem}"
            workspace.catalog.finish_backup_set(backup_set.id, "failed", reason, note=note)
            raise
    workspace.catalog.finish_backup_set(backup_set.id, status, error, note=note)


def run(workspace: Workspace, request: Request, context: JobContext) -> BackupSet:
    """The `backup` verb: the source `request.kind` as a set of its own."""
    return run_backup(
        workspace,
        str(request.kind),
        request.options,
        context,
        tier=request.tier,
        dispatcher=request.dispatcher,
    )
