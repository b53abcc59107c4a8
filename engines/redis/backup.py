"""`backup redis`: an RDB snapshot over replication and a JSON export, in one backup set.

Both artifacts go through `store_artifact`. The snapshot is counted as it streams past
(keys per database and per type, exactly as in the file). A server that refuses SYNC
(managed services) still gets the JSON export; the log and the metadata say why there is
no snapshot. Both artifacts are checked afterwards (`verify.check_artifacts`).
"""

from typing import Any

from engines.catalog import Artifact, BackupSet
from engines.jobs import JobContext
from engines.redis.connection import RedisTarget, connected, target_from_settings
from engines.redis.inspect import ServerFacts, server_facts, server_time_ms
from engines.redis.json_export import JsonExporter
from engines.redis.json_format import FORMAT as JSON_FORMAT
from engines.redis.options import JSON_MODE, RDB_MODE, RedisBackupOptions
from engines.redis.rdb_format import parse_header
from engines.redis.rdb_sync import RdbStream, SyncRefusedError
from engines.redis.rdb_tee import SummarisingTee
from engines.redis.verify import check_artifacts
from engines.repository.artifacts import store_artifact
from engines.workspace import Workspace

KEY_LOG_INTERVAL = 100_000


def back_up_redis(
    workspace: Workspace, backup_set: BackupSet, options: RedisBackupOptions, context: JobContext
) -> list[Artifact]:
    target = target_from_settings(workspace.settings)
    with connected(target) as client:
        facts = server_facts(client)
        now_ms = server_time_ms(client)
    context.log(
        f"{target.describe()}: Redis {facts.version} ({facts.role}), {facts.total_keys} keys "
        f"in {len(facts.keyspace)} database(s), {facts.used_memory} bytes used"
    )
    artifacts = []
    snapshot_note = "stored"
    try:
        artifacts.append(_store_snapshot(workspace, backup_set, target, facts, now_ms, context))
    except SyncRefusedError as refusal:
        snapshot_note = f"refused by the server: {refusal}"
        context.log(
            f"{target.address} refused SYNC ({refusal}); this backup holds the JSON export "
            "only (usual on managed services)",
            "warning",
        )
    artifacts.append(_store_json(workspace, backup_set, target, facts, snapshot_note, context))
    check_artifacts(workspace, artifacts, context)
    return artifacts


def _store_snapshot(
    workspace: Workspace,
    backup_set: BackupSet,
    target: RedisTarget,
    facts: ServerFacts,
    now_ms: int,
    context: JobContext,
) -> Artifact:
    stream = RdbStream(target).start()
    transfer = "diskless" if stream.diskless else f"{stream.size} bytes"
    context.log(f"SYNC accepted: receiving the snapshot ({transfer})")
    tee = SummarisingTee(stream, now_ms=now_ms)
    first_bytes = bytearray()

    def blocks():
        for block in tee:
            if len(first_bytes) < 9:
                first_bytes.extend(block[:9])
            context.progress(stream.received, stream.size)
            yield block

    def metadata() -> dict[str, Any]:
        summary = tee.summary()
        fields: dict[str, Any] = {
            "content": "rdb",
            "rdb_version": parse_header(bytes(first_bytes)),
            "transfer": "diskless" if stream.diskless else "disk",
            **facts.to_metadata(),
        }
        if summary is not None:
            fields.update(summary.counts(), counts_from="rdb", rdb_aux=summary.aux)
        else:
            # A record type newer than our reader: the server's own count at SYNC time.
            context.log(f"snapshot not counted ({tee.error}); recording the server's count")
            fields.update(
                keys=facts.total_keys,
                keys_per_db={str(db): n for db, n in sorted(facts.keyspace.items())},
                counts_from="server",
            )
        return fields

    artifact = store_artifact(
        workspace,
        backup_set,
        context,
        source="redis",
        mode=RDB_MODE,
        name="redis.rdb",
        stream=blocks(),
        metadata=metadata,
    )
    meta = artifact.metadata
    context.log(
        f"snapshot: RDB version {meta.get('rdb_version')}, {meta.get('keys')} keys "
        f"({_per_db(meta)})"
    )
    return artifact


def _store_json(
    workspace: Workspace,
    backup_set: BackupSet,
    target: RedisTarget,
    facts: ServerFacts,
    snapshot_note: str,
    context: JobContext,
) -> Artifact:
    logged = [0]

    def on_keys(done: int) -> None:
        if done - logged[0] >= KEY_LOG_INTERVAL:
            logged[0] = done
            context.log(f"JSON export: {done} of about {facts.total_keys} keys")

    exporter = JsonExporter(
        target, facts, check_cancelled=context.raise_if_cancelled, on_keys=on_keys
    )
    context.log("exporting every database to JSON (SCAN, type-aware, absolute expiry)")
    artifact = store_artifact(
        workspace,
        backup_set,
        context,
        source="redis",
        mode=JSON_MODE,
        name="redis.json",
        stream=exporter.blocks(),
        metadata=lambda: {
            "content": "json",
            "json_format": JSON_FORMAT,
            "rdb_snapshot": snapshot_note,
            **facts.to_metadata(),
            **exporter.counts.to_metadata(),
            "counts_from": "json",
        },
    )
    context.raise_if_cancelled()
    meta = artifact.metadata
    vanished = (
        f"; {exporter.counts.vanished} vanished while reading" if exporter.counts.vanished else ""
    )
    context.log(f"JSON export: {meta.get('keys')} keys ({_per_db(meta)}){vanished}")
    return artifact


def _per_db(meta: dict[str, Any]) -> str:
    per_db = meta.get("keys_per_db") or {}
    return ", ".join(f"db {db}: {n}" for db, n in per_db.items()) or "empty"
