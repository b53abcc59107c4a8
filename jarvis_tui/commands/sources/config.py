"""`backup config` and `restore config BACKUP`: the application's configuration files."""

import argparse
import sys
from pathlib import Path

from engines.sources import get_source
from engines.sources.config_files import ConfigRestoreOptions
from jarvis_tui.commands.context import back_up_command, print_restore_report, restore_command
from jarvis_tui.exit_codes import ExitCode
from jarvis_tui.formatting import human_size


def register(backup_commands: argparse._SubParsersAction, restore_commands) -> None:
    backup = backup_commands.add_parser(
        "config", help="store BACKUP_CONFIG_PATHS as one encrypted tarball"
    )
    backup.set_defaults(handler=run_backup_config)

    restore = restore_commands.add_parser(
        "config", help="put configuration files back (differing ones only with --force)"
    )
    restore.add_argument("backup", metavar="BACKUP", help="backup id, `latest`, or artifact file")
    restore.add_argument(
        "--target-dir", type=Path, metavar="DIR", help="restore below DIR (default: where it was)"
    )
    restore.add_argument(
        "--force", action="store_true", help="replace differing files (each kept as NAME.bak)"
    )
    restore.add_argument("--dry-run", action="store_true", help="list what would change")
    restore.set_defaults(handler=run_restore_config)


def run_backup_config(args: argparse.Namespace) -> ExitCode:
    backup_set, artifacts = back_up_command(args, "config", None)
    print(f"backup {backup_set.id} complete")
    for artifact in artifacts:
        files = artifact.metadata.get("files", 0)
        print(f"  {artifact.relpath}  {files} files, {human_size(artifact.stored_size)}")
    left_out = get_source("config").left_out(artifacts)
    for line in left_out:
        print(f"warning: {line} (see the job log)", file=sys.stderr)
    return ExitCode.FAILED if left_out else ExitCode.OK


def run_restore_config(args: argparse.Namespace) -> ExitCode:
    options = ConfigRestoreOptions(
        target_dir=args.target_dir, force=args.force, dry_run=args.dry_run
    )
    report = restore_command(args, "config", args.backup, options)
    code = print_restore_report(report)
    skipped = report.details.get("skipped_for_safety")
    if skipped:
        would = "would be " if report.dry_run else ""
        print(f"{skipped} entr(ies) {would}skipped for safety (listed above)", file=sys.stderr)
        code = ExitCode.FAILED
    return code
