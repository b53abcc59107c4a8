"""`jarvis-tui backup full` (the guide's `backup:full`): every configured source in one set.

Each source is one part. A part that fails is recorded and alerted, and the
others go on. A part that stored less than was configured (a folder of
BACKUP_FILE_PATHS that does not exist, files it could not read) is done with a
`warning`. The set ends `complete` when every configured part succeeded whole,
`partial` when some stored something, `failed` when none did. Sources that are not
configured are skipped and listed. Every new artifact was read back and
authenticated by `store_artifact` before its part counts.
"""

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime

from engines.actions.backup import finish_set, start_set_record
from engines.actions.backup_alerts import alert_backup_outcome
from engines.actions.verbs import Request
from engines.alerts import AlertDispatcher
from engines.catalog import Artifact, BackupSet
from engines.destinations import copy_destinations
from engines.errors import JarvisError, JobCancelledError
from engines.jobs import JobContext
from engines.plumbing.os_errors import explain_os_error
from engines.repository.artifacts import clear_leftovers
from engines.repository.copies import alert_copy_outcomes, copy_to_destinations
from engines.sources import get_source, in_full_order
from engines.workspace import Workspace

FULL_KIND = "full"


@dataclass
class PartResult:
    source: str
    state: str  # ok, warning (stored, but left something out), failed, skipped
    detail: str
    artifacts: list[Artifact] = field(default_factory=list)

    @property
    def summary(self) -> str:
        return f"{self.source}: {self.state}" + (f" ({self.detail})" if self.detail else "")


@dataclass
class FullBackupReport:
    backup_set: BackupSet
    parts: list[PartResult]


def full_backup_sources() -> list[str]:
    """Every registered source, in its `full_order` (the guide's: database first)."""
    return [entry.kind for entry in in_full_order()]


def _set_status(parts: list[PartResult]) -> str:
    ran = [part for part in parts if part.state != "skipped"]
    whole = [part for part in ran if part.state == "ok"]
    if len(whole) == len(ran):
        return "complete"
    stored = [part for part in ran if part.state in ("ok", "warning")]
    return "partial" if stored else "failed"


def _back_up_part(
    workspace: Workspace, backup_set: BackupSet, kind: str, context: JobContext
) -> PartResult:
    source = get_source(kind)
    context.log(f"part {kind}: starting")
    try:
        artifacts = list(source.back_up(workspace, backup_set, None, context) or [])
    except JobCancelledError:
        raise
    except JarvisError as error:
        return PartResult(kind, "failed", str(error))
    except OSError as error:  # a full disk, a read-only path: said as the CLI says it
        explained = explain_os_error(error, where=workspace.local_root)
        return PartResult(kind, "failed", str(explained))
    except Exception as error:  # one broken source must not cost the other parts
        context.log(f"part {kind}: {type(error).__name__}: {error}", level="debug")
        return PartResult(kind, "failed", f"unexpected error: {type(error).__name__}: {error}")
    count = len(artifacts)
    stored = f"{count} artifact{'s' if count != 1 else ''}"
    left_out = source.left_out(artifacts)
    if left_out:
        return PartResult(kind, "warning", "; ".join([stored, *left_out]), artifacts)
    return PartResult(kind, "ok", stored, artifacts)


def run_backup_full(
    workspace: Workspace,
    context: JobContext,
    *,
    tier: str | None = "manual",
    created_at: datetime | None = None,
    dispatcher: AlertDispatcher | None = None,
) -> FullBackupReport:
    kinds = full_backup_sources()
    skipped: list[PartResult] = []
    configured: list[str] = []
    broken: list[PartResult] = []
    for kind in kinds:
        try:
            reason = get_source(kind).configured(workspace.settings)
        except Exception as error:  # a broken source module costs its own part only
            broken.append(PartResult(kind, "failed", f"{type(error).__name__}: {error}"))
            continue
        if reason:
            skipped.append(PartResult(kind, "skipped", reason))
        else:
            configured.append(kind)
    if not configured:
        raise JarvisError(
            "nothing to back up: no source is configured ("
            + "; ".join(part.detail for part in skipped)
            + ")"
        )
    workspace.keyring()  # fail before touching anything when the key is missing
    workspace.repository.ensure_repository_id()
    parts: list[PartResult] = []
    destinations = copy_destinations(workspace.settings)
    # Counted in steps, each part and then the off-site copy: the bytes and keys each source
    # reports, and the copies' bytes, are left out of the job's progress.
    steps = len(configured) + (1 if destinations else 0)
    with workspace.lock("backup full"):
        context.count_in("steps", steps)
        clear_leftovers(workspace, context)
        backup_set = workspace.catalog.create_backup_set(
            FULL_KIND, tier=tier, job_id=context.job_id, created_at=created_at
        )
        backup_set = dataclasses.replace(backup_set, parts=tuple(configured))
        for part in skipped:
            context.log(f"part {part.source}: skipped ({part.detail})")
        try:
            start_set_record(workspace, backup_set)
            for number, kind in enumerate(configured, start=1):
                context.raise_if_cancelled()
                part = _back_up_part(workspace, backup_set, kind, context)
                parts.append(part)
                level = {"ok": "info", "warning": "warning"}.get(part.state, "error")
                context.log(f"part {kind}: {part.state} ({part.detail})", level=level)
                context.progress(number, steps, "steps")
        except BaseException as error:
            note = "; ".join(p.summary for p in [*parts, *skipped])
            reason = str(error) or type(error).__name__
            finish_set(workspace, backup_set, "failed", reason, note=note)
            raise
        parts.extend(skipped)
        parts.extend(broken)
        parts.sort(key=lambda part: kinds.index(part.source))
        status = _set_status(parts)
        failed = [part for part in parts if part.state in ("failed", "warning")]
        finish_set(
            workspace,
            backup_set,
            status,
            "; ".join(f"{p.source}: {p.detail}" for p in failed) or None,
            note="; ".join(part.summary for part in parts),
        )
        # The off-site copies, once the set is final; a failed copy leaves it as it is.
        copies = copy_to_destinations(workspace, context, destinations)
        context.progress(steps, steps, "steps")
    report = FullBackupReport(workspace.catalog.get_backup_set(backup_set.id), parts)
    context.log(f"backup {backup_set.id}: {status}")
    dispatcher = dispatcher or AlertDispatcher(workspace.catalog, workspace.settings)
    _alert(dispatcher, report)
    alert_copy_outcomes(workspace, copies, dispatcher)
    return report


def _alert(dispatcher: AlertDispatcher, report: FullBackupReport) -> None:
    """After the set is finished, so a slow channel never holds up the backup."""
    label = f"backup {report.backup_set.id}"
    for part in report.parts:
        if part.state != "skipped":
            failure = part.detail if part.state == "failed" else None
            alert_backup_outcome(dispatcher, label, part.source, failure)


def run(workspace: Workspace, request: Request, context: JobContext) -> FullBackupReport:
    """The `backup-full` verb (`backup full`, the console's and the schedules' backups)."""
    return run_backup_full(
        workspace,
        context,
        tier=request.tier,
        created_at=request.created_at,
        dispatcher=request.dispatcher,
    )
