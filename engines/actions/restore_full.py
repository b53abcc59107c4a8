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
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engines.actions.application import (
    by_hand,
    configured_command,
    run_application_command,
)
from engines.actions.restore import run_restore
from engines.actions.verbs import Request
from engines.actions.verify import verify_backup
from engines.catalog import Artifact, BackupSet
from engines.errors import IntegrityError, JarvisError, JobCancelledError
from engines.jobs import JobContext
from engines.monitoring.health import check_key, check_repository, check_sources
from engines.reports import RestoreReport
from engines.repository.resolve import resolve_artifacts
from engines.sources import SourceEntry, in_full_order
from engines.workspace import Workspace

FULL_KIND = "full"
STEP_PREFIX = "step "  # the job log lines a command line shows as the restore's progress
DETAIL_PREFIX = "  "


@dataclass(frozen=True)
class FullRestoreOptions:
    dry_run: bool = False
    # JARVIS_STOP_COMMAND unset: the operator says the application is already stopped.
    app_stopped: bool = False


@dataclass
class StepResult:
    title: str
    state: str  # done, would (a dry run's plan), by hand (left to the operator)
    lines: list[str] = field(default_factory=list)


@dataclass
class FullRestoreReport:
    set_id: str
    dry_run: bool
    steps: list[StepResult] = field(default_factory=list)


@dataclass
class _Part:
    entry: SourceEntry
    artifacts: list[Artifact]
    reports: list[RestoreReport] = field(default_factory=list)


class _Run:
    """One restore full: the steps as they are announced, logged and counted."""

    def __init__(self, workspace: Workspace, options: FullRestoreOptions, context: JobContext):
        self.workspace = workspace
        self.options = options
        self.context = context
        self.steps: list[StepResult] = []
        self.total = 0
        self.restored: list[str] = []
        self.stopping = False  # the stop step has begun: the application may be down

    def step(self, title: str, state: str, lines: list[str]) -> None:
        self.steps.append(StepResult(title, state, lines))
        number = len(self.steps)
        self.context.log(f"{STEP_PREFIX}{number}/{self.total} {title}: {state}")
        for line in lines:
            self.context.log(DETAIL_PREFIX + line)
        self.context.progress(number, self.total, "steps")

    def run_step(self, title: str, work: Callable[[], list[str]], state: str = "done") -> None:
        """`work` as the next step; a failure or a cancellation says where the system is."""
        try:
            self.context.raise_if_cancelled()
            lines = work()
        except JobCancelledError as error:
            raise _said(error, f"cancelled during {title}; {self.where()}") from None
        except JarvisError as error:
            self.context.log(f"{STEP_PREFIX}{len(self.steps) + 1}/{self.total} {title}: failed")
            raise _said(error, f"{title} failed: {error}; {self.where()}") from None
        self.step(title, state, lines)

    def where(self) -> str:
        if not self.stopping:
            return "nothing was changed and the application was not stopped"
        start = configured_command(self.workspace.settings, "start")
        start_words = "run JARVIS_START_COMMAND" if start else by_hand("start")
        if not self.restored:
            return (
                "nothing was restored; the application may be stopped: check it, and "
                f"{start_words} if need be"
            )
        return (
            f"restored so far: {', '.join(self.restored)}; the application is left stopped: "
            f"run the restore again, or {start_words} to start it as it is"
        )


def _said(error: JarvisError, message: str) -> JarvisError:
    """`error` in the full restore's words, keeping its kind (and so its exit code)."""
    error.args = (message,)
    return error


def full_set(workspace: Workspace, reference: str) -> BackupSet:
    """`latest`: the newest complete `backup full`; an id: that set, made by `backup full`."""
    backup_set = workspace.catalog.get_backup_set(reference, FULL_KIND)
    if backup_set.kind != FULL_KIND:
        raise JarvisError(
            f"{backup_set.id} is a {backup_set.kind} backup; `restore full` restores a set made "
            f"by `backup full`; restore this one with `jarvis-tui restore {backup_set.kind}`"
        )
    return backup_set


def _parts(workspace: Workspace, backup_set: BackupSet) -> list[_Part]:
    artifacts = [a for a in workspace.catalog.artifacts_of(backup_set.id) if a.status == "complete"]
    parts = []
    for entry in in_full_order():
        held = [a for a in artifacts if a.source == entry.kind]
        if held:
            parts.append(_Part(entry, held))
    if not parts:
        raise JarvisError(f"backup {backup_set.id} holds no complete artifact; nothing to restore")
    return parts


def _left_out(workspace: Workspace, parts: list[_Part]) -> list[str]:
    held = {part.entry.kind for part in parts}
    return [
        f"{entry.label}: not in this backup, left as it is"
        for entry in in_full_order()
        if entry.kind not in held and entry.source.configured(workspace.settings) is None
    ]


