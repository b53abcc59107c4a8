"""What every subcommand starts from: settings loaded once, logging, the workspace."""

import argparse
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from engines.actions.backup import run_backup
from engines.actions.restore import run_restore
from engines.catalog import BackupSet
from engines.config import Settings, load_settings
from engines.joblog import configure_logging, register_secrets
from engines.jobs import JobContext, JobProgressed, JobUpdate
from engines.sources.base import RestoreReport
from engines.workspace import Workspace
from jarvis_tui.exit_codes import ExitCode
from jarvis_tui.output import TerminalProgress

T = TypeVar("T")


def settings_from(args: argparse.Namespace) -> Settings:
    settings = load_settings(env_file=args.env_file)
    register_secrets(settings.secret_values())
    return settings


def open_workspace(args: argparse.Namespace) -> Workspace:
    settings = settings_from(args)
    configure_logging(settings.log_dir)
    workspace = Workspace.open(settings)
    workspace.catalog.mark_orphaned_jobs()
    return workspace


def run_with_progress(
    workspace: Workspace, kind: str, description: str, work: Callable[[JobContext], T]
) -> T:
    """Run `work` as a catalogued job, drawing a progress line when stderr is a terminal."""
    progress = TerminalProgress(description)

    def on_update(update: JobUpdate) -> None:
        if isinstance(update, JobProgressed):
            progress.update(update.done, update.total)

    try:
        return workspace.run_job(kind, description, work, listeners=(on_update,))
    finally:
        progress.finish()


def print_restore_report(report: RestoreReport) -> ExitCode:
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
) -> BackupSet:
    """`backup <kind>` as a catalogued job with a progress line."""
    return run_with_progress(
        workspace,
        "backup",
        label or f"backup {kind}",
        lambda ctx: run_backup(workspace, kind, options, ctx),
    )


def maintain_with_progress(
    args: argparse.Namespace,
    kind: str,
    description: str,
    action: Callable[..., T],
) -> T:
    """A repository upkeep verb (`prune`, `repair`, `rekey`) with its `--dry-run`, as a job."""
    suffix = " (dry run)" if args.dry_run else ""
    with open_workspace(args) as workspace:
        return run_with_progress(
            workspace,
            kind,
            description + suffix,
            lambda ctx: action(workspace, ctx, dry_run=args.dry_run),
        )


def restore_with_progress(
    workspace: Workspace, kind: str, reference: str, options: Any
) -> RestoreReport:
    """`restore <kind> REFERENCE` as a catalogued job with a progress line."""
    dry_run = " (dry run)" if getattr(options, "dry_run", False) else ""
    return run_with_progress(
        workspace,
        "restore",
        f"restore {kind} {reference}{dry_run}",
        lambda ctx: run_restore(workspace, kind, reference, options, ctx),
    )
