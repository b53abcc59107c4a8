"""The restore drill of Redis artifacts: restored into a scratch `redis-server` (unix
socket only, private folder, dies with us) and its keys counted against the backup.

RDB: the snapshot is loaded by the scratch server itself, which must report every key
of the snapshot as loaded or expired. JSON: the export goes through the restore's own
pipeline into an empty scratch server, which must then hold, per database, the keys
written.
"""

import time

from engines.errors import IntegrityError
from engines.jobs import JobContext
from engines.redis.inspect import ServerFacts
from engines.redis.options import RDB_MODE, RedisRestoreOptions
from engines.redis.rdb_copy import decrypt_rdb
from engines.redis.resp import RespConnection
from engines.redis.restore import restore_json_export
from engines.redis.scratch_server import databases_for, scratch_server, scratch_server_for
from engines.redis.verify import content_of
from engines.reports import RestoreReport
from engines.repository.resolve import ResolvedArtifact
from engines.workspace import Workspace

WORK_PURPOSE = "redis-drill"
TIMEOUT_S = 600


def keyspace(connection: RespConnection) -> dict[int, int]:
    """Keys per database, from INFO keyspace."""
    counts = {}
    for line in connection.call("INFO", "keyspace").decode().splitlines():
        if line.startswith("db") and ":keys=" in line:
            name, fields = line.split(":", 1)
            counts[int(name[2:])] = int(fields.split(",", 1)[0].removeprefix("keys="))
    return counts


def drill_redis(workspace: Workspace, resolved: ResolvedArtifact, context: JobContext) -> str:
    now_ms = int(time.time() * 1000)
    needed = int(resolved.metadata.get("plain_size") or 0)
    with workspace.work_folder(WORK_PURPOSE, needed=needed) as folder:
        if content_of(resolved.metadata) == RDB_MODE:
            return _drill_rdb(workspace, resolved, folder, now_ms, context)
        return _drill_json(workspace, resolved, folder, now_ms, context)


def _drill_rdb(workspace, resolved, folder, now_ms, context) -> str:
    path = folder / "dump.rdb"
    summary = decrypt_rdb(resolved, workspace.keyring(), path, now_ms, context)
    with scratch_server_for(path, summary, resolved.label) as scratch:
        with RespConnection.open(scratch.target, TIMEOUT_S) as connection:
            held = keyspace(connection)
        loaded, expired = scratch.keys_loaded, scratch.keys_expired or 0
    problems = []
    if loaded is not None and loaded + expired != summary.total_keys:
        problems.append(
            f"the scratch server loaded {loaded} keys and dropped {expired} expired ones, "
            f"the snapshot holds {summary.total_keys}"
        )
    for db, count in sorted(held.items()):
        if count > summary.keys_per_db.get(db, 0):
            problems.append(f"db {db}: {count} keys loaded, {summary.keys_per_db.get(db, 0)} held")
    if problems:
        raise IntegrityError(
            f"{resolved.label}: the scratch restore differs: {'; '.join(problems)}"
        )
    return (
        f"restored into a scratch redis-server: {sum(held.values())} keys loaded"
        + (f", {expired} expired" if expired else "")
        + f" of {summary.total_keys} in the snapshot"
    )


def _drill_json(workspace, resolved, folder, now_ms, context) -> str:
    metadata = resolved.metadata
    per_db = metadata.get("keys_per_db") or {}
    databases = databases_for(int(db) for db in per_db)
    empty = folder / "empty.rdb"  # absent: the scratch server starts with no keys
    with scratch_server(
        empty, databases=databases, rdb_version=0, rdb_redis=None, label=resolved.label
    ) as scratch:
        facts = ServerFacts(scratch.version, 0, {}, {}, databases, "master")
        options = RedisRestoreOptions(from_json=True)
        report = RestoreReport("redis", False, "scratch redis-server")
        tally = restore_json_export(
            resolved, workspace.keyring(), folder, scratch.target, facts, now_ms, options,
            context, report,
        )  # fmt: skip
        with RespConnection.open(scratch.target, TIMEOUT_S) as connection:
            held = keyspace(connection)
    problems = []
    written = {db: n for db, n in tally.written.items() if n}
    if held != written:
        problems.append(f"the scratch server holds {held}, the restore wrote {written}")
    if tally.failed or tally.total_conflicts:
        problems.append(f"{tally.failed} keys failed, {tally.total_conflicts} conflicted")
    recorded = metadata.get("keys")
    if recorded is not None and tally.total_written + tally.expired != recorded:
        problems.append(
            f"{tally.total_written} keys written and {tally.expired} expired, {recorded} recorded"
        )
    if problems:
        raise IntegrityError(
            f"{resolved.label}: the scratch restore differs: {'; '.join(problems)}"
        )
    return (
        f"restored into a scratch redis-server: {tally.total_written} keys written"
        + (f", {tally.expired} expired" if tally.expired else "")
        + " match the export"
    )


def _differs(resolved: ResolvedArtifact, problems: list[str]) -> IntegrityError:
    return IntegrityError(f"{resolved.label}: the scratch restore differs: {'; '.join(problems)}")
