"""`wal-push` and `wal-fetch`: PostgreSQL's archive_command and restore_command, and the
detached WAL workers they start.

They run once per WAL file: they read the settings and the repository only (never the
catalog, whose writer they must not wait on), are bounded by BACKUP_WAL_PUSH_TIMEOUT, and
keep their start-up small (jarvis_tui/launch.py answers most calls before this module).
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
