"""`backup redis`: an RDB snapshot over replication and a JSON export, in one backup set.

One read of the server: the JSON export is made from the RDB as it streams past
(`snapshot_store`), so both artifacts hold the same moment, and the metadata says so
(`json_source` "rdb"). SCAN over the live server (`json_export`: every key read at its
own moment, `json_source` "scan" with the reason) remains for a server that refuses
SYNC (managed services) and for an RDB whose structure this reader cannot walk (a
record type newer than it knows); the log says which and why. Both artifacts are
checked afterwards (`verify.check_artifacts`).
"""

from engines.catalog import Artifact, BackupSet
from engines.jobs import JobContext
from engines.redis.connection import RedisTarget, connected, target_from_settings
from engines.redis.inspect import ServerFacts, server_facts, server_time_ms
from engines.redis.json_export import JsonExporter
from engines.redis.json_format import FORMAT as JSON_FORMAT
from engines.redis.json_format import per_db
from engines.redis.options import JSON_MODE, RedisBackupOptions
from engines.redis.rdb_format import RdbSummary
from engines.redis.rdb_sync import RdbStream, SyncRefusedError
from engines.redis.snapshot_store import store_snapshot
from engines.redis.verify import check_artifacts
from engines.repository.artifacts import store_artifact
from engines.workspace import Workspace

KEY_LOG_INTERVAL = 100_000
SCANNED = "keys read one by one with SCAN, each at its own moment (not one snapshot)"


def back_up_redis(
    workspace: Workspace, backup_set: BackupSet, options: RedisBackupOptions, context: JobContext
) -> list[Artifact]:
    target = target_from_settings(workspace.settings)
    with connected(target) as client:
        facts = server_facts(client)
        context.log(
            f"{target.describe()}: Redis {facts.version} ({facts.role}), {facts.total_keys} keys "
            f"in {len(facts.keyspace)} database(s), {facts.used_memory} bytes used"
        )
        moment_ms = server_time_ms(client)  # the snapshot's moment: right before SYNC
    try:
        stream = RdbStream(target, check_cancelled=context.raise_if_cancelled).start()
    except SyncRefusedError as refusal:
        context.log(
            f"{target.address} refused SYNC ({refusal}); this backup holds the JSON export "
            "only, made with SCAN (usual on managed services)",
            "warning",
        )
        reason = f"the server refused SYNC: {refusal}"
        snapshot_note = f"refused by the server: {refusal}"
        artifacts = [_store_scanned_json(workspace, backup_set, target, facts, snapshot_note,
                                         reason, context)]  # fmt: skip
    else:
        transfer = "diskless" if stream.diskless else f"{stream.size} bytes"
        context.log(
            f"SYNC accepted: receiving the snapshot ({transfer}), the JSON export made from "
            "it as it streams past"
        )
        stored = store_snapshot(workspace, backup_set, stream, facts, moment_ms, context)
        artifacts = [stored.rdb]
        if stored.json is not None:
            assert stored.summary is not None
            _log_json_from_rdb(stored.json, stored.summary, context)
            artifacts.append(stored.json)
        else:
            reason = f"the RDB's structure could not be read ({stored.unreadable})"
            context.log(
                f"JSON export not made from the snapshot: {reason}; exporting with SCAN "
                "instead, so its keys are read one by one, each at its own moment, not the "
                "snapshot's",
                "warning",
            )
            artifacts.append(_store_scanned_json(workspace, backup_set, target, facts, "stored",
                                                 reason, context))  # fmt: skip
    check_artifacts(workspace, artifacts, context)
    return artifacts


def _log_json_from_rdb(artifact: Artifact, summary: RdbSummary, context: JobContext) -> None:
    meta = artifact.metadata
    context.log(
        f"JSON export: {meta.get('keys')} keys ({per_db(meta)}), from the snapshot (server "
        f"time {meta.get('snapshot_server_time_ms')} ms, read right before SYNC)"
    )
    warn_left_out(summary, context)


def warn_left_out(summary: RdbSummary, context: JobContext) -> None:
    """One warning for each kind of data the RDB holds and the JSON export cannot."""
    if summary.modules:
        kinds = ", ".join(f"{name}: {n}" for name, n in summary.modules.items())
        context.log(
            f"{sum(summary.modules.values())} keys of module types ({kinds}) are in the RDB "
            "but not in the JSON export, which cannot hold them; restore them from the RDB "
            "(into a server that loads those modules)",
            "warning",
        )
    if summary.hash_field_ttls_dropped:
        context.log(
            f"{summary.hash_field_ttls_dropped} hash keys have fields with their own TTL: "
            "the JSON export holds those fields without their TTLs (it has no place for "
            "them); restore from the RDB to keep them",
            "warning",
        )


def _store_scanned_json(
    workspace: Workspace,
    backup_set: BackupSet,
    target: RedisTarget,
    facts: ServerFacts,
    snapshot_note: str,
    reason: str,
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
            "json_source": "scan",
            "json_moment": SCANNED,
            "json_source_reason": reason,
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
    context.log(f"JSON export: {meta.get('keys')} keys ({per_db(meta)}), with SCAN{vanished}")
    return artifact
