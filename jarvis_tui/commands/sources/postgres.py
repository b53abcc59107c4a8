"""`backup postgres` and `restore postgres`: the guide's backup- and restore-postgres.sh."""

import argparse
import os
from pathlib import Path

from engines.catalog import LATEST
from engines.pitr.restore_target import (
    ACTIONS,
    DEFAULT_ACTION,
    DEFAULT_START_TIMEOUT_S,
    PitrTarget,
    StartRequest,
)
from engines.postgres.options import MODES, PostgresBackupOptions, PostgresRestoreOptions
from jarvis_tui.commands.context import back_up_command, print_restore_report, restore_command
from jarvis_tui.exit_codes import ExitCode
from jarvis_tui.formatting import human_size
from jarvis_tui.pitr_choices import TARGET_OPTIONS, pitr_target, start_request


def register(backup_commands: argparse._SubParsersAction, restore_commands) -> None:
    backup = backup_commands.add_parser(
        "postgres", help="dump a PostgreSQL database (custom format, compressed, encrypted)"
    )
    backup.add_argument(
        "--mode",
        choices=MODES,
        default="full",
        help="default: full; base: the whole cluster by pg_basebackup (point-in-time recovery)",
    )
    backup.add_argument("--database", help="database to dump (default: POSTGRES_DB / DATABASE_URL)")
    backup.add_argument(
        "--output", type=Path, metavar="PATH", help="also copy the artifact and sidecar here"
    )
    backup.add_argument(
        "--verify-restore",
        action="store_true",
        default=None,
        help="restore into a scratch database and compare; a base backup: lay it out into a "
        "scratch folder and check it (also VERIFY_RESTORE=true)",
    )
    backup.set_defaults(handler=run_backup_postgres)

    restore = restore_commands.add_parser(
        "postgres", help="restore a PostgreSQL backup safely (scratch database, check, swap)"
    )
    restore.add_argument(
        "backup",
        metavar="BACKUP",
        nargs="?",
        help="backup id, `latest`, or artifact file (with --pitr: default, the newest base "
        "backup that ended before the target)",
    )
    restore.add_argument(
        "--dry-run",
        action="store_true",
        help="authenticate and report what would be restored; change nothing",
    )
    restore.add_argument(
        "--drop-existing",
        action="store_true",
        help="replace a non-empty target (the previous one is kept as NAME_pre_restore_TIME)",
    )
    restore.add_argument(
        "--discard-previous",
        action="store_true",
        help="with --drop-existing: drop the previous database after a successful swap",
    )
    restore.add_argument(
        "--target-db", metavar="NAME", help="restore under this name (default: POSTGRES_DB)"
    )
    restore.add_argument(
        "--table",
        dest="tables",
        action="append",
        default=[],
        metavar="TABLE",
        help="restore only this table (repeatable; `name` or `schema.name`)",
    )
    restore.add_argument(
        "--jobs",
        type=int,
        default=len(os.sched_getaffinity(0)),
        metavar="N",
        help="parallel COPY connections and pg_restore jobs (default: number of cores)",
    )
    restore.add_argument(
        "--with-globals",
        action="store_true",
        help="also recreate roles and tablespaces (existing ones are left as they are)",
    )
    restore.add_argument(
        "--no-owner",
        action="store_true",
        help="leave out the backup's owners: everything restored belongs to POSTGRES_USER "
        "(for a server without the backup's roles)",
    )
    restore.add_argument(
        "--no-acl",
        action="store_true",
        help="leave out the backup's grants (for a server without the roles they name)",
    )
    restore.add_argument(
        "--pgdata",
        type=Path,
        metavar="DIR",
        help="a base backup (--mode base): lay it out into this empty data folder",
    )
    _register_pitr(restore)
    restore.set_defaults(handler=run_restore_postgres)


