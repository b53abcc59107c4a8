"""The `jarvis-tui` command line. With no subcommand it opens the console.

Headless paths never import textual: the console is imported only when opened.
"""

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from engines.errors import JarvisError
from jarvis_tui.commands import backups, files_store, schedule, setup, sources
from jarvis_tui.exit_codes import ExitCode, exit_code_for

COMMAND_MODULES = (setup, backups, sources, files_store, schedule)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jarvis-tui",
        description="Backup and disaster recovery for the Jarvis AI platform. "
        "Run without a command to open the console.",
    )
    parser.add_argument(
        "--env-file",
        type=Path,
        help="read settings from this .env file (default: ./.env, then the config folder)",
    )
    parser.add_argument(
        "--run-scheduled",
        action="store_true",
        help="run the schedules in the foreground (for systemd); SIGTERM stops it cleanly",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(commands)
    return parser


def _open_console(args: argparse.Namespace) -> ExitCode:
    from jarvis_tui.app import run_console

    return run_console(args.env_file)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if args.run_scheduled:
        from jarvis_tui.headless import run_scheduled_command

        handler = run_scheduled_command
    try:
        code = handler(args) if handler else _open_console(args)
    except JarvisError as error:
        print(f"jarvis-tui: {error}", file=sys.stderr)
        return exit_code_for(error)
    except KeyboardInterrupt:
        print("jarvis-tui: interrupted", file=sys.stderr)
        return ExitCode.CANCELLED
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
