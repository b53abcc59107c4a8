"""`backup secrets` and `restore secrets BACKUP --to PATH`: the guide's step
"cp .../secrets/latest.json .env", done safely."""

import argparse
from pathlib import Path

from engines.sources.secrets import SecretsRestoreOptions
from jarvis_tui.commands.context import back_up_command, print_restore_report, restore_command
from jarvis_tui.exit_codes import ExitCode


def register(backup_commands: argparse._SubParsersAction, restore_commands) -> None:
    backup = backup_commands.add_parser(
        "secrets", help="store BACKUP_SECRET_FILES (.env) as encrypted artifacts"
    )
    backup.set_defaults(handler=run_backup_secrets)

    restore = restore_commands.add_parser(
        "secrets", help="write a backed-up .env (mode 0600, previous kept as PATH.bak)"
    )
    restore.add_argument("backup", metavar="BACKUP", help="backup id, `latest`, or artifact file")
    restore.add_argument(
        "--to", type=Path, metavar="PATH", help="file to write (default: where it was)"
    )
    restore.add_argument(
        "--force", action="store_true", help="replace an existing file (kept as PATH.bak)"
    )
    restore.add_argument(
        "--dry-run", action="store_true", help="show variable names and which differ; no values"
    )
    restore.add_argument("--file", metavar="NAME", help="which secret file, if the backup has more")
    restore.set_defaults(handler=run_restore_secrets)


def run_backup_secrets(args: argparse.Namespace) -> ExitCode:
    backup_set, artifacts = back_up_command(args, "secrets", None)
    print(f"backup {backup_set.id} complete")
    for artifact in artifacts:
        meta = artifact.metadata
        print(
            f"  {artifact.relpath}  {meta.get('original_path')} ({meta.get('variables')} variables)"
        )
    return ExitCode.OK


def run_restore_secrets(args: argparse.Namespace) -> ExitCode:
    options = SecretsRestoreOptions(
        to=args.to, force=args.force, dry_run=args.dry_run, file=args.file
    )
    report = restore_command(args, "secrets", args.backup, options)
    return print_restore_report(report)
