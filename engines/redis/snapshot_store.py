"""The RDB snapshot stored, and the JSON export made from it as it streams past: one read
of the server, and a JSON that holds exactly the snapshot's moment.

The RDB goes to `store_artifact` from this thread. A `SummarisingTee` hands its bytes
to the structure walk (a thread of its own, reading a pipe), which writes every key as
JSON lines into a `BlockHandoff`; a second thread takes them from there into a second
`store_artifact` (header before, trailer with the counts after).

Why both stores at once rather than one after the other with the JSON spooled to a file
meanwhile: the work is CPU-bound (1,000,000 benchmark keys: 19 s of our CPU, 15.5 of them
in gzip -9 of the two artifacts, RDB 7.8 and JSON 8.0; the walk with its JSON 1.0; both
checks 2.1), and storing the RDB alone leaves CPU idle that the JSON's compression fills
(200,000 keys: 1.75 s of our CPU and 0.4 s of the server's in 2.0 s on two cores). A
spool would also write and read back 250 MB per million keys, need that much free disk
and a clean-up path after a kill. On a machine busy with other work (load 7.5) the two
ran alike (four alternations on 200,000 keys: spooled 6.6-8.2 s, concurrent 6.8-8.8 s,
3.4 s of CPU each), so the decision rests on the idle CPU and the missing spool. The
hand-off is bounded (HANDOFF_BYTES), so memory stays flat: when the JSON side falls
behind, the walk waits, then the pipe, then the RDB.

Either side failing fails both: the JSON side's own failure (a full disk,
cancellation) is raised into the RDB's stream; the RDB's failure closes the pipe, the
walk ends early, and the JSON side fails with `WalkStopped`. Only one case is not a
failure: the walk could not read the structure (a record type newer than this
reader) while the RDB arrived whole. The RDB is then stored with the server's counts
as before, the JSON's attempt is dropped (its bytes never reached the repository, its
catalog row is removed) and the caller exports the JSON with SCAN instead.
"""

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from engines.catalog import Artifact, BackupSet
from engines.errors import JarvisError
from engines.jobs import JobContext
from engines.pipeline.artifacts import SIDECAR_SUFFIX
from engines.redis import json_format
from engines.redis.block_handoff import BlockHandoff
from engines.redis.inspect import ServerFacts
from engines.redis.options import JSON_MODE, RDB_MODE
from engines.redis.rdb_format import HEADER_SIZE, RdbFormatError, RdbSummary, parse_header
from engines.redis.rdb_sync import RdbStream
from engines.redis.rdb_tee import SummarisingTee, WalkStopped
from engines.repository.artifacts import store_artifact
from engines.workspace import Workspace

HANDOFF_BYTES = 8 << 20  # JSON blocks (about 1 MiB each) waiting for the JSON side
JSON_FROM_RDB = "every key as this set's RDB snapshot holds it: one moment for all keys"


@dataclass
class StoredSnapshot:
    rdb: Artifact
    summary: RdbSummary | None  # None: the structure could not be read (`unreadable`)
    json: Artifact | None = None  # None without `with_json`, or when `unreadable`
    unreadable: Exception | None = None


def store_snapshot(
    workspace: Workspace,
    backup_set: BackupSet,
    stream: RdbStream,
    facts: ServerFacts,
    moment_ms: int,
    context: JobContext,
    *,
    with_json: bool = True,
) -> StoredSnapshot:
    """Store the snapshot `stream` (SYNC already accepted) and, `with_json`, its JSON
    export; `moment_ms` is the server's time read right before SYNC."""
    handoff = BlockHandoff(HANDOFF_BYTES) if with_json else None
    tee = SummarisingTee(stream, now_ms=moment_ms, json=handoff)
    json_side = (
        None
        if handoff is None
        else _JsonFromWalk(workspace, backup_set, facts, moment_ms, tee, handoff, context)
    )
    first_bytes = bytearray()

    def blocks() -> Iterator[bytes]:
        if json_side is not None:
            json_side.start()  # here, so the RDB's catalog row comes first
        for block in tee:
            if json_side is not None:
                json_side.raise_own_failure()
            if len(first_bytes) < HEADER_SIZE:
                first_bytes.extend(block[: HEADER_SIZE - len(first_bytes)])
                if len(first_bytes) == HEADER_SIZE:
                    _check_header(stream, first_bytes)
            context.progress(stream.received, stream.size)
            yield block
        if len(first_bytes) < HEADER_SIZE:
            _check_header(stream, first_bytes)

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

    source = blocks()
    try:
        rdb = store_artifact(
            workspace,
            backup_set,
            context,
            source="redis",
            mode=RDB_MODE,
            name="redis.rdb",
            stream=source,
            metadata=metadata,
        )
    finally:
        # On failure: the JSON side stops, then the pipe closes and the walk ends (not
        # only when the traceback that holds `source` is dropped), then the connection.
        if handoff is not None:
            handoff.fail(WalkStopped("the snapshot was not stored"))  # unless already ended
        source.close()
        stream.close()
        if json_side is not None:
            json_side.join()
    meta = rdb.metadata
    context.log(
        f"snapshot: RDB version {meta.get('rdb_version')}, {meta.get('keys')} keys "
        f"({json_format.per_db(meta)})"
    )
    summary = tee.summary()
    if json_side is None:
        return StoredSnapshot(rdb, summary)
    if json_side.artifact is not None:
        return StoredSnapshot(rdb, summary, json_side.artifact)
    if isinstance(json_side.error, WalkStopped) and isinstance(tee.error, RdbFormatError):
        json_side.forget()
        return StoredSnapshot(rdb, None, unreadable=tee.error)
    assert json_side.error is not None
    # The RDB was stored before the JSON side failed (it usually finishes last): take
    # it away too, or a `backup full` set (partial) would offer this part that failed,
    # never checked, to `restore redis latest`.
    _withdraw(workspace, rdb, f"the JSON export stored beside it failed: {json_side.error}")
    raise json_side.error


