"""`demo`: start the demo platform and open the console on it; `demo --stop` removes it."""

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from engines.demo.platform import DemoPlatform, demo_folder, start_demo, stop_demo
from engines.demo.postgres_data import DATABASE
from engines.demo.settings_file import clear_overrides, overriding_variables
from engines.plumbing.paths import default_demo_dir
from jarvis_tui.exit_codes import ExitCode


def register(commands: argparse._SubParsersAction, words: Sequence[str] = ()) -> None:
    demo = commands.add_parser(
        "demo",
        help="start a throwaway Jarvis platform (PostgreSQL, Redis, files) and open the "
        "console on it; --stop removes it",
    )
    demo.add_argument(
        "--dir",
        type=Path,
        metavar="FOLDER",
        help=f"the demo's folder (default: {default_demo_dir()})",
    )
    what = demo.add_mutually_exclusive_group()
    what.add_argument(
        "--no-console", action="store_true", help="start it and say how to open the console"
    )
    what.add_argument(
        "--stop",
        action="store_true",
        help="stop its servers and remove its folder, backups and all",
    )
    demo.set_defaults(handler=run_demo)


def _command(args: argparse.Namespace, *words: str) -> str:
    folder = ["--dir", str(demo_folder(args.dir))] if args.dir else []
    return shlex.join(["jarvis-tui", *words, *folder])


def run_demo(args: argparse.Namespace) -> ExitCode:
    if args.stop:
        removed = stop_demo(args.dir)
        if removed is None:
            print(f"no demo platform in {demo_folder(args.dir)}: nothing to stop")
        else:
            servers = "stopped its servers and " if removed.stopped else ""
            print(f"demo platform: {servers}removed {removed.folder}")
        return ExitCode.OK
    platform = start_demo(args.dir, progress=lambda line: print(f"demo: {line}", file=sys.stderr))
    _describe(platform, args)
    if args.no_console:
        print(
            f"open the console on it:  jarvis-tui --env-file {shlex.quote(str(platform.env_file))}"
        )
        for name in overriding_variables():
            print(
                f"note: {name} is set in this shell and wins over the demo's settings; "
                "unset it before opening the console on the demo",
                file=sys.stderr,
            )
    else:
        # The console and its jobs read the demo's settings, whatever this shell sets.
        clear_overrides()
        args.env_file = platform.env_file
        args.open_console = True
    return ExitCode.OK


def _describe(platform: DemoPlatform, args: argparse.Namespace) -> None:
    if platform.already_running:
        print(f"the demo platform is already running in {platform.folder}")
    elif platform.restarted:
        print(
            "the demo's servers had stopped: started new ones with fresh demo data "
            "(the demo's backups and key are kept)"
        )
    else:
        print(f"demo platform ready in {platform.seconds:.1f} s, in {platform.folder}")
    print(
        f"  PostgreSQL  127.0.0.1:{platform.postgres_port}  database {DATABASE} (users, "
        "conversations, messages, tracks)"
    )
    print(f"  Redis       127.0.0.1:{platform.redis_port}  sessions, queues, playback events")
    print(f"  files       {platform.folder / 'jarvis'}  music, the app's .env, config/")
    print(f"  settings    {platform.env_file}")
    print(f"remove it:  {_command(args, 'demo', '--stop')}")
