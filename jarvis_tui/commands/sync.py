"""`sync`: push what each copy destination lacks (missing or failed copies)."""

import argparse
import sys
from collections.abc import Sequence

from engines.actions.verbs import VERBS, Request
from engines.destinations import copy_destinations
from jarvis_tui.commands.context import open_workspace, run_with_progress
from jarvis_tui.exit_codes import ExitCode


def register(commands: argparse._SubParsersAction, words: Sequence[str] = ()) -> None:
    sync = commands.add_parser(
        "sync",
        help="copy to every copy destination (S3) what it lacks (under the repository lock)",
        description="Compare one listing of the repository with one listing of each copy "
        "destination (S3) and push the objects missing there or of another size: packs, "
        "then index files, then artifacts, then snapshot manifests, then set records, so "
        "an interrupted sync leaves only unreferenced data. Records each artifact's copy "
        "state; a failed copy raises the S3 upload failure alert and exits 1.",
    )
    sync.add_argument(
        "--dry-run",
        action="store_true",
        help="list what would be copied to each destination; change nothing",
    )
    sync.set_defaults(handler=run_sync)


def run_sync(args: argparse.Namespace) -> ExitCode:
    with open_workspace(args) as workspace:
        VERBS["sync"].refuse_while_browsing(workspace)  # before "none configured" (none are)
        if not copy_destinations(workspace.settings):
            print("sync: no copy destination is configured (S3_ENABLED is off); nothing to do")
            return ExitCode.OK
        report = run_with_progress(workspace, "sync", Request(dry_run=args.dry_run))
    heading = "sync (dry run, nothing changed)" if report.dry_run else "sync"
    for outcome in report.outcomes:
        print(f"{heading}: {outcome.describe()}")
        if outcome.dry_run:
            for item in outcome.planned:
                print(f"  would copy {item.key} ({item.size} bytes)")
        else:
            for key in outcome.copied:
                print(f"  copied {key}")
    for outcome in report.failed:
        print(
            f"error: {outcome.destination}: {outcome.error}; the local backups are intact, "
            "run `jarvis-tui sync` again once the destination is reachable",
            file=sys.stderr,
        )
    return ExitCode.FAILED if report.failed else ExitCode.OK
