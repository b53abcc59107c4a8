"""`restore redis`: pick the artifact, check the target, then restore or describe.

Order of events, for both formats: resolve and check options; connect to the target
(its version, databases, clock); authenticate and load the artifact completely in a
private work folder (RDB: decrypted, counted, loaded by a scratch redis-server; JSON:
parsed and compiled to commands, then read again as it is written); only then `--flush`;
then write, pipelined. A dry run goes the same way and stops before the flush, checking
conflicts with EXISTS instead. Where the target allows it, `--flush` loads into spare
databases and swaps them in at the end (engines/redis/spare.py), all or nothing.
"""

import contextlib
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO

from engines.errors import InsufficientSpaceError, IntegrityError, JarvisError, NotFoundError
from engines.jobs import JobContext
from engines.pipeline.artifacts import decompressing, open_container
from engines.pipeline.crypto import DecryptedStream, Keyring
from engines.redis.connection import (
    COMMAND_TIMEOUT_S,
    RedisDatabaseError,
    RedisTarget,
    connected,
    target_from_settings,
)
from engines.redis.inspect import ServerFacts, rdb_version_of, server_facts, server_time_ms
from engines.redis.json_format import JsonFormatError
from engines.redis.json_import import FrameWriter, compile_export, discard, workers_for
from engines.redis.native import json_to_resp
from engines.redis.offline import restore_offline
from engines.redis.options import JSON_MODE, RDB_MODE, RedisRestoreOptions
from engines.redis.rdb_copy import copy_keys, decrypt_rdb
from engines.redis.resp import RespConnection
from engines.redis.scratch_server import RdbVersionError, newer_rdb_message, scratch_server_for
from engines.redis.spare import (
    SparePlan,
    claim,
    empty_abandoned_spares,
    plan_spares,
    release,
    swap_in,
)
from engines.redis.verify import content_of
from engines.redis.writer import PipelinedWriter, Tally
from engines.reports import RestoreReport
from engines.repository.resolve import ResolvedArtifact
from engines.workspace import Workspace


def check_options(options: RedisRestoreOptions) -> None:
    if options.db is not None and options.db < 0:
        raise RedisDatabaseError(f"--db {options.db}: a database index is 0 or more")
    if options.data_dir is not None:
        clashing = [
            name
            for name, used in (
                ("--from-json", options.from_json),
                ("--db", options.db is not None),
                ("--replace", options.replace),
            )
            if used
        ]
        if clashing:
            raise JarvisError(
                f"--data-dir places the whole RDB file; it does not combine with "
                f"{', '.join(clashing)}"
            )
    if options.flush and options.replace:
        raise JarvisError("--flush empties the target first, so --replace has nothing to do")


def choose_artifact(
    artifacts: list[ResolvedArtifact], options: RedisRestoreOptions
) -> ResolvedArtifact:
    wanted = JSON_MODE if options.from_json else RDB_MODE
    found = [a for a in artifacts if content_of(a.metadata) == wanted]
    if found:
        return found[0]
    others = {content_of(a.metadata) for a in artifacts}
    if wanted == RDB_MODE and JSON_MODE in others:
        note = next(
            (a.metadata.get("rdb_snapshot") for a in artifacts if a.metadata.get("rdb_snapshot")),
            None,
        )
        why = f" (snapshot {note})" if note and note != "stored" else ""
        raise NotFoundError(
            f"this backup has no RDB snapshot{why}; restore its JSON export with --from-json"
        )
    if wanted == JSON_MODE and RDB_MODE in others:
        raise NotFoundError("this backup has no JSON export; restore it without --from-json")
    raise NotFoundError(f"{artifacts[0].label} is not a Redis RDB or JSON artifact")