class _JsonFromWalk:
    """The JSON export's `store_artifact` in a thread of its own, fed by the walk."""

    def __init__(
        self,
        workspace: Workspace,
        backup_set: BackupSet,
        facts: ServerFacts,
        moment_ms: int,
        tee: SummarisingTee,
        handoff: BlockHandoff,
        context: JobContext,
    ):
        self.workspace = workspace
        self.backup_set = backup_set
        self.facts = facts
        self.moment_ms = moment_ms
        self.tee = tee
        self.handoff = handoff
        self.context = context
        self.counts: dict[str, Any] = {}
        self.artifact: Artifact | None = None
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="redis-json", daemon=True)
        self._thread.start()

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()

    def raise_own_failure(self) -> None:
        """The JSON side's own failure (not the walk's end) stops the RDB too."""
        error = self.error
        if error is not None and not isinstance(error, WalkStopped):
            raise error

    def _run(self) -> None:
        try:
            self.artifact = store_artifact(
                self.workspace,
                self.backup_set,
                self.context,
                source="redis",
                mode=JSON_MODE,
                name="redis.json",
                stream=self._blocks(),
                metadata=self._metadata,
                report_progress=False,  # the RDB's bytes are the job's progress
            )
        except BaseException as error:
            self.error = error
        finally:
            self.handoff.stop()

    def _blocks(self) -> Iterator[bytes]:
        created = datetime.now(UTC).isoformat()
        yield json_format.dumps(json_format.header(self.facts.version, self.moment_ms, created))
        yield from self.handoff
        # The hand-off closed: the walk reached the end marker, its summary is complete.
        summary = self.tee.walked()
        assert summary is not None
        assert summary.json_counts is not None
        self.counts = summary.json_counts.to_metadata()
        yield json_format.dumps(json_format.trailer(self.counts))

    def _metadata(self) -> dict[str, Any]:
        summary = self.tee.walked()
        assert summary is not None
        fields: dict[str, Any] = {
            "content": "json",
            "json_format": json_format.FORMAT,
            "rdb_snapshot": "stored",
            "json_source": "rdb",
            "json_moment": JSON_FROM_RDB,
            "snapshot_server_time_ms": self.moment_ms,
            **self.facts.to_metadata(),
            **self.counts,
            "counts_from": "json",
        }
        if summary.modules:
            fields["module_keys_left_out"] = dict(summary.modules)
        if summary.hash_field_ttls_dropped:
            fields["hash_field_ttls_dropped"] = summary.hash_field_ttls_dropped
        return fields

    def forget(self) -> None:
        """The attempt left nothing in the repository; its failed row goes too, so the
        export made another way can take its name."""
        catalog = self.workspace.catalog
        for artifact in catalog.artifacts_of(self.backup_set.id):
            if artifact.mode == JSON_MODE and artifact.status == "failed":
                catalog.forget_failed_artifact(artifact.id)


def _withdraw(workspace: Workspace, artifact: Artifact, reason: str) -> None:
    """A stored artifact of a part that failed: failed in the catalog and deleted, its
    sidecar (which marks it complete) first. Left in place when it cannot be deleted (a
    read-only repository); the failed set's deletion removes it then."""
    workspace.catalog.fail_artifact(artifact.id, reason)
    try:
        workspace.repository.delete(artifact.relpath + SIDECAR_SUFFIX)
        workspace.repository.delete(artifact.relpath)
    except OSError:
        return
    workspace.catalog.set_copy_state(artifact.id, "local", "deleted")


def _check_header(stream: RdbStream, first_bytes: bytearray) -> None:
    """What a server (or a proxy, or something else listening there) sent after accepting
    SYNC must start as an RDB does; anything else is refused with one line, before it is
    stored."""
    try:
        parse_header(bytes(first_bytes))
    except RdbFormatError as error:
        raise JarvisError(
            f"{stream.target.address} accepted SYNC but sent {stream.received} bytes that are "
            f"not an RDB snapshot ({error}); is it a Redis server, and not a proxy or another "
            "service?"
        ) from None
