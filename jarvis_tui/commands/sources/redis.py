"""`backup redis` and `restore redis`: the guide's backup- and restore-redis.sh."""

import argparse
from pathlib import Path

from engines.redis.options import RedisBackupOptions, RedisRestoreOptions
from jarvis_tui.commands.context import back_up_command, print_restore_report, restore_command
from jarvis_tui.exit_codes import ExitCode
from jarvis_tui.formatting import human_size


def register(backup_commands: argparse._SubParsersAction, restore_commands) -> None:
    backup = backup_commands.add_parser(
        "redis", help="RDB snapshot (over replication) and a TTL-keeping JSON export"
    )
    backup.add_argument(
        "--output", type=Path, metavar="PATH", help="also copy the artifacts and sidecars here"
    )
    backup.set_defaults(handler=run_backup_redis)

    restore = restore_commands.add_parser(
        "redis", help="restore a Redis backup into a running server"
    )
    restore.add_argument("backup", metavar="BACKUP", help="backup id, `latest`, or artifact file")
    restore.add_argument(
        "--dry-run", action="store_true", help="authenticate, count, list conflicts; change nothing"
    )
    restore.add_argument(
        "--flush",
        action="store_true",
        help="empty the target databases first (only after the backup loaded successfully)",
    )
    restore.add_argument(
        "--from-json", action="store_true", help="restore the JSON export instead of the RDB"
    )
    restore.add_argument("--db", type=int, metavar="N", help="restore only database N")
    restore.add_argument(
        "--replace", action="store_true", help="overwrite keys that exist on the target"
    )
    restore.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="offline: place the RDB as DIR/dump.rdb for a stopped server",
    )
    restore.set_defaults(handler=run_restore_redis)


def run_backup_redis(args: argparse.Namespace) -> ExitCode:
    options = RedisBackupOptions(output=args.output)
    backup_set, artifacts = back_up_command(args, "redis", options)
    print(f"backup {backup_set.id} complete")
    for artifact in artifacts:
        meta = artifact.metadata
        keys = f", {meta['keys']} keys" if "keys" in meta else ""
        print(f"  {artifact.relpath}  {human_size(artifact.stored_size)}{keys}")
        if meta.get("rdb_snapshot") not in (None, "stored"):
            print(f"  no RDB snapshot: {meta['rdb_snapshot']}")
    return ExitCode.OK


def run_restore_redis(args: argparse.Namespace) -> ExitCode:
    options = RedisRestoreOptions(
        dry_run=args.dry_run,
        flush=args.flush,
        from_json=args.from_json,
        db=args.db,
        replace=args.replace,
        data_dir=args.data_dir,
    )
    report = restore_command(args, "redis", args.backup, options)
    return print_restore_report(report)
