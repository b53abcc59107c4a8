"""`backup <source>` and `restore <source>`: each source's CLI module adds its own pair.

A source CLI module exposes `register(backup_commands, restore_commands)` and is
named after its kind (`sources/postgres.py` for `postgres`): every source of the
engine's registry has one, listed in the registry's order, then `full`.
"""

import argparse
from collections.abc import Sequence

from engines.sources import in_full_order
from jarvis_tui.commands import modules_for

SOURCE_COMMANDS: dict[str, str] = {
    **{entry.kind: f"{__name__}.{entry.kind}" for entry in in_full_order()},
    "full": f"{__name__}.full",
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
