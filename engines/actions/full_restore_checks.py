"""What `restore full` checks around the restores: before, every artifact of the set
authenticated end to end and each part's own dry run (any problem refuses the restore
before it changes anything); after, what each target holds compared with the backup's
metadata (`Source.check_restored`) and the health checks of the restored system."""

from dataclasses import dataclass, field

from engines.actions.full_restore_steps import DETAIL_PREFIX, StepRun, said
from engines.actions.restore import run_restore
from engines.actions.verify import verify_backup
from engines.catalog import Artifact, BackupSet
from engines.errors import IntegrityError, JarvisError, JobCancelledError
from engines.monitoring.health import check_key, check_repository, check_sources
from engines.reports import RestoreReport
from engines.repository.resolve import resolve_artifacts
from engines.sources import SourceEntry, in_full_order
from engines.workspace import Workspace


@dataclass
class Part:
    """One source's artifacts in the set, and the reports of its restores (or dry runs)."""

    entry: SourceEntry
    artifacts: list[Artifact]
    reports: list[RestoreReport] = field(default_factory=list)


def parts_of(workspace: Workspace, backup_set: BackupSet) -> list[Part]:
    artifacts = [a for a in workspace.catalog.artifacts_of(backup_set.id) if a.status == "complete"]
    parts = []
    for entry in in_full_order():
        held = [a for a in artifacts if a.source == entry.kind]
        if held:
            parts.append(Part(entry, held))
    if not parts:
        raise JarvisError(f"backup {backup_set.id} holds no complete artifact; nothing to restore")
    return parts


def left_out(workspace: Workspace, parts: list[Part]) -> list[str]:
    held = {part.entry.kind for part in parts}
    return [
        f"{entry.label}: not in this backup, left as it is"
        for entry in in_full_order()
        if entry.kind not in held and entry.source.configured(workspace.settings) is None
    ]


def check_everything(run: StepRun, backup_set: BackupSet, parts: list[Part]) -> list[str]:
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
        raise said(
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


def report_lines(report: RestoreReport) -> list[str]:
    """A part's report as step lines: the target named once, on the first."""
    return [
        f"{report.target}: {line}" if number == 0 else line
        for number, line in enumerate(report.lines)
    ] + [f"warning: {warning}" for warning in report.warnings]


def compare_restored(run: StepRun, backup_set: BackupSet, parts: list[Part]) -> list[str]:
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


def health_lines(run: StepRun) -> list[str]:
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
