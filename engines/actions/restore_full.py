"""`jarvis-tui restore full SET|latest [--dry-run]`: the guide's complete system restore as
one job, made of the per-source restores (`engines/actions/restore.py`), never beside them.

Before anything changes, every artifact of the set is authenticated end to end (files:
every chunk of the snapshot read) from whichever copy the reads resolve to, and every
part's own dry run must pass; any failure refuses the whole restore. Then the application
is stopped (JARVIS_STOP_COMMAND, or the operator confirms it is stopped), the parts are
restored in the guide's order the guide's way (PostgreSQL swapped in with its roles, Redis
flushed only once the backup loaded, files, secrets, configuration), what the targets hold
is compared with the backup's metadata while the application is still stopped (so its own
writes cannot blur the comparison), the application is started (JARVIS_START_COMMAND, or
said to the operator) and the health checks run. The first failure stops the restore with
one line saying what was restored, what was not and that the application is left stopped.
A dry run goes through the same checks and plans and says what every step would do.
The checks are `full_restore_checks`, the steps' bookkeeping `full_restore_steps`.
"""

from dataclasses import dataclass, field
from typing import Any

from engines.actions.application import by_hand, configured_command, run_application_command
from engines.actions.full_restore_checks import (
    Part,
    check_everything,
    compare_restored,
    health_lines,
    left_out,
    parts_of,
    report_lines,
)
from engines.actions.full_restore_steps import FullRestoreOptions, StepResult, StepRun
from engines.actions.restore import run_restore
from engines.actions.verbs import Request
from engines.catalog import BackupSet
from engines.errors import JarvisError
from engines.jobs import JobContext
from engines.workspace import Workspace

FULL_KIND = "full"

__all__ = ["FullRestoreOptions", "FullRestoreReport", "StepResult", "run_restore_full"]


@dataclass
class FullRestoreReport:
    set_id: str
    dry_run: bool
    steps: list[StepResult] = field(default_factory=list)


def full_set(workspace: Workspace, reference: str) -> BackupSet:
    """`latest`: the newest complete `backup full`; an id: that set, made by `backup full`."""
    backup_set = workspace.catalog.get_backup_set(reference, FULL_KIND)
    if backup_set.kind != FULL_KIND:
        raise JarvisError(
            f"{backup_set.id} is a {backup_set.kind} backup; `restore full` restores a set made "
            f"by `backup full`; restore this one with `jarvis-tui restore {backup_set.kind}`"
        )
    return backup_set


def _stop(run: StepRun) -> list[str]:
    run.stopping = True
    settings = run.workspace.settings
    if configured_command(settings, "stop"):
        return [run_application_command(settings, "stop", run.context)]
    return ["the operator confirmed that the application is stopped"]


def _restore_part(run: StepRun, backup_set: BackupSet, part: Part) -> list[str]:
    part.reports = []
    lines = []
    for options in part.entry.source.full_restore_options(part.artifacts, False):
        report = run_restore(run.workspace, part.entry.kind, backup_set.id, options, run.context)
        part.reports.append(report)
        lines += report_lines(report)
    run.restored.append(part.entry.kind)
    return lines


def _start(run: StepRun) -> list[str]:
    settings = run.workspace.settings
    if configured_command(settings, "start"):
        return [run_application_command(settings, "start", run.context)]
    return [f"JARVIS_START_COMMAND is not set: {by_hand('start')} now"]


def _require_a_way_to_stop(run: StepRun) -> None:
    if configured_command(run.workspace.settings, "stop") or run.options.app_stopped:
        return
    raise JarvisError(
        f"the application must be stopped before a full restore: {by_hand('stop')} and "
        "confirm it (--app-stopped), or set JARVIS_STOP_COMMAND; nothing was changed"
    )


def run_restore_full(
    workspace: Workspace, reference: str, options: FullRestoreOptions, context: JobContext
) -> FullRestoreReport:
    backup_set = full_set(workspace, reference)
    parts = parts_of(workspace, backup_set)
    run = StepRun(workspace, options, context)
    run.total = len(parts) + 6  # check, stop, download, parts..., compare, start, health
    context.count_in("steps", run.total)  # not the bytes and keys of each part's restore
    if not options.dry_run:
        _require_a_way_to_stop(run)
    # Held throughout: no backup of a half-restored system, no prune under the restore.
    with workspace.lock("restore full", reading_only=True):
        _run_steps(run, backup_set, parts)
    return FullRestoreReport(backup_set.id, options.dry_run, run.steps)


def _run_steps(run: StepRun, backup_set: BackupSet, parts: list[Part]) -> None:
    workspace, context = run.workspace, run.context
    context.log(f"restore full from backup {backup_set.id} ({backup_set.status})")
    run.run_step(
        "check every artifact and each part's plan",
        lambda: check_everything(run, backup_set, parts) + left_out(workspace, parts),
    )
    if run.options.dry_run:
        _plan(run, parts)
    else:
        run.run_step("stop the application", lambda: _stop(run))
        run.step("download from S3", "done", [_download_words()])
        for part in parts:
            run.run_step(
                f"restore {part.entry.label}",
                lambda part=part: _restore_part(run, backup_set, part),
            )
        run.run_step("compare with the backup", lambda: compare_restored(run, backup_set, parts))
        by_command = configured_command(workspace.settings, "start")
        run.run_step(
            "start the application", lambda: _start(run), "done" if by_command else "by hand"
        )
        run.run_step("health checks", lambda: health_lines(run))


def _download_words() -> str:
    return (
        "not needed: every artifact is read from its best copy (the local repository "
        "first, then S3) and was authenticated from there"
    )


def _plan(run: StepRun, parts: list[Part]) -> None:
    settings = run.workspace.settings
    stop = configured_command(settings, "stop")
    stop_line = (
        f"would run JARVIS_STOP_COMMAND: {stop}"
        if stop
        else f"JARVIS_STOP_COMMAND is not set: {by_hand('stop')}, then confirm it"
    )
    run.step("stop the application", "would", [stop_line])
    run.step("download from S3", "would", [_download_words()])
    for part in parts:
        lines = [line for report in part.reports for line in report_lines(report)]
        run.step(f"restore {part.entry.label}", "would", lines)
    run.step(
        "compare with the backup",
        "would",
        ["would compare tables and row counts, keys per database, every file and variable"],
    )
    start = configured_command(settings, "start")
    start_line = (
        f"would run JARVIS_START_COMMAND: {start}"
        if start
        else f"JARVIS_START_COMMAND is not set: {by_hand('start')}"
    )
    run.step("start the application", "would", [start_line])
    run.step("health checks", "would", ["would check every source, the repository and the key"])


def run(workspace: Workspace, request: Request, context: JobContext) -> Any:
    """The `restore-full` verb: `request.reference` (a `backup full` set or `latest`)."""
    options = request.options or FullRestoreOptions(dry_run=request.dry_run)
    return run_restore_full(workspace, str(request.reference), options, context)
