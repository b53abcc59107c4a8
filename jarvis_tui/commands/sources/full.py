"""`backup full` (the guide's `backup:full`): every configured source in one set; and
`restore full` (the guide's complete system restore): every part of one such set."""

import argparse
import sys

from engines.actions.verbs import Request, run_verb
from engines.jobs import JobLogged, JobUpdate
from jarvis_tui.commands.context import open_workspace, run_with_progress, warn_not_offsite
from jarvis_tui.exit_codes import ExitCode
from jarvis_tui.formatting import human_size
from jarvis_tui.output import print_json


def register(backup_commands: argparse._SubParsersAction, restore_commands) -> None:
    full = backup_commands.add_parser(
        "full",
        help="one backup set with every configured source: PostgreSQL (with globals), "
        "Redis, files, secrets, configuration",
    )
    full.add_argument("--json", action="store_true")
    full.set_defaults(handler=run_backup_full_command)

    restore = restore_commands.add_parser(
        "full",
        help="the complete system restore: check every artifact, stop the application, "
        "restore every part, compare with the backup, start, health checks",
    )
    restore.add_argument("backup", metavar="SET", help="a `backup full` set id, or `latest`")
    restore.add_argument(
        "--dry-run",
        action="store_true",
        help="authenticate everything and say what every step would do; change nothing",
    )
    restore.add_argument(
        "--app-stopped",
        action="store_true",
        help="the application is already stopped (needed when JARVIS_STOP_COMMAND is not set "
        "and no one is at the terminal to confirm it)",
    )
    restore.set_defaults(handler=run_restore_full_command)


def run_backup_full_command(args: argparse.Namespace) -> ExitCode:
    with open_workspace(args) as workspace:
        report = run_with_progress(workspace, "backup-full", Request())
        warn_not_offsite(workspace, report.backup_set.id)
    backup_set = report.backup_set
    if args.json:
        print_json(
            {
                "id": backup_set.id,
                "status": backup_set.status,
                "parts": [
                    {
                        "source": part.source,
                        "state": part.state,
                        "detail": part.detail,
                        "artifacts": [a.relpath for a in part.artifacts],
                    }
                    for part in report.parts
                ],
            }
        )
    else:
        print(f"backup {backup_set.id}: {backup_set.status}")
        for part in report.parts:
            print(f"  {part.source:9} {part.state:8} {part.detail}")
            for artifact in part.artifacts:
                print(f"      {artifact.relpath}  {human_size(artifact.stored_size)}")
    return ExitCode.OK if backup_set.status == "complete" else ExitCode.FAILED


def run_restore_full_command(args: argparse.Namespace) -> ExitCode:
    from engines.actions.restore_full import FullRestoreOptions

    with open_workspace(args) as workspace:
        app_stopped = args.app_stopped
        if not (args.dry_run or app_stopped or workspace.settings.jarvis_stop_command):
            app_stopped = _operator_confirms_stop()
            if not app_stopped:
                return ExitCode.USAGE
        options = FullRestoreOptions(dry_run=args.dry_run, app_stopped=app_stopped)
        request = Request(reference=args.backup, options=options, dry_run=args.dry_run)
        report = run_verb(workspace, "restore-full", request, listeners=(_print_steps,))
    heading = "dry run: nothing was changed" if report.dry_run else "the system is restored"
    print(f"restore full {report.set_id}: {heading}")
    by_hand = [step.title for step in report.steps if step.state == "by hand"]
    if by_hand and not report.dry_run:
        print(f"left to you: {', '.join(by_hand)} (see above)")
    return ExitCode.OK


def _print_steps(update: JobUpdate) -> None:
    """Each step as it ends, and its lines: the restore's progress, on stdout."""
    from engines.actions.full_restore_steps import DETAIL_PREFIX, STEP_PREFIX

    if isinstance(update, JobLogged) and update.message.startswith((STEP_PREFIX, DETAIL_PREFIX)):
        print(update.message, flush=True)


def _operator_confirms_stop() -> bool:
    words = (
        "JARVIS_STOP_COMMAND is not set: stop the application yourself first (the guide: "
        "`docker-compose down`)."
    )
    if not sys.stdin.isatty():
        print(
            f"jarvis-tui: {words} Then run again with --app-stopped, or set "
            "JARVIS_STOP_COMMAND; nothing was changed",
            file=sys.stderr,
        )
        return False
    print(words)
    answer = input("Is the application stopped? Type yes to go on: ").strip().lower()
    if answer != "yes":
        print("jarvis-tui: not confirmed; nothing was changed", file=sys.stderr)
        return False
    return True
