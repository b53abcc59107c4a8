"""`pull [--latest | SET] [--dry-run]`: download into the repository what it lacks."""

import argparse
import sys
from collections.abc import Sequence

from engines.actions.verbs import VERBS, Request
from engines.destinations import copy_destinations
from jarvis_tui.commands.context import open_workspace, run_with_progress
from jarvis_tui.exit_codes import ExitCode


def register(commands: argparse._SubParsersAction, words: Sequence[str] = ()) -> None:
    pull = commands.add_parser(
        "pull",
        help="download from the copy destination (S3) what the repository lacks",
        description="The guide's `aws s3 sync s3://... BACKUP_DIR`, checked: compare one "
        "listing of each side and download what the repository lacks (every object, the "
        "latest complete backup set, or one set with what its files snapshot needs), each "
        "object authenticated against what the catalog expects before it is stored under "
        "its name. Restores read S3 directly without a pull; pull keeps a local copy. "
        "Exits 4 when an object does not authenticate (it is not stored), 1 when one "
        "could not be downloaded.",
    )
    which = pull.add_mutually_exclusive_group()
    which.add_argument("--latest", action="store_true", help="only the latest complete backup set")
    which.add_argument("set_id", nargs="?", metavar="SET", help="only this backup set")
    pull.add_argument(
        "--dry-run", action="store_true", help="list what would be downloaded; change nothing"
    )
    pull.set_defaults(handler=run_pull)


def run_pull(args: argparse.Namespace) -> ExitCode:
    reference = "latest" if args.latest else args.set_id
    with open_workspace(args) as workspace:
        VERBS["pull"].refuse_while_browsing(workspace)  # before "none configured" (none are)
        if not copy_destinations(workspace.settings):
            print("pull: no copy destination is configured (S3_ENABLED is off); nothing to do")
            return ExitCode.OK
        request = Request(reference=reference, dry_run=args.dry_run)
        report = run_with_progress(workspace, "pull", request)
    sources = ", ".join(report.sources)
    plan = report.plan
    if report.dry_run:
        print(
            f"pull (dry run, nothing changed): would download {len(plan.items)} object(s), "
            f"{plan.bytes} bytes, of {report.scope} from {sources}"
        )
        for item in plan.items:
            print(f"  would pull {item.key} ({item.size} bytes)")
    elif report.outcome is None:
        print(f"pull: nothing to download, the repository holds {report.scope} already")
    else:
        outcome = report.outcome
        print(
            f"pull: downloaded {len(outcome.pulled)} object(s), {outcome.pulled_bytes} bytes, "
            f"of {report.scope} from {sources}"
        )
        for key in outcome.pulled:
            print(f"  pulled {key}")
    for key, why in plan.ignored:
        print(
            f"warning: {key!r} on {sources} is not a repository key ({why}); left there",
            file=sys.stderr,
        )
    for key in plan.absent:
        print(f"warning: {key} is in no copy ({sources}) nor in the repository", file=sys.stderr)
    for key, why in report.refused:
        print(f"error: {key} was not stored: {why}", file=sys.stderr)
    for key, why in report.failed:
        print(f"error: {key} was not downloaded: {why}", file=sys.stderr)
    if report.failed:
        print("run `jarvis-tui pull` again to retry what was not downloaded", file=sys.stderr)
    if report.refused:
        return ExitCode.INTEGRITY
    return ExitCode.FAILED if report.failed or plan.absent else ExitCode.OK
