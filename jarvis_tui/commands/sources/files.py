"""`backup files [--incremental]` and `restore files SNAPSHOT`: the guide's file backup and
restore-files.sh."""

import argparse
import sys
from pathlib import Path

from engines.store.backup import FilesBackupOptions, warnings_of
from engines.store.resolve import snapshot_reference
from engines.store.restore import OVERWRITE_POLICIES, FilesRestoreOptions
from jarvis_tui.commands.context import (
    back_up_command,
    open_workspace,
    print_restore_report,
    restore_with_progress,
)
from jarvis_tui.exit_codes import ExitCode
from jarvis_tui.formatting import human_size


def register(backup_commands: argparse._SubParsersAction, restore_commands) -> None:
    backup = backup_commands.add_parser(
        "files", help="snapshot BACKUP_FILE_PATHS (deduplicated, compressed, encrypted)"
    )
    backup.add_argument(
        "--incremental",
        action="store_true",
        help="skip files whose size, mtime, ctime and inode match the previous snapshot",
    )
    backup.set_defaults(handler=run_backup_files)

    restore = restore_commands.add_parser(
        "files", help="restore a files snapshot (original locations or --target-dir)"
    )
    restore.add_argument(
        "snapshot", metavar="SNAPSHOT", help="snapshot id, `latest`, or a day like files_2025-10-17"
    )
    restore.add_argument(
        "paths", nargs="*", metavar="PATH", help="only these files or folders (as backed up)"
    )
    restore.add_argument(
        "--target-dir",
        type=Path,
        metavar="DIR",
        help="restore below DIR (default: the original locations)",
    )
    restore.add_argument(
        "--strip-prefix", metavar="P", help="drop this leading folder from restored paths"
    )
    restore.add_argument(
        "--overwrite",
        choices=OVERWRITE_POLICIES,
        default="if-newer",
        help="existing files: never, if the snapshot's copy is newer (default), or always",
    )
    restore.add_argument(
        "--dry-run",
        action="store_true",
        help="list what would be created, overwritten, skipped; change nothing",
    )
    restore.add_argument(
        "--skip-missing",
        action="store_true",
        help="when some files' data cannot be read, restore the rest and list them (exit 1)",
    )
    restore.set_defaults(handler=run_restore_files)


def run_backup_files(args: argparse.Namespace) -> ExitCode:
    options = FilesBackupOptions(incremental=args.incremental)
    label = "backup files" + (" (incremental)" if args.incremental else "")
    backup_set, artifacts = back_up_command(args, "files", options, label)
    summary = artifacts[0].metadata.get("snapshot", {}) if artifacts else {}
    print(f"snapshot {backup_set.id} complete")
    print(
        f"  {summary.get('files', 0)} files, {summary.get('dirs', 0)} folders, "
        f"{human_size(summary.get('bytes', 0))}; read {summary.get('files_read', 0)} files, "
        f"new data {human_size(summary.get('new_bytes', 0))}, "
        f"stored {human_size(summary.get('stored_bytes', 0))}"
    )
    for warning in warnings_of(summary):
        print(f"warning: {warning} (see the job log)", file=sys.stderr)
    incomplete = summary.get("unreadable") or summary.get("missing")
    return ExitCode.FAILED if incomplete else ExitCode.OK


def run_restore_files(args: argparse.Namespace) -> ExitCode:
    options = FilesRestoreOptions(
        paths=tuple(args.paths),
        target_dir=args.target_dir,
        strip_prefix=args.strip_prefix,
        overwrite=args.overwrite,
        dry_run=args.dry_run,
        skip_missing=args.skip_missing,
    )
    with open_workspace(args) as workspace:
        reference = snapshot_reference(workspace, args.snapshot)
        report = restore_with_progress(workspace, "files", reference, options)
    code = print_restore_report(report)
    would = "would be " if report.dry_run else ""
    incomplete = {
        "skipped_for_safety": f"entr(ies) {would}skipped for safety",
        "unreadable": f"file(s) {would}left out because their data cannot be read",
        "failed": "entr(ies) could not be restored",
    }
    for key, what in incomplete.items():
        if report.details.get(key):
            print(f"{report.details[key]} {what} (listed above)", file=sys.stderr)
            code = ExitCode.FAILED
    return code
