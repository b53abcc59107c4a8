"""`backup <source>` and `restore <source>`: each source's CLI module adds its own pair.

A source CLI module exposes `register(backup_commands, restore_commands)`; adding a
source adds one line to SOURCE_COMMANDS.
"""

import argparse

from jarvis_tui.commands.sources import config, files, full, postgres, redis, secrets

SOURCE_COMMANDS: tuple = (postgres, redis, files, secrets, config, full)


def register(commands: argparse._SubParsersAction) -> None:
    backup = commands.add_parser("backup", help="make a backup")
    backup_commands = backup.add_subparsers(dest="backup_source", metavar="SOURCE", required=True)
    restore = commands.add_parser("restore", help="restore from a backup")
    restore_commands = restore.add_subparsers(
        dest="restore_source", metavar="SOURCE", required=True
    )
    for module in SOURCE_COMMANDS:
        module.register(backup_commands, restore_commands)
