"""`wal-push`, `wal-fetch` (PostgreSQL's archive_command and restore_command) and `pitr
setup` / `pitr check`.

wal-push and wal-fetch run once per WAL file: they read the settings and the
repository only (never the catalog, whose writer they must not wait on), are bounded
by BACKUP_WAL_PUSH_TIMEOUT, and keep their start-up small.
"""

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from engines.errors import JarvisError
from jarvis_tui.exit_codes import ExitCode

if TYPE_CHECKING:
    from engines.config import Settings
    from engines.pitr.timeline import TimelineWindow

# restore_command: 1 is "not in the archive" (recovery ends there); above 125 PostgreSQL
# stops recovery instead of ending it early.
FETCH_MISSING = 1
FETCH_FAILED = 126


def register(commands: argparse._SubParsersAction, words: Sequence[str] = ()) -> None:
    push = commands.add_parser(
        "wal-push",
        help="archive one WAL file (PostgreSQL's archive_command: wal-push %%p)",
        description="Compress (BACKUP_WAL_COMPRESSION), encrypt and store one WAL segment, "
        ".partial, .history or .backup file under wal/<system id>/<timeline>/ of the "
        "repository and every copy destination. The same file again succeeds; another "
        "content under the same name fails. Exits non-zero on any failure, so PostgreSQL "
        "keeps the file and retries.",
    )
    push.add_argument("path", type=Path, help="the file (%%p)")
    # Internal: the detached worker pushing PATH (a pg_wal folder)'s ready files.
    push.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    push.set_defaults(handler=run_wal_push)
    fetch = commands.add_parser(
        "wal-fetch",
        help="restore one WAL file (PostgreSQL's restore_command: wal-fetch %%f %%p)",
        description="Write the archived file NAME to DEST once it authenticated as that "
        "file of this cluster. Exit 0 when written, 1 when it is not in the archive, 126 "
        "for any other failure (recovery stops rather than ending early).",
    )
    fetch.add_argument("name", help="the WAL file's name (%%f)")
    fetch.add_argument("dest", type=Path, help="where to write it (%%p)")
    # Internal: the detached worker prefetching for the recovery of DEST's pg_wal folder.
    fetch.add_argument("--prefetch-worker", action="store_true", help=argparse.SUPPRESS)
    fetch.set_defaults(handler=run_wal_fetch)
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


def _settings(args: argparse.Namespace) -> "Settings":
    from engines.config import load_settings
    from engines.joblog import register_secrets

    settings = load_settings(env_file=args.env_file)
    register_secrets(settings.secret_values())
    return settings


def run_wal_push(args: argparse.Namespace) -> ExitCode:
    from engines.pitr.wal_deadline import WalTimeoutError, deadline
    from engines.pitr.wal_push import push_wal
    from engines.pitr.wal_push_handover import hand_over
    from engines.pitr.wal_push_queue import env_identity, queued

    settings = _settings(args)
    if args.worker:
        from engines.pitr.wal_push_worker import run_worker

        return ExitCode(run_worker(settings, args.path.absolute(), env_identity(args.env_file)))
    try:
        if settings.backup_wal_async and queued(args.path):
            identity = env_identity(args.env_file)
            if hand_over(settings, args.path, identity, lambda w: _start_push_worker(args, w)):
                return ExitCode.OK
        with deadline(settings.backup_wal_push_timeout, f"wal-push {args.path.name}"):
            push_wal(settings, args.path)
    except WalTimeoutError as error:
        _give_up(error)
    return ExitCode.OK


def _start_push_worker(args: argparse.Namespace, pg_wal: Path) -> None:
    """The worker pushing pg_wal's ready files, detached: it outlives this call."""
    from engines.pitr.wal_worker import start_detached

    start_detached(_worker_argv(args, "wal-push", "--worker", str(pg_wal)))


def _worker_argv(args: argparse.Namespace, *words: str) -> list[str]:
    """This program with this call's env file, running `words` (a WAL worker)."""
    env_file = ["--env-file", str(args.env_file)] if args.env_file else []
    return [sys.executable, "-m", "jarvis_tui.cli", *env_file, *words]


def _give_up(error: Exception) -> NoReturn:
    """Out of time: say so and end now. An upload's worker thread may still hang on the
    network, and the interpreter's exit would wait for it; every write was already undone
    as the error went up (no temporary stays under a final name)."""
    print(f"jarvis-tui: {error}", file=sys.stderr, flush=True)
    os._exit(ExitCode.FAILED)


def run_wal_fetch(args: argparse.Namespace) -> int:
    if args.prefetch_worker:
        _run_prefetch_worker(args)
    try:
        from engines.pitr.wal_deadline import WalTimeoutError, deadline
        from engines.pitr.wal_fetch import WalMissingError, fetch_wal

        settings = _settings(args)
        with deadline(settings.backup_wal_push_timeout, f"wal-fetch {args.name}"):
            result = fetch_wal(settings, args.name, args.dest)
    except WalMissingError as missing:
        print(f"jarvis-tui: {missing}", file=sys.stderr)
        return FETCH_MISSING
    except WalTimeoutError as error:
        print(f"jarvis-tui: {error}", file=sys.stderr, flush=True)
        os._exit(FETCH_FAILED)  # as _give_up: a download's thread may hang on
    except (JarvisError, OSError, Exception) as error:  # anything else stops recovery
        from engines.plumbing.os_errors import explain_os_error
        from engines.plumbing.redaction import redact

        said = explain_os_error(error) if isinstance(error, OSError) else error
        print(f"jarvis-tui: wal-fetch {args.name}: {redact(str(said))}", file=sys.stderr)
        return FETCH_FAILED
    dest = args.dest.absolute()
    if len(args.name) == 24 and dest.parent.name == "pg_wal" and settings.backup_wal_prefetch:
        _prefetch_after(args, dest, result.system_id, len(result.fetched.data))
    return ExitCode.OK


def _prefetch_after(args: argparse.Namespace, dest: Path, system_id: int, size: int) -> None:
    """A segment of a data folder's recovery: the prefetch worker brings the next ones
    while PostgreSQL replays this one (a failure here only costs speed)."""
    from contextlib import suppress

    from engines.pitr.wal_prefetch import Position, follow

    worker = _worker_argv(args, "wal-fetch", "--prefetch-worker", args.name, str(dest))
    with suppress(OSError):
        follow(dest.parent, Position(args.name, system_id, size), worker)


def _run_prefetch_worker(args: argparse.Namespace) -> NoReturn:
    from engines.pitr.wal_prefetch_worker import run_worker

    try:
        run_worker(_settings(args), args.dest.absolute().parent)
    finally:
        os._exit(ExitCode.OK)  # detached, nobody reads its code; a fetch may hang on


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
        span = gap.first if gap.count == 1 else f"{gap.first} .. {gap.last}"
        lines.append(f"gap: {gap.count} segment(s) missing: {span}")
    if window.unusable:
        lines.append(
            f"base backups whose own WAL is not all archived: {', '.join(window.unusable)}"
        )
    if not window.ranges:
        lines.append("no base backup here has its WAL archived; nothing to restore to")
    return lines
