"""`verify`, `decrypt` and `catalog rebuild` (`list` is in listing.py)."""

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from engines.actions.verbs import Request
from jarvis_tui.commands.context import open_workspace, run_with_progress
from jarvis_tui.commands.schedule import run_verify_all
from jarvis_tui.exit_codes import ExitCode
from jarvis_tui.output import print_json


def register(commands: argparse._SubParsersAction, words: Sequence[str] = ()) -> None:
    verify = commands.add_parser("verify", help="check checksums and authenticate every chunk")
    verify.add_argument(
        "backup",
        metavar="ID|latest|PATH",
        nargs="?",
        help="backup id, `latest`, or artifact file",
    )
    verify.add_argument(
        "--all", action="store_true", help="re-read stored artifacts, least recently verified first"
    )
    verify.add_argument(
        "--sample", type=float, metavar="PERCENT", help="with --all: check this share of them"
    )
    verify.add_argument(
        "--read-data",
        action="store_true",
        help="files snapshots: also read and authenticate every chunk",
    )
    verify.add_argument("--json", action="store_true")
    verify.set_defaults(handler=run_verify)

    decrypt = commands.add_parser("decrypt", help="write an artifact's plain .gz/.zst stream")
    decrypt.add_argument(
        "artifact", metavar="ARTIFACT", help="artifact file, repository key, or backup id"
    )
    decrypt.add_argument("-o", "--output", type=Path, required=True, help="output file or folder")
    decrypt.add_argument(
        "--sql", action="store_true", help="PostgreSQL artifacts: write plain SQL as OUT.sql.gz"
    )
    decrypt.set_defaults(handler=run_decrypt)

    catalog = commands.add_parser("catalog", help="catalog maintenance")
    actions = catalog.add_subparsers(dest="catalog_command", metavar="ACTION", required=True)
    rebuild = actions.add_parser(
        "rebuild",
        help="rebuild the catalog from the metadata sealed in the repository's artifacts",
        description="Without --from: from the repository (BACKUP_DIR). With --from s3: from "
        "the copy under S3_PREFIX (a fresh host: only the settings and the key needed). With "
        "--from s3 --prefix P: another host's backups under P, into a catalog of their own, "
        "to browse read-only with `jarvis-tui --browse s3:P list|verify|restore ...`.",
    )
    rebuild.add_argument(
        "--from", dest="source", choices=("s3",), help="read the copy on S3, not BACKUP_DIR"
    )
    rebuild.add_argument(
        "--prefix", metavar="P", help="with --from s3: another host's S3_PREFIX, read-only"
    )
    rebuild.set_defaults(handler=run_catalog_rebuild)


def run_verify(args: argparse.Namespace) -> ExitCode:
    if args.all or args.sample is not None:
        if args.backup or not args.all:
            print(
                "jarvis-tui: use `verify ID|latest|PATH` or `verify --all [--sample PERCENT]`",
                file=sys.stderr,
            )
            return ExitCode.USAGE
        return run_verify_all(args)
    if args.backup is None:
        print("jarvis-tui: verify needs ID|latest|PATH, or --all", file=sys.stderr)
        return ExitCode.USAGE
    with open_workspace(args) as workspace:
        request = Request(reference=args.backup, read_data=args.read_data)
        results = run_with_progress(workspace, "verify", request)
    if args.json:
        print_json(
            [
                {
                    "artifact": r.target.label,
                    "ok": r.report.ok,
                    "problems": r.report.problems,
                    "checksum": r.report.checksum,
                }
                for r in results
            ]
        )
    else:
        for result in results:
            state = "ok" if result.report.ok else "FAILED"
            print(f"{state:6}  {result.target.label}")
            for problem in result.report.problems:
                print(f"        {problem}")
    failed = [r for r in results if not r.report.ok]
    if failed:
        print(
            f"{len(failed)} of {len(results)} artifact(s) failed verification; "
            "make a new backup and keep the failed one for investigation",
            file=sys.stderr,
        )
        return ExitCode.INTEGRITY
    return ExitCode.OK


def run_decrypt(args: argparse.Namespace) -> ExitCode:
    with open_workspace(args) as workspace:
        request = Request(reference=args.artifact, output=args.output)
        written = run_with_progress(workspace, "decrypt-sql" if args.sql else "decrypt", request)
    print(f"wrote {written}")
    return ExitCode.OK


def run_catalog_rebuild(args: argparse.Namespace) -> ExitCode:
    if args.prefix is not None and args.source != "s3":
        print(
            "jarvis-tui: --prefix names another host's S3 prefix: use --from s3 --prefix P",
            file=sys.stderr,
        )
        return ExitCode.USAGE
    browse = None if args.prefix is None else f"s3:{args.prefix}"
    with open_workspace(args, browse=browse) as workspace:
        request = Request(from_copy=args.source if browse is None else None)
        report = run_with_progress(workspace, "rebuild-catalog", request)
        catalog_path = workspace.settings.catalog_path
    print(f"imported {report.imported} artifact(s)")
    if browse is not None:
        print(f"catalog of {browse}: {catalog_path} (not this host's own)")
        print(f"browse it read-only: jarvis-tui --browse {browse} list (verify, restore, ...)")
    for relpath in report.dropped:
        print(f"dropped: {relpath} (no longer in the repository)")
    for problem in [*report.skipped, *report.refused]:
        print(f"skipped: {problem}", file=sys.stderr)
    for problem in report.forged:
        print(f"sidecar ignored: {problem}", file=sys.stderr)
    for problem in report.unlisted:
        print(f"warning: {problem}", file=sys.stderr)
    return ExitCode.INTEGRITY if report.integrity_problems else ExitCode.OK
