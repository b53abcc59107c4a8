"""`rekey`: seal what a previous key sealed again under the current key."""

import argparse
import sys
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
        "written beside, read back and renamed; archived WAL too, on the repository and "
        "every copy destination, each file replaced whole. Then say what still needs an old "
        f"key (files store packs of snapshots made before the rotation) or that "
        f"{PREVIOUS_VARIABLE} can go. Exit 5 when a key it needs is missing, 4 when an "
        "artifact is damaged, 1 when a destination kept some archived WAL from being sealed "
        "again (it still reads under the old key; run rekey again).",
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
                f"key in {PREVIOUS_VARIABLE} and run rekey again (WAL pushed meanwhile under "
                "the old key: give the archiver's env file the new key)"
            )
    elif not report.dry_run:
        print(f"nothing needs an old key any more: it can be removed from {PREVIOUS_VARIABLE}")
    for problem in report.problems:
        print(problem, file=sys.stderr)
    return ExitCode.FAILED if report.problems else ExitCode.OK