def _check_db(options: RedisRestoreOptions, facts: ServerFacts, metadata: dict[str, Any]) -> None:
    limit = facts.databases
    in_backup = sorted(int(db) for db in (metadata.get("keys_per_db") or {}))
    if options.db is not None:
        if limit is not None and options.db >= limit:
            raise RedisDatabaseError(
                f"--db {options.db}: the target has databases 0 to {limit - 1} (its `databases` "
                "setting)"
            )
        if in_backup and options.db not in in_backup:
            held = ", ".join(str(db) for db in in_backup)
            raise RedisDatabaseError(
                f"--db {options.db}: this backup holds keys in database(s) {held} only"
            )
    elif limit is not None and in_backup and in_backup[-1] >= limit:
        raise RedisDatabaseError(
            f"the backup holds database {in_backup[-1]} but the target has only {limit} "
            "databases; raise its `databases` setting or restore one database with --db"
        )


def _check_rdb_version(target: RedisTarget, facts: ServerFacts, metadata: dict[str, Any]) -> None:
    rdb_version = metadata.get("rdb_version")
    readable = facts.rdb_version
    if isinstance(rdb_version, int) and readable is not None and rdb_version > readable:
        made_by = (metadata.get("rdb_aux") or {}).get("redis-ver") or metadata.get("server_version")
        raise RdbVersionError(
            newer_rdb_message(
                rdb_version,
                made_by,
                f"the restore server ({target.address}) runs Redis {facts.version}, which",
                readable,
            )
            + "; restore the JSON export with --from-json, or upgrade the server"
        )


def _require_space(folder, needed: int, label: str) -> None:
    free = shutil.disk_usage(folder).free
    if needed and free < needed * 1.1:
        raise InsufficientSpaceError(
            f"{label} needs {needed} bytes in {folder} for its decrypted copy; {free} are "
            "free. Free space there or in BACKUP_DIR (the copy is removed after the restore)"
        )


def restore_redis(
    workspace: Workspace,
    artifacts: list[ResolvedArtifact],
    options: RedisRestoreOptions,
    context: JobContext,
) -> RestoreReport:
    check_options(options)
    chosen = choose_artifact(artifacts, options)
    keyring = workspace.keyring()
    if options.data_dir is not None:
        return restore_offline(chosen, keyring, options, context)
    target = target_from_settings(workspace.settings)
    with connected(target) as client:
        facts = server_facts(client)
        now_ms = server_time_ms(client)
    if not options.dry_run and facts.keyspace:
        with RespConnection.open(target, COMMAND_TIMEOUT_S) as connection:
            emptied = empty_abandoned_spares(connection, facts)
        if emptied:
            context.log(f"emptied spare database(s) {emptied} left by an interrupted restore")
            with connected(target) as client:
                facts = server_facts(client)
    context.log(f"target {target.describe()}: Redis {facts.version}, {facts.total_keys} keys")
    _check_db(options, facts, chosen.metadata)
    if content_of(chosen.metadata) == RDB_MODE:
        _check_rdb_version(target, facts, chosen.metadata)
    report = RestoreReport("redis", options.dry_run, target.address)
    needed = int(chosen.metadata.get("plain_size") or 0)
    with workspace.work_folder("redis-restore", needed=needed) as folder:
        context.log(f"authenticating and loading {chosen.label}")
        if content_of(chosen.metadata) == RDB_MODE:
            _require_space(folder, needed, chosen.label)
            tally = _restore_rdb(chosen, keyring, folder, target, facts, now_ms, options,
                                 context, report)  # fmt: skip
        else:
            tally = restore_json_export(chosen, keyring, folder, target, facts, now_ms, options,
                                  context, report)  # fmt: skip
    _describe_outcome(tally, options, report)
    context.log(f"{'dry run: ' if options.dry_run else ''}{'; '.join(report.lines)}")
    return report


