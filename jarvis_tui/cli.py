"""The `jarvis-tui` command line. With no subcommand it opens the console.

Headless paths never import textual: the console is imported only when opened.
"""

import argparse
import contextlib
import logging
import os
import select
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from engines.errors import JarvisError
from engines.joblog import configure_logging, log_file
from engines.pipeline.allocator import keep_freed_memory
from engines.plumbing import paths
from engines.plumbing.os_errors import explain_os_error
from engines.plumbing.redaction import redact
from jarvis_tui.commands import modules_for
from jarvis_tui.exit_codes import ExitCode, exit_code_for

# The module registering each command, in the order `--help` lists them.
COMMAND_MODULES: dict[str, str] = {
    "demo": "jarvis_tui.commands.demo",
    "init": "jarvis_tui.commands.setup",
    "keygen": "jarvis_tui.commands.setup",
    "config": "jarvis_tui.commands.setup",
    "list": "jarvis_tui.commands.listing",
    "verify": "jarvis_tui.commands.backups",
    "decrypt": "jarvis_tui.commands.backups",
    "catalog": "jarvis_tui.commands.backups",
    "rekey": "jarvis_tui.commands.rekey",
    "backup": "jarvis_tui.commands.sources",
    "restore": "jarvis_tui.commands.sources",
    "prune": "jarvis_tui.commands.files_store",
    "export": "jarvis_tui.commands.files_store",
    "diff": "jarvis_tui.commands.files_store",
    "status": "jarvis_tui.commands.schedule",
    "cleanup": "jarvis_tui.commands.schedule",
    "health": "jarvis_tui.commands.schedule",
    "drill": "jarvis_tui.commands.schedule",
    "test": "jarvis_tui.commands.restore_test",
    "alerts": "jarvis_tui.commands.alerts",
    "sync": "jarvis_tui.commands.sync",
    "pull": "jarvis_tui.commands.pull",
    "s3": "jarvis_tui.commands.s3",
    "wal-push": "jarvis_tui.commands.wal",
    "wal-fetch": "jarvis_tui.commands.wal",
    "pitr": "jarvis_tui.commands.pitr",
    "serve": "jarvis_tui.commands.serve",
}


def _add_global_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--env-file",
        type=Path,
        help="read settings from this .env file (default: ./.env, then the config folder)",
    )
    parser.add_argument(
        "--browse",
        metavar="s3:PREFIX",
        help="browse another host's backups read-only (BACKUP_BROWSE); first "
        "`catalog rebuild --from s3 --prefix PREFIX`",
    )
    parser.add_argument(
        "--run-scheduled",
        action="store_true",
        help="run the schedules in the foreground (for systemd); SIGTERM stops it cleanly",
    )
    parser.add_argument(
        "--serve",
        metavar="HOST:PORT",
        nargs="?",
        const="127.0.0.1:4000",
        help="with --run-scheduled: also serve the REST API, as `serve` does "
        "(127.0.0.1:4000 when no address is given)",
    )


def command_words(argv: Sequence[str]) -> list[str]:
    """The leading words of a command line (`restore`, `postgres`, `latest`), global
    options skipped; none when the line does not parse (the real parser says why)."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False, exit_on_error=False)
    _add_global_options(parser)
    parser.add_argument("words", nargs="*")
    try:
        return parser.parse_known_args(argv)[0].words
    except argparse.ArgumentError:
        return []


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The parser for `argv`: with the command it names only, or with all when it names
    none, so a command imports its own modules and not every other command's."""
    parser = argparse.ArgumentParser(
        prog="jarvis-tui",
        description="Backup and disaster recovery for the Jarvis AI platform. "
        "Run without a command to open the console.",
    )
    _add_global_options(parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    words = command_words(argv)
    for module in modules_for(COMMAND_MODULES, words[0] if words else None):
        module.register(commands, words)
    return parser


def _open_console(args: argparse.Namespace) -> ExitCode:
    from jarvis_tui.app import run_console

    return run_console(args.env_file)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    keep_freed_memory()
    args = build_parser(argv).parse_args(argv)
    handler = getattr(args, "handler", None)
    if args.browse:
        # The process's setting, so the console's job processes browse the same prefix.
        os.environ["BACKUP_BROWSE"] = args.browse
    if args.run_scheduled:
        from jarvis_tui.headless import run_scheduled_command

        handler = run_scheduled_command
    try:
        code = handler(args) if handler else _open_console(args)
        if code == ExitCode.OK and getattr(args, "open_console", False):  # `demo`, once ready
            code = _open_console(args)
    except JarvisError as error:
        return _failed(error)
    except KeyboardInterrupt:
        print("jarvis-tui: interrupted", file=sys.stderr)
        return ExitCode.CANCELLED
    except BrokenPipeError as error:
        if not stdout_closed():
            return _failed(explain_os_error(error))
        # `jarvis-tui list | head -1`: the reader has what it wanted; say nothing more.
        return ExitCode.FAILED
    except OSError as error:
        return _failed(explain_os_error(error))
    except Exception as error:
        return _unexpected(error)
    return int(code)


def _failed(error: JarvisError) -> ExitCode:
    print(f"jarvis-tui: {redact(str(error))}", file=sys.stderr)
    return exit_code_for(error)


def stdout_closed() -> bool:
    """True when stdout is a pipe whose reader went away (poll reports an error on it);
    stdout then points at /dev/null, so the interpreter's last flush cannot fail again."""
    try:
        fd = sys.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        broken = any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError):
        return False
    if broken:
        os.dup2(os.open(os.devnull, os.O_WRONLY), fd)
    return broken


def _unexpected(error: Exception) -> ExitCode:
    """A bug: one line for the operator, the traceback in the log (exit 70)."""
    where = log_file()
    if where is None:
        with contextlib.suppress(Exception):
            configure_logging(paths.default_log_dir())
            where = log_file()
    summary = redact(f"{type(error).__name__}: {error}")
    if where is None:
        traceback.print_exception(error)  # nowhere else to keep it
    else:
        logging.getLogger("jarvis.cli").error("unexpected error", exc_info=error)
    detail = f"the details are in {where}" if where else "the details are above"
    print(
        f"jarvis-tui: unexpected error ({summary}); this is a bug: {detail}; "
        "please report it with that log",
        file=sys.stderr,
    )
    return ExitCode.INTERNAL


if __name__ == "__main__":
    sys.exit(main())
