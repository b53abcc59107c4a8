"""`backup full` (the guide's `backup:full`): every configured source in one set."""

import argparse

from engines.actions.verbs import Request
from jarvis_tui.commands.context import open_workspace, run_with_progress
from jarvis_tui.exit_codes import ExitCode
from jarvis_tui.output import human_size, print_json


def register(backup_commands: argparse._SubParsersAction, restore_commands) -> None:
    full = backup_commands.add_parser(
        "full",
        help="one backup set with every configured source: PostgreSQL (with globals), "
        "Redis, files, secrets, configuration",
    )
    full.add_argument("--json", action="store_true")
    full.set_defaults(handler=run_backup_full_command)


def run_backup_full_command(args: argparse.Namespace) -> ExitCode:
    with open_workspace(args) as workspace:
        report = run_with_progress(workspace, "backup-full", Request())
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
