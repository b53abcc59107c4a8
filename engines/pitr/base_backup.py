"""`backup postgres --mode base`: the whole cluster by pg_basebackup, one tar streamed
through the artifact pipeline (compressed, AES-256-GCM), never unencrypted on disk.

WAL: `-X fetch`. pg_basebackup cannot stream WAL (`-X stream`) when the tar goes to
stdout, and `-X none` would make every base backup useless without the WAL archive;
with `fetch` the WAL from the backup's start to its end is inside the tar, so the set
restores on its own to a consistent copy as of the backup's end, and with the archive
to any later moment. The price: that WAL must still be on the server when the backup
ends (archiving or wal_keep_size keeps it; PostgreSQL names the segment if not).

The manifest (PostgreSQL 13 and later, SHA-256 per file) is the tar's last member;
the tar is walked as it streams, so the catalog records what the backup is from the
backed-up files themselves: start/stop LSN and timeline (backup_label and the
manifest's WAL-Ranges), the system identifier (global/pg_control).
"""

from datetime import UTC, datetime
from typing import Any

import psycopg

from engines.catalog import Artifact, BackupSet
from engines.catalog.rows import BASE_MODE
from engines.errors import IntegrityError, JarvisError
from engines.jobs import JobContext
from engines.pitr.base_tar import BaseTarWalk
from engines.pitr.cluster import from_connection
from engines.postgres.connection import PostgresTarget, connect, target_from_settings
from engines.postgres.dump import stream_output
from engines.postgres.inspect import server_facts
from engines.postgres.process import RunningTool
from engines.postgres.tools import choose_tools, installed_tools, low_priority_prefix
from engines.repository.artifacts import store_artifact
from engines.workspace import Workspace

MANIFEST_SINCE = 130000  # server_version_num that first writes backup manifests
ARTIFACT_NAME = "base.tar"


class BaseBackupRefusedError(JarvisError):
    """The server cannot give a base backup as it is configured; the message says what to change."""


def back_up_base(
    workspace: Workspace, backup_set: BackupSet, database: str | None, context: JobContext
) -> Artifact:
    target = target_from_settings(workspace.settings, database)
    with connect(target) as conn:
        refuse_unless_ready(conn, target)
        facts = server_facts(conn)
        identity = from_connection(conn)
    tools = choose_tools(facts.version_num, facts.version, installed_tools())
    program = tools.bin_dir / "pg_basebackup"
    if not program.is_file():
        raise JarvisError(
            f"pg_basebackup not found beside pg_dump in {tools.bin_dir}; install the "
            f"PostgreSQL {tools.major} client tools"
        )
    argv = [*low_priority_prefix(), str(program), "-D", "-", "-Ft", "-X", "fetch"]
    argv += ["--checkpoint=fast", "--verbose", "--label=jarvis-tui base backup"]
    if facts.version_num >= MANIFEST_SINCE and tools.major >= 13:
        argv.append("--manifest-checksums=SHA256")
    context.log(
        f"{target.host}:{target.port}: PostgreSQL {facts.version}, system {identity.system_id}; "
        f"pg_basebackup {tools.version} (tar, WAL fetched into it, fast checkpoint)"
    )
    walk = BaseTarWalk()
    tool = RunningTool(argv, target.tool_environment(), name="pg_basebackup", stdout=-1)

    def metadata() -> dict[str, Any]:
        # PostgreSQL gives no finer stop time: pg_basebackup reports only the end LSN, and
        # pg_backup_stop's backup history file (`STOP TIME:`), like backup_label's START
        # TIME, is written to the second. So the stop time is this host's clock when the
        # stream ended (pg_backup_stop had returned), to the second as PostgreSQL's own; a
        # restore to a moment takes a whole-second stop time as the end of that second
        # (restore_pitr.ended_before), so a backup that ended later within the target's
        # second is never taken for one that ended before it.
        stopped = datetime.now(UTC).isoformat(timespec="seconds")
        return base_metadata(walk, target, facts.to_metadata(), tools.version, stopped)

    try:
        artifact = store_artifact(
            workspace,
            backup_set,
            context,
            source="postgres",
            mode=BASE_MODE,
            name=ARTIFACT_NAME,
            stream=walk.watch(stream_output(tool, f"base backup of {target.host}:{target.port}")),
            metadata=metadata,
        )
    finally:
        tool.stop()
    meta = artifact.metadata
    if str(meta.get("system_identifier")) != str(identity.system_id):
        raise IntegrityError(
            f"the base backup's pg_control names system {meta.get('system_identifier')}, the "
            f"server said {identity.system_id}"
        )
    context.log(
        f"base backup: {meta['file_count']} files, WAL {meta['start_lsn']} to "
        f"{meta['stop_lsn']} on timeline {meta['timeline']}"
    )
    return artifact


