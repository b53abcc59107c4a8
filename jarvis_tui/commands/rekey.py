"""`rekey`: seal what a previous key sealed again under the current key."""

import argparse
from collections.abc import Sequence

from engines.keys import PREVIOUS_VARIABLE
from jarvis_tui.commands.context import maintain_with_progress
from jarvis_tui.exit_codes import ExitCode


def register(commands: argparse._SubParsersAction, words: Sequence[str] = ()) -> None:
    parser = commands.add_parser(
        "rekey",
        help="seal every artifact made under a previous key again under the current key",
        description="After `keygen --rotate`: seal every artifact made under a previous "
        f"key (kept in {PREVIOUS_VARIABLE}) again under the current key, each checked, "
        "written beside, read back and renamed. Then say what still needs an old key "
        f"(files store packs of snapshots made before the rotation) or that {PREVIOUS_VARIABLE} "
        "can go. Exit 5 when a key it needs is missing, 4 when an artifact is damaged.",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="list what would be sealed again; change nothing"
    )
    parser.set_defaults(handler=run_rekey)


def run_rekey(args: argparse.Namespace) -> ExitCode:
    report = maintain_with_progress(args, "rekey")
    verb = "would seal again" if report.dry_run else "sealed again"
    for relpath in report.rekeyed:
        print(f"{verb}  {relpath}")
    print(f"{len(report.rekeyed)} artifact(s) {verb} under key id {report.current_key_id}")
    if report.remaining:
        keys = ", ".join(sorted(report.old_key_ids))
        wal = sum(key.startswith("wal/") for key, _ in report.remaining)
        if len(report.remaining) > wal:
            print(
                f"still under an old key: {len(report.remaining) - wal} files store object(s) "
                f"(packs and index files of files snapshots made before the rotation; key id "
                f"{keys}): keep that key in {PREVIOUS_VARIABLE} until those snapshots are pruned"
            )
        if wal:
            print(
                f"still under an old key: {wal} archived WAL file(s) (key id {keys}): keep that "
                f"key in {PREVIOUS_VARIABLE} until cleanup has removed them with the base "
                "backups that need them"
            )
    elif not report.dry_run:
        print(f"nothing needs an old key any more: it can be removed from {PREVIOUS_VARIABLE}")
    return ExitCode.OK