def run_backup_postgres(args: argparse.Namespace) -> ExitCode:
    options = PostgresBackupOptions(
        mode=args.mode,
        database=args.database,
        output=args.output,
        verify_restore=args.verify_restore,
    )
    backup_set, artifacts = back_up_command(
        args, "postgres", options, f"backup postgres ({args.mode})"
    )
    print(f"backup {backup_set.id} complete")
    for artifact in artifacts:
        meta = artifact.metadata
        tables = f", {meta['table_count']} tables" if "table_count" in meta else ""
        if meta.get("content") == "base":
            tables = f", WAL {meta['start_lsn']} to {meta['stop_lsn']}, timeline {meta['timeline']}"
        print(f"  {artifact.relpath}  {human_size(artifact.stored_size)}{tables}")
    return ExitCode.OK


def _register_pitr(restore: argparse.ArgumentParser) -> None:
    restore.add_argument(
        "--pitr",
        action="store_true",
        help="point-in-time recovery into --pgdata: a base backup, then archived WAL to the target",
    )
    targets = restore.add_mutually_exclusive_group()
    targets.add_argument(
        "--target-time", metavar="TIME", help='with --pitr: a moment, "2026-11-27 14:03:00+00"'
    )
    targets.add_argument(
        "--target-lsn", metavar="LSN", help="with --pitr: a WAL position, 0/3000148"
    )
    targets.add_argument(
        "--target-xid", metavar="XID", help="with --pitr: a transaction id (txid_current())"
    )
    targets.add_argument(
        "--target-name",
        metavar="NAME",
        help="with --pitr: a restore point (pg_create_restore_point)",
    )
    targets.add_argument(
        "--target", choices=("immediate",), help="with --pitr: the base backup's end"
    )
    restore.add_argument(
        "--target-action",
        choices=ACTIONS,
        default=DEFAULT_ACTION,
        help="with --pitr: once there (default: promote, unlike PostgreSQL's pause)",
    )
    restore.add_argument(
        "--target-timeline",
        type=int,
        metavar="N",
        help="with --pitr: recover along timeline N (default: the newest archived timeline "
        "whose history holds the base backup; `pitr timeline` lists them)",
    )
    restore.add_argument(
        "--start",
        action="store_true",
        help="with --pitr: start PostgreSQL on the restored folder (as the folder's owner) and "
        "wait until recovery reached the target; exit 7 when the archived WAL ends before it, "
        "1 when recovery stops otherwise or takes longer than --start-timeout",
    )
    restore.add_argument(
        "--port", type=int, metavar="N", help="with --start: the port the restored server takes"
    )
    restore.add_argument(
        "--start-timeout",
        type=float,
        default=DEFAULT_START_TIMEOUT_S,
        metavar="SECONDS",
        help=f"with --start: seconds to wait (default {DEFAULT_START_TIMEOUT_S:.0f})",
    )


def _pitr_target(args: argparse.Namespace) -> PitrTarget | None:
    targets = {kind: getattr(args, option) for kind, option in TARGET_OPTIONS.items()}
    return pitr_target(
        pitr=args.pitr,
        targets=targets,
        action=args.target_action,
        timeline=args.target_timeline,
        pgdata=args.pgdata,
        backup=args.backup,
        env_file=args.env_file,
    )


def _start_request(args: argparse.Namespace) -> StartRequest | None:
    return start_request(
        start=args.start, port=args.port, timeout_s=args.start_timeout, pitr=args.pitr
    )


def run_restore_postgres(args: argparse.Namespace) -> ExitCode:
    pitr = _pitr_target(args)
    start = _start_request(args)
    options = PostgresRestoreOptions(
        dry_run=args.dry_run,
        drop_existing=args.drop_existing,
        discard_previous=args.discard_previous,
        target_db=args.target_db,
        tables=tuple(args.tables),
        jobs=args.jobs,
        with_globals=args.with_globals,
        no_owner=args.no_owner,
        no_acl=args.no_acl,
        pgdata=args.pgdata,
        pitr=pitr,
        start=start,
    )
    report = restore_command(args, "postgres", args.backup or LATEST, options)
    return print_restore_report(report)