def _check_everything(run: _Run, backup_set: BackupSet, parts: list[_Part]) -> list[str]:
    """Every artifact authenticated end to end, then each part's own dry run; every problem
    found is one line, and any of them refuses the restore before it changes anything."""
    workspace, context = run.workspace, run.context
    problems: list[tuple[str, JarvisError]] = []
    lines = []
    verified = verify_backup(workspace, backup_set.id, context, read_data=True)
    for result in verified:
        for problem in result.report.problems:
            named = (
                problem if result.target.label in problem else f"{result.target.label}: {problem}"
            )
            problems.append((named, IntegrityError(problem)))
    lines.append(
        f"{len(verified)} artifact(s) authenticated end to end"
        if not problems
        else f"{len(problems)} artifact problem(s) found"
    )
    if not problems:
        for part in parts:
            context.raise_if_cancelled()
            for options in part.entry.source.full_restore_options(part.artifacts, True):
                try:
                    report = run_restore(
                        workspace, part.entry.kind, backup_set.id, options, context
                    )
                except JobCancelledError:
                    raise
                except JarvisError as error:
                    problems.append((f"{part.entry.kind}: {error}", error))
                    continue
                part.reports.append(report)
                problems += [(f"{part.entry.kind}: {p}", JarvisError(p)) for p in _refusals(report)]
    if problems:
        for line, _ in problems:
            context.log(DETAIL_PREFIX + f"refused: {line}", level="error")
        first = next((e for _, e in problems if isinstance(e, IntegrityError)), problems[0][1])
        more = (
            f" (and {len(problems) - 1} more, each in the job's log)" if len(problems) > 1 else ""
        )
        raise _said(
            first,
            f"backup {backup_set.id} cannot be restored whole: {problems[0][0]}{more}",
        )
    lines.append("every part's plan passes its own dry run")
    return lines


def _refusals(report: RestoreReport) -> list[str]:
    found = [report.refusal] if report.refusal else []
    if report.details.get("skipped_for_safety"):
        found += report.warnings
    return found


def _report_lines(report: RestoreReport) -> list[str]:
    """A part's report as step lines: the target named once, on the first."""
    return [
        f"{report.target}: {line}" if number == 0 else line
        for number, line in enumerate(report.lines)
    ] + [f"warning: {warning}" for warning in report.warnings]


def _stop(run: _Run) -> list[str]:
    run.stopping = True
    settings = run.workspace.settings
    if configured_command(settings, "stop"):
        return [run_application_command(settings, "stop", run.context)]
    return ["the operator confirmed that the application is stopped"]


def _restore_part(run: _Run, backup_set: BackupSet, part: _Part) -> list[str]:
    part.reports = []
    lines = []
    for options in part.entry.source.full_restore_options(part.artifacts, False):
        report = run_restore(run.workspace, part.entry.kind, backup_set.id, options, run.context)
        part.reports.append(report)
        lines += _report_lines(report)
    run.restored.append(part.entry.kind)
    return lines


def _compare(run: _Run, backup_set: BackupSet, parts: list[_Part]) -> list[str]:
    lines, differences = [], []
    for part in parts:
        resolved = resolve_artifacts(run.workspace, backup_set.id, part.entry.kind, check=False)
        for report in part.reports:
            run.context.raise_if_cancelled()
            try:
                found = part.entry.source.check_restored(
                    run.workspace, resolved, report, run.context
                )
            except IntegrityError as error:
                differences.append(f"{part.entry.kind}: {error}")
                continue
            if found:
                lines.append(f"{part.entry.kind}: {found}")
    if differences:
        raise IntegrityError("what was restored differs from the backup: " + "; ".join(differences))
    return lines


def _start(run: _Run) -> list[str]:
    settings = run.workspace.settings
    if configured_command(settings, "start"):
        return [run_application_command(settings, "start", run.context)]
    return [f"JARVIS_START_COMMAND is not set: {by_hand('start')} now"]


def _health(run: _Run) -> list[str]:
    """The checks that say whether the restored system answers (not the backups' ages)."""
    settings = run.workspace.settings
    checks = (
        check_sources(settings)
        + check_repository(settings)
        + check_key(settings, run.workspace.catalog)
    )
    failed = [f"{check.name}: {check.detail}" for check in checks if not check.ok]
    if failed:
        raise JarvisError("health checks failed: " + "; ".join(failed))
    return [f"{check.name}: {check.detail}" for check in checks]


def _require_a_way_to_stop(run: _Run) -> None:
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
    parts = _parts(workspace, backup_set)
    run = _Run(workspace, options, context)
    run.total = len(parts) + 6  # check, stop, download, parts..., compare, start, health
    if not options.dry_run:
        _require_a_way_to_stop(run)
    # Held throughout: no backup of a half-restored system, no prune under the restore.
    with workspace.lock("restore full", reading_only=True):
        _run_steps(run, backup_set, parts)
    return FullRestoreReport(backup_set.id, options.dry_run, run.steps)


def _run_steps(run: _Run, backup_set: BackupSet, parts: list[_Part]) -> None:
    workspace, context = run.workspace, run.context
    context.log(f"restore full from backup {backup_set.id} ({backup_set.status})")
    run.run_step(
        "check every artifact and each part's plan",
        lambda: _check_everything(run, backup_set, parts) + _left_out(workspace, parts),
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
        run.run_step("compare with the backup", lambda: _compare(run, backup_set, parts))
        by_command = configured_command(workspace.settings, "start")
        run.run_step(
            "start the application", lambda: _start(run), "done" if by_command else "by hand"
        )
        run.run_step("health checks", lambda: _health(run))


def _download_words() -> str:
    return (
        "not needed: every artifact is read from its best copy (the local repository "
        "first, then S3) and was authenticated from there"
    )


def _plan(run: _Run, parts: list[_Part]) -> None:
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
        lines = [line for report in part.reports for line in _report_lines(report)]
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