def _restore_rdb(chosen, keyring, folder, target, facts, now_ms, options, context, report):
    path = folder / "dump.rdb"
    summary = decrypt_rdb(chosen, keyring, path, now_ms, context)
    context.log(f"{chosen.label}: every chunk authenticated, {summary.total_keys} keys")
    _check_rdb_version(target, facts, {"rdb_version": summary.version,
                                       "server_version": summary.redis_version})  # fmt: skip
    _describe_contents(summary.counts(), options, report)
    with scratch_server_for(path, summary, chosen.label) as scratch:
        context.log(
            f"loaded into a scratch redis-server {scratch.version}: "
            f"{scratch.keys_loaded} keys, {scratch.keys_expired} expired at load"
        )
        scratch_rdb = rdb_version_of(scratch.version)
        if facts.rdb_version is not None and scratch_rdb and scratch_rdb > facts.rdb_version:
            raise RdbVersionError(
                f"the local redis-server {scratch.version} writes DUMP payloads of RDB version "
                f"{scratch_rdb}, but the restore server runs Redis {facts.version} (reads up to "
                f"RDB version {facts.rdb_version}); restore with --from-json"
            )
        dbs = [db for db in sorted(summary.keys_per_db) if options.db in (None, db)]
        total = sum(summary.keys_per_db[db] for db in dbs)
        with RespConnection.open(target, COMMAND_TIMEOUT_S) as connection:
            writer = PipelinedWriter(connection, context, total)
            with _flushed(writer, facts, dbs, options, context, report):
                copy_keys(scratch, writer, dbs, now_ms=now_ms, replace=options.replace,
                          flush=options.flush, dry_run=options.dry_run)  # fmt: skip
        if options.db is None and scratch.keys_expired:
            writer.tally.expired += scratch.keys_expired
    return writer.tally


def restore_json_export(chosen, keyring, folder, target, facts, now_ms, options, context, report):
    """Check the whole export, then write it to `target` (the restore target, or the drill's
    scratch server); the tally of what was written."""
    overwrite = options.replace or options.flush
    # In a target emptied by --flush only keys the export holds twice need deleting
    # first, and pass 2 finds those (with the C half built; else every aggregate).
    find_repeats = options.flush and json_to_resp is not None
    compile_options = {
        "work_folder": folder, "now_ms": now_ms, "only_db": options.db,
        "delete_first": overwrite and not find_repeats,
        "workers": workers_for(int(chosen.metadata.get("plain_size") or 0)),
        "between_blocks": context.raise_if_cancelled,
    }  # fmt: skip
    try:
        with _export_plain(chosen, keyring) as (plain, salt):
            compiled = compile_export(plain, discard, **compile_options)
    except JsonFormatError as error:
        raise IntegrityError(f"{chosen.label}: the JSON export is damaged: {error}") from None
    reader = compiled.reader
    recorded = chosen.metadata.get("keys")
    if recorded is not None and recorded != reader.counts.total:
        raise IntegrityError(
            f"{chosen.label}: the export holds {reader.counts.total} keys, its metadata "
            f"records {recorded}"
        )
    context.log(f"{chosen.label}: every chunk authenticated, every line parsed")
    counts = {"keys_per_db": reader.counts.keys_per_db(), "keys_per_db_type": {
        str(db): dict(sorted(types.items())) for db, types in reader.counts.per_db_type.items()
    }}  # fmt: skip
    _describe_contents(counts, options, report)
    total = sum(
        sum(types.values())
        for db, types in reader.counts.per_db_type.items()
        if options.db in (None, db)
    )
    writer: PipelinedWriter | None = None
    try:
        with (
            RespConnection.open(target, COMMAND_TIMEOUT_S) as connection,
            _export_plain(chosen, keyring, same_salt=salt) as (plain, _),
        ):
            writer = PipelinedWriter(connection, context, total)
            writer.tally.expired = compiled.expired
            filled = sorted(db for db in reader.counts.per_db_type if options.db in (None, db))
            with _flushed(writer, facts, filled, options, context, report):
                frames = FrameWriter(
                    writer,
                    check_conflicts=not overwrite,
                    dry_run=options.dry_run,
                    find_repeats=find_repeats,
                )
                compile_export(plain, frames.write, **compile_options)
                frames.finish()
            return writer.tally
    except (IntegrityError, JsonFormatError) as error:
        done = f"stopped after {writer.tally.summary()}" if writer else "nothing was changed"
        context.log(done, "error")
        raise IntegrityError(
            f"{chosen.label} changed after it was checked ({error}); {done}"
        ) from None


