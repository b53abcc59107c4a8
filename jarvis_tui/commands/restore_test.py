"""`jarvis-tui test` (the guide's `backup:test` / `test-backup-restore.sh`)."""

import argparse
import sys
from collections.abc import Sequence

from engines.actions.verbs import Request
from jarvis_tui.commands.context import open_workspace, run_with_progress
from jarvis_tui.exit_codes import ExitCode
from jarvis_tui.output import print_json


def register(commands: argparse._SubParsersAction, words: Sequence[str] = ()) -> None:
    test = commands.add_parser(
        "test",
        help="backup:test: a fresh full backup, every part restored into scratch targets "
        "(a scratch database and redis-server, a temporary folder) and compared; exit 1 on "
        "any difference",
    )
    test.add_argument("--json", action="store_true")
    test.set_defaults(handler=run_test)


def run_test(args: argparse.Namespace) -> ExitCode:
    with open_workspace(args) as workspace:
        report = run_with_progress(workspace, "test", Request())
    failures = report.failures
    if args.json:
        print_json(
            {
                "id": report.backup_set.id,
                "status": report.backup_set.status,
                "parts": [
                    {"source": p.source, "state": p.state, "detail": p.detail} for p in report.parts
                ],
                "checks": [
                    {"artifact": c.relpath, "ok": c.ok, "detail": c.detail} for c in report.checks
                ],
                "failures": failures,
            }
        )
    else:
        print(f"backup {report.backup_set.id}: {report.backup_set.status}")
        for check in report.checks:
            print(f"  {'ok' if check.ok else 'DIFFERS':7} {check.relpath}: {check.detail}")
        for failure in failures:
            print(f"failed: {failure}", file=sys.stderr)
        verdict = "every part restored and matches" if not failures else "FAILED"
        print(f"test: {verdict}")
    return ExitCode.FAILED if failures else ExitCode.OK
