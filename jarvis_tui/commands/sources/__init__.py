"""`backup <source>` and `restore <source>`: each source's CLI module adds its own pair.

A source CLI module exposes `register(backup_commands, restore_commands)`; adding a
source adds one line to SOURCE_COMMANDS.
"""

import argparse
from collections.abc import Sequence

from jarvis_tui.commands import modules_for

SOURCE_COMMANDS: dict[str, str] = {
    "postgres": "jarvis_tui.commands.sources.postgres",
    "redis": "jarvis_tui.commands.sources.redis",
    "files": "jarvis_tui.commands.sources.files",
    "secrets": "jarvis_tui.commands.sources.secrets",
    "config": "jarvis_tui.commands.sources.config",
    "full": "jarvis_tui.commands.sources.full",
}


def register(commands: argparse._SubParsersAction, words: Sequence[str] = ()) -> None:
    backup = commands.add_parser("backup", help="make a backup")
    backup_commands = backup.add_subparsers(dest="backup_source", metavar="SOURCE", required=True)
    restore = commands.add_parser("restore", help="restore from a backup")
    restore_commands = restore.add_subparsers(
        dest="restore_source", metavar="SOURCE", required=True
    )
    command, source = (*words, None, None)[:2]
    loaded = modules_for(SOURCE_COMMANDS, source)
    for module in loaded:
        module.register(backup_commands, restore_commands)
    named = {"backup": backup_commands, "restore": restore_commands}.get(command)
    if named is not None and source not in named.choices:
        # `restore full`, say: every source, so that argparse's error lists them all.
        for module in modules_for(SOURCE_COMMANDS, None):
            if module not in loaded:
                module.register(backup_commands, restore_commands)
