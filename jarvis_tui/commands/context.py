"""What every subcommand starts from: settings loaded once, logging, the workspace."""

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from engines.actions.verbs import VERBS, Request, run_verb
from engines.config import Settings, load_settings
from engines.joblog import configure_logging, register_secrets
from engines.jobs import JobFinished, JobProgressed, JobUpdate
from engines.workspace import Workspace
from jarvis_tui.exit_codes import ExitCode
from jarvis_tui.progress_line import progress_line

if TYPE_CHECKING:
    from engines.catalog import Artifact, BackupSet
    from engines.sources.base import RestoreReport


def settings_from(args: argparse.Namespace, browse: str | None = None) -> Settings:
    """The settings; with `browse` (`s3:PREFIX`), browsing that prefix (BACKUP_BROWSE)."""
    environ = None if browse is None else {**os.environ, "BACKUP_BROWSE": browse}
    settings = load_settings(environ, env_file=args.env_file)
    register_secrets(settings.secret_values())
    return settings


def open_workspace(args: argparse.Namespace, browse: str | None = None) -> Workspace:
    settings = settings_from(args, browse)
    configure_logging(settings.log_dir)
    workspace = Workspace.open(settings)
    workspace.catalog.mark_orphaned_jobs()
    return workspace


def run_with_progress(workspace: Workspace, name: str, request: Request) -> Any:
    """The verb `name` (engines.actions.verbs) as its catalogued job, its progress on stderr
    (a bar on a terminal, plain lines when piped); a verb that is no job just runs."""
    job = VERBS[name].job(request)
    if job is None:
        return run_verb(workspace, name, request)
    progress = progress_line(job[1])
    ended: list[str] = []

    def on_update(update: JobUpdate) -> None:
        if isinstance(update, JobProgressed):
            progress.update(update.done, update.total, update.unit)
        elif isinstance(update, JobFinished):
            ended.append(update.status)

    try:
        return run_verb(workspace, name, request, listeners=(on_update,))
    finally:
        # Also on Ctrl-C: the bar ends on its own line before `interrupted` is printed.
        progress.finish(ended[-1] if ended else None)


def print_restore_report(report: "RestoreReport") -> ExitCode:
    """Print the report; a dry run that foresees a refusal exits non-zero, as the restore would."""
    heading = "dry run: nothing was changed" if report.dry_run else "restore finished"
    if report.refusal:
        heading += "; the restore would be refused"
    print(f"{report.source} → {report.target}: {heading}")
    for line in report.lines:
        print(f"  {line}")
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return ExitCode.FAILED if report.refusal else ExitCode.OK


def back_up_with_progress(
    workspace: Workspace, kind: str, options: Any, label: str | None = None
) -> "BackupSet":
    """`backup <kind>` as a catalogued job with a progress line."""
    return run_with_progress(workspace, "backup", Request(kind=kind, options=options, label=label))


def back_up_command(
    args: argparse.Namespace, kind: str, options: Any, label: str | None = None
) -> tuple["BackupSet", list["Artifact"]]:
    """`backup <kind>`: the set made, as a catalogued job, and the artifacts it holds."""
    with open_workspace(args) as workspace:
        backup_set = back_up_with_progress(workspace, kind, options, label)
        warn_not_offsite(workspace, backup_set.id)
        return backup_set, workspace.catalog.artifacts_of(backup_set.id)


def warn_not_offsite(workspace: Workspace, set_id: str) -> None:
    """A backup stored here but not on every copy destination says so (the upload's
    alert went out too): no silent success of the off-site copy."""
    from engines.repository.whereabouts import copy_destination_names, set_places

    destinations = copy_destination_names(workspace.settings)
    if not destinations:
        return
    places = set_places(workspace.catalog, [set_id], destinations)[set_id]
    for destination in destinations:
        gaps = places.gaps(destination)
        if gaps and places.artifacts:
            print(
                f"warning: backup {set_id} is stored here but not yet on {destination} "
                f"({gaps[0].removeprefix(destination + ': ')}"
                f"{f', and {len(gaps) - 1} more' if len(gaps) > 1 else ''}); "
                "`jarvis-tui sync` retries",
                file=sys.stderr,
            )


def restore_command(
    args: argparse.Namespace, kind: str, reference: str, options: Any
) -> "RestoreReport":
    """`restore <kind> REFERENCE`, as a catalogued job."""
    with open_workspace(args) as workspace:
        return restore_with_progress(workspace, kind, reference, options)


def maintain_with_progress(args: argparse.Namespace, name: str) -> Any:
    """A repository upkeep verb (`prune`, `repair`, `rekey`) with its `--dry-run`, as a job."""
    with open_workspace(args) as workspace:
        return run_with_progress(workspace, name, Request(dry_run=args.dry_run))


def restore_with_progress(
    workspace: Workspace, kind: str, reference: str, options: Any
) -> "RestoreReport":
    """`restore <kind> REFERENCE` as a catalogued job with a progress line."""
    return run_with_progress(
        workspace, "restore", Request(kind=kind, reference=reference, options=options)
    )
