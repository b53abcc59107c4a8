"""`pitr setup`, `pitr check` and `pitr timeline`: archiving set up, confirmed, and the
window a point-in-time restore can reach (wal-push and wal-fetch are in wal.py)."""

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING

from jarvis_tui.exit_codes import ExitCode

if TYPE_CHECKING:
    from engines.pitr.timeline import TimelineWindow


def register(commands: argparse._SubParsersAction, words: Sequence[str] = ()) -> None:
    pitr = commands.add_parser(
        "pitr", help="point-in-time recovery: archive setup, check and timeline"
    )
    actions = pitr.add_subparsers(dest="pitr_command", metavar="SUBCOMMAND", required=True)
    setup = actions.add_parser(
        "setup",
        help="print (or --apply) wal_level, archive_mode, archive_command, archive_timeout",
        description="Print the archive settings, and whether PostgreSQL's account (the owner "
        "of the server's data folder) can run archive_command on this host: jarvis-tui and "
        "its Python, the env file, the repository; one line per problem naming the path and "
        "what to do. --apply writes them through ALTER SYSTEM and reloads; it refuses with "
        "exit 1, changing nothing, while that account could not run archive_command.",
    )
    setup.add_argument(
        "--apply", action="store_true", help="write them through ALTER SYSTEM and reload"
    )
    setup.add_argument(
        "--force",
        action="store_true",
        help="with --apply: apply although the check (mode bits, not ACLs) found problems",
    )
    setup.set_defaults(handler=run_pitr_setup)
    check = actions.add_parser(
        "check", help="switch WAL segments and confirm the segment reached the archive"
    )
    check.set_defaults(handler=run_pitr_check)
    timeline = actions.add_parser(
        "timeline",
        help="the window a point-in-time restore can reach, per cluster and timeline",
        description="From the end of the oldest base backup whose archived WAL is complete "
        "to the newest segment archived after it without a gap; lists gaps (missing "
        "segments) and the base backups each range depends on.",
    )
    timeline.add_argument("--json", action="store_true")
    timeline.set_defaults(handler=run_pitr_timeline)


def run_pitr_setup(args: argparse.Namespace) -> ExitCode:
    from engines.actions.pitr_setup import SetupOptions
    from engines.actions.verbs import Request
    from engines.config import find_env_file
    from engines.pitr.setup import archive_command
    from jarvis_tui.commands.context import open_workspace, run_with_progress
    from jarvis_tui.launch import jarvis_executable

    env_file = find_env_file(args.env_file)
    command = archive_command(jarvis_executable(), env_file)
    with open_workspace(args) as workspace:
        options = SetupOptions(force=args.force)
        request = Request(reference=command, dry_run=not args.apply, options=options)
        report = run_with_progress(workspace, "pitr-setup", request)
    for name, value in report.settings.items():
        print(f"{name} = {_quoted(value)}")
    for problem in report.problems:
        print(f"# problem: {problem}")
    if report.unchecked:
        print(f"# not checked that PostgreSQL's account can run it: {report.unchecked}")
    elif not report.problems:
        print(
            f"# PostgreSQL's account {report.account} can run archive_command (jarvis-tui, "
            "its Python, the env file, the repository)"
        )
    if report.previous_system_id is not None:
        print(
            f"the archive now takes WAL of cluster {report.system_id} (it took cluster "
            f"{report.previous_system_id}'s, which stays archived under its own id)"
        )
    if not report.applied:
        print("# not applied: `jarvis-tui pitr setup --apply` writes these through ALTER SYSTEM")
    elif report.restart_needed:
        print(
            f"applied; restart PostgreSQL for {' and '.join(report.restart_needed)} to take "
            "effect, then run `jarvis-tui pitr check`"
        )
    else:
        print("applied and reloaded; run `jarvis-tui pitr check` to confirm WAL arrives")
    return ExitCode.OK


def _quoted(value: str) -> str:
    return value if value.replace("_", "").isalnum() else "'" + value.replace("'", "''") + "'"


def run_pitr_check(args: argparse.Namespace) -> ExitCode:
    from engines.actions.verbs import Request
    from jarvis_tui.commands.context import open_workspace, run_with_progress

    with open_workspace(args) as workspace:
        result = run_with_progress(workspace, "pitr-check", Request())
    print(
        f"pitr check: segment {result.segment} of cluster {result.cluster.system_id} "
        f"(timeline {result.cluster.timeline}) reached the archive in {result.seconds:.1f} s"
    )
    return ExitCode.OK


def run_pitr_timeline(args: argparse.Namespace) -> ExitCode:
    from dataclasses import asdict

    from engines.actions.verbs import Request
    from jarvis_tui.commands.context import open_workspace, run_with_progress
    from jarvis_tui.output import print_json

    with open_workspace(args) as workspace:
        report = run_with_progress(workspace, "pitr-timeline", Request())
    if args.json:
        print_json(asdict(report))
    elif report.note:
        print(f"pitr timeline: {report.note}")
    for window in [] if args.json else report.windows:
        where = f"cluster {window.system_id}, timeline {window.timeline}:"
        if window.note:  # nothing archived for it: one line
            print(f"{where} {window.note}")
            continue
        print(where)
        for line in _window_lines(window):
            print(f"  {line}")
    return ExitCode.OK


def _window_lines(window: "TimelineWindow") -> list[str]:
    lines = []
    if window.switches:  # a timeline after a promotion: its ancestors' WAL up to each switch
        steps = [f"timeline {s.timeline} up to {s.lsn}" for s in window.switches]
        lines.append(f"along {', then '.join(steps)}, then timeline {window.timeline}")
    for part in window.ranges:
        since = (
            f"{part.earliest_time} (LSN {part.earliest_lsn})"
            if part.earliest_time
            else (f"LSN {part.earliest_lsn}")
        )
        lines.append(
            f"from {since} up to LSN {part.latest_lsn} (segment {part.latest_segment} "
            f"archived at {part.latest_archived_at}); base backups: {', '.join(part.base_backups)}"
        )
    for gap in window.gaps:
        lines.append(f"gap: {gap.count} segment(s) missing: {gap.span}")
    if window.unusable:
        lines.append(
            f"base backups whose own WAL is not all archived: {', '.join(window.unusable)}"
        )
    if not window.ranges:
        lines.append("no base backup here has its WAL archived; nothing to restore to")
    return lines