def base_metadata(
    walk: BaseTarWalk,
    target: PostgresTarget,
    facts: dict[str, Any],
    tool_version: str,
    stopped: str,
) -> dict[str, Any]:
    """What the catalog records, read from the tar that just streamed past (a manifest
    that disagrees with the files fails the backup)."""
    problems = walk.problems() if "backup_manifest" in walk.kept else []
    if problems:
        raise IntegrityError(f"the base backup disagrees with its manifest: {problems[0]}")
    label = walk.label()
    manifest = walk.manifest() or {}
    ranges = manifest.get("WAL-Ranges") or [{}]
    start_lsn = label.get("START WAL LOCATION", "").split(" ")[0] or ranges[0].get("Start-LSN")
    if not start_lsn or walk.system_identifier() is None:
        raise IntegrityError("the base backup holds no backup_label or pg_control")
    return {
        "content": "base",
        "format": "pg_basebackup tar",
        "wal": "fetch",
        "host": target.host,
        "port": target.port,
        "user": target.user,
        **{k: v for k, v in facts.items() if k.startswith("server_version")},
        "pg_major": int(walk.kept.get("PG_VERSION", b"0").strip() or 0),
        "pg_basebackup_version": tool_version,
        "system_identifier": walk.system_identifier(),
        "timeline": int(label.get("START TIMELINE") or ranges[-1].get("Timeline") or 1),
        "start_lsn": start_lsn,
        "stop_lsn": ranges[-1].get("End-LSN"),
        "checkpoint_lsn": label.get("CHECKPOINT LOCATION"),
        "start_time": _label_time(label.get("START TIME")),
        "stop_time": stopped,  # when the stream ended: pg_backup_stop had returned
        "manifest": bool(manifest),
        "file_count": len(walk.files),
    }


def _label_time(text: str | None) -> str | None:
    """backup_label's `2026-12-06 01:23:04 UTC` as ISO 8601 (other zones: as written)."""
    if not text:
        return None
    try:
        moment = datetime.strptime(text.replace(" UTC", ""), "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return text
    return moment.replace(tzinfo=UTC).isoformat()


def refuse_unless_ready(conn: psycopg.Connection, target: PostgresTarget) -> None:
    """One line naming what to change, before pg_basebackup starts."""
    where = f"{target.host}:{target.port}"
    wal_level, senders, may_replicate = conn.execute(
        "SELECT current_setting('wal_level'), current_setting('max_wal_senders')::int, "
        "rolsuper OR rolreplication FROM pg_roles WHERE rolname = current_user"
    ).fetchone() or ("", 0, False)
    if wal_level == "minimal":
        raise BaseBackupRefusedError(
            f"{where} runs with wal_level=minimal, which allows no base backup: set wal_level "
            "= replica (and max_wal_senders >= 2) in postgresql.conf and restart the server"
        )
    if senders < 1:
        raise BaseBackupRefusedError(
            f"{where} runs with max_wal_senders=0, which allows no base backup: set "
            "max_wal_senders = 10 in postgresql.conf and restart the server"
        )
    if not may_replicate:
        raise BaseBackupRefusedError(
            f'user "{target.user}" may not take a base backup of {where}: run ALTER ROLE '
            f'"{target.user}" REPLICATION as a superuser (and allow it a replication line '
            "in pg_hba.conf)"
        )
    spaces = [
        row[0]
        for row in conn.execute(
            "SELECT spcname FROM pg_tablespace WHERE spcname NOT IN ('pg_default', 'pg_global')"
        )
    ]
    if spaces:
        raise BaseBackupRefusedError(
            f"{where} has tablespaces outside its data folder ({', '.join(spaces)}), which a "
            "base backup into one stream cannot hold: move their tables to pg_default (ALTER "
            "TABLE ... SET TABLESPACE pg_default) and drop them, or back up by dump"
        )
