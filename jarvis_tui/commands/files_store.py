"""`prune`, `repair`, `export files` and `diff`: the files store's own commands."""

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from engines.actions.verbs import Request
from engines.store.snapshots import shown
from jarvis_tui.commands.context import maintain_with_progress, open_workspace, run_with_progress
from jarvis_tui.exit_codes import ExitCode
from jarvis_tui.formatting import human_size
from jarvis_tui.output import print_json


def register(commands: argparse._SubParsersAction, words: Sequence[str] = ()) -> None:
    prune = commands.add_parser(
        "prune",
        help="remove file data no snapshot references (under the repository lock)",
        description="Remove file data no snapshot references, under the repository lock "
        "(cleanup runs it too). It deletes only what it proves unreferenced: a damaged pack, "
        "or a chunk a snapshot uses that no pack holds, stops it with exit 4 and nothing "
        "deleted; run `jarvis-tui repair`, then prune again. Then each copy destination (S3) "
        "drops what no snapshot stored there references, under the prefix's lock; one that "
        "cannot be pruned is named and the exit is 1.",
    )
    prune.add_argument(
        "--dry-run",
        action="store_true",
        help="report the packs that would be deleted or repacked; change nothing",
    )
    prune.set_defaults(handler=run_prune)

    repair = commands.add_parser(
        "repair",
        help="rebuild the files index from the packs that authenticate and salvage the "
        "readable data of damaged packs (under the repository lock)",
        description="Read every pack of the files store in full, rebuild the index from "
        "the packs that authenticate, seal the blobs of damaged packs that still "
        "authenticate into new packs and move the damaged packs to files/damaged/ (never "
        "deleted). It lists the snapshots and files still missing data (exit 4 then); "
        "prune works again afterwards.",
    )
    repair.add_argument(
        "--dry-run",
        action="store_true",
        help="report what would be salvaged, moved aside and rebuilt; change nothing",
    )
    repair.set_defaults(handler=run_repair)

    export = commands.add_parser("export", help="export a backup in a standard format")
    kinds = export.add_subparsers(dest="export_kind", metavar="KIND", required=True)
    files = kinds.add_parser("files", help="a files snapshot as a tarball (tar -xzf)")
    files.add_argument("snapshot", metavar="SNAPSHOT", help="snapshot id, `latest` or a day")
    files.add_argument("--tar", type=Path, required=True, metavar="OUT.tar.gz")
    files.set_defaults(handler=run_export_files)

    diff = commands.add_parser("diff", help="paths added, removed and changed between snapshots")
    diff.add_argument("first", metavar="SNAP_A")
    diff.add_argument("second", metavar="SNAP_B")
    diff.add_argument("--json", action="store_true")
    diff.set_defaults(handler=run_diff)


def run_prune(args: argparse.Namespace) -> ExitCode:
    report = maintain_with_progress(args, "prune")
    print(f"prune{' (dry run)' if args.dry_run else ''}: {report}")
    for problem in report.problems:
        print(f"warning: {problem}", file=sys.stderr)
    for copy in report.copies:
        print(f"prune {copy}", file=sys.stdout if copy.ok else sys.stderr)
    return ExitCode.OK if all(copy.ok for copy in report.copies) else ExitCode.FAILED


def run_repair(args: argparse.Namespace) -> ExitCode:
    """Exit 4 while some snapshot still misses data, so a script notices."""
    report = maintain_with_progress(args, "repair")
    print(f"repair{' (dry run)' if args.dry_run else ''}: {report}")
    for problem in report.problems:
        print(f"warning: {problem}", file=sys.stderr)
    for line in report.affected:
        print(f"still affected: {line}")
    if report.affected:
        print(
            "back up again to store the data of files that still exist; the snapshots listed "
            "cannot restore those files, and prune refuses until they are deleted",
            file=sys.stderr,
        )
        return ExitCode.INTEGRITY
    return ExitCode.OK


def run_export_files(args: argparse.Namespace) -> ExitCode:
    with open_workspace(args) as workspace:
        request = Request(reference=args.snapshot, output=args.tar)
        report = run_with_progress(workspace, "export-files", request)
    print(
        f"wrote {report.output}: {report.entries} entries, {human_size(report.bytes)} "
        f"from {report.snapshot}"
    )
    return ExitCode.OK


def run_diff(args: argparse.Namespace) -> ExitCode:
    with open_workspace(args) as workspace:
        request = Request(reference=args.first, second_reference=args.second)
        result = run_with_progress(workspace, "diff", request)
    if args.json:
        print_json(
            {
                "from": result.first,
                "to": result.second,
                "added": [shown(p) for p in result.added],
                "removed": [shown(p) for p in result.removed],
                "changed": [{"path": shown(p), "changes": c} for p, c in result.changed],
            }
        )
        return ExitCode.OK
    for path in result.added:
        print(f"+ {shown(path)}")
    for path in result.removed:
        print(f"- {shown(path)}")
    for path, changes in result.changed:
        print(f"M {shown(path)}  ({', '.join(changes)})")
    print(
        f"{result.first} -> {result.second}: {len(result.added)} added, "
        f"{len(result.removed)} removed, {len(result.changed)} changed"
    )
    return ExitCode.OK