@contextmanager
def _export_plain(
    chosen: ResolvedArtifact, keyring: Keyring, *, same_salt: bytes | None = None
) -> Iterator[tuple[BinaryIO, bytes]]:
    """The export's lines, each chunk authenticated as it is read, and the artifact's
    salt. Given the salt of a first reading, another artifact is refused on opening: every
    chunk of this one that authenticates is then the chunk read the first time (its key
    comes from the salt, its nonce holds its place)."""
    with open_container(chosen.stored, keyring, chosen.expected) as reader:
        if same_salt is not None and reader.header.salt != same_salt:
            raise IntegrityError("another artifact is in its place")
        name = chosen.stored.name
        with decompressing(reader, DecryptedStream(reader), name) as plain:
            yield plain, reader.header.salt


@contextmanager
def _flushed(
    writer: PipelinedWriter,
    facts: ServerFacts,
    filled: list[int],
    options: RedisRestoreOptions,
    context: JobContext,
    report: RestoreReport,
) -> Iterator[None]:
    """Around the writes: `--flush` as spare databases swapped in once every key is
    written, or, where the target cannot, the target emptied first."""
    if not options.flush:
        yield
        return
    dbs = [options.db] if options.db is not None else sorted(facts.keyspace)
    held = ", ".join(f"db {db} ({facts.keyspace.get(db, 0)} keys)" for db in dbs) or "none"
    plan = plan_spares(facts, filled, options.db)
    if isinstance(plan, str):
        report.warnings.append(
            f"--flush is not all or nothing on this target: {plan}; a restore stopped half "
            "way leaves it partly loaded"
        )
    if options.dry_run:
        report.add(f"--flush would empty: {held}")
        if isinstance(plan, SparePlan):
            report.add(plan.describe())
        yield
        return
    connection = writer.connection
    if isinstance(plan, str):
        _flush_in_place(connection, options)
        context.log(f"emptied the target databases: {held}")
        report.add(f"emptied: {held}")
        yield
        return
    claim(connection, plan)
    writer.database_map = plan.spares
    context.log(plan.describe())
    try:
        yield
        writer.drain()
        swap_in(connection, plan)
    except BaseException:
        with contextlib.suppress(Exception):
            release(connection, plan)
        raise
    context.log(f"swapped in the restored database(s); replaced: {held}")
    report.add(f"replaced at once (SWAPDB): {held}")


def _flush_in_place(connection: RespConnection, options: RedisRestoreOptions) -> None:
    if options.db is not None:
        connection.call("SELECT", options.db)
        connection.call("FLUSHDB")
    else:
        connection.call("FLUSHALL")


def _describe_contents(counts: dict[str, Any], options: RedisRestoreOptions, report) -> None:
    for db, types in sorted(
        (counts.get("keys_per_db_type") or {}).items(), key=lambda i: int(i[0])
    ):
        if options.db not in (None, int(db)):
            continue
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(types.items()))
        report.add(f"backup db {db}: {sum(types.values())} keys ({kinds})")


def _describe_outcome(tally: Tally, options: RedisRestoreOptions, report: RestoreReport) -> None:
    verb = "would be written" if options.dry_run else "written"
    report.add(tally.summary(verb))
    report.details.update(
        written={str(db): n for db, n in tally.written.items()},
        conflicts=tally.total_conflicts,
        expired=tally.expired,
        failed=tally.failed,
    )
    if tally.expired:
        report.add(f"{tally.expired} keys skipped: already expired")
    if tally.total_conflicts:
        if options.dry_run and (options.replace or options.flush):
            action = "would be overwritten" if options.replace else "would be flushed first"
        else:
            action = "would be skipped" if options.dry_run else "were skipped"
        report.add(
            f"{tally.total_conflicts} keys already exist on the target and {action} "
            f"(e.g. {', '.join(tally.conflict_samples[:5])})"
        )
        if not (options.replace or options.flush):
            report.warnings.append(
                f"{tally.total_conflicts} conflicting keys kept their current values; use "
                "--replace to overwrite them or --flush to empty the target first"
            )
    if tally.failed:
        report.warnings.append(
            f"{tally.failed} keys could not be written: {'; '.join(tally.failure_samples)}"
        )
