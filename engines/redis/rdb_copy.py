"""RDB restores: decrypt (authenticated, counted), load into a scratch server, then copy
every key to the target with DUMP/RESTORE ... ABSTTL, pipelined.

RESTORE without REPLACE refuses a key that exists (BUSYKEY): that is the conflict
report, decided by the target itself at the moment of writing.
"""

from pathlib import Path

from engines.errors import IntegrityError
from engines.jobs import JobContext
from engines.pipeline.artifacts import READ_SIZE, open_artifact_plain
from engines.pipeline.crypto import Keyring
from engines.redis.inspect import parse_version
from engines.redis.rdb_format import RdbFormatError, RdbSummary
from engines.redis.rdb_tee import SummarisingTee
from engines.redis.resp import RespConnection, RespError, encode_command
from engines.redis.scratch_server import LoadedScratch
from engines.redis.writer import KeyWrite, PipelinedWriter
from engines.repository.resolve import ResolvedArtifact

SCAN_COUNT = 1000


def decrypt_rdb(
    resolved: ResolvedArtifact,
    keyring: Keyring,
    destination: Path,
    now_ms: int,
    context: JobContext,
) -> RdbSummary:
    """Write the plain RDB to `destination` and count it; IntegrityError (nothing left
    behind) unless every chunk authenticated and the structure is whole."""
    total = resolved.metadata.get("plain_size")
    try:
        with (
            open_artifact_plain(resolved.stored, keyring, resolved.expected) as plain,
            open(destination, "xb") as out,
        ):

            def blocks():
                while block := plain.read(READ_SIZE):
                    yield block

            tee = SummarisingTee(blocks(), now_ms=now_ms)
            written = 0
            for block in tee:
                out.write(block)
                written += len(block)
                context.progress(written, total)
                context.raise_if_cancelled()
        summary = tee.summary()
    except BaseException:
        destination.unlink(missing_ok=True)
        raise
    if summary is None:
        destination.unlink(missing_ok=True)
        error = tee.error or RdbFormatError("the RDB ends before its end marker")
        raise IntegrityError(f"{resolved.label}: the RDB inside is not whole: {error}")
    return summary


def copy_keys(
    scratch: LoadedScratch,
    writer: PipelinedWriter,
    dbs: list[int],
    *,
    now_ms: int,
    replace: bool,
    flush: bool,
    dry_run: bool,
) -> None:
    absolute = parse_version(scratch.version) >= (7, 0)
    with RespConnection.open(scratch.target, 600) as source:
        for db in dbs:
            source.call("SELECT", db)
            cursor = b"0"
            while True:
                cursor, keys = source.call("SCAN", cursor, "COUNT", SCAN_COUNT)
                if keys:
                    if dry_run:
                        _plan(writer, db, keys, overwrite=replace or flush)
                    else:
                        _copy(source, writer, db, keys, now_ms, replace, absolute)
                if cursor == b"0":
                    break


def _plan(writer: PipelinedWriter, db: int, keys: list[bytes], *, overwrite: bool) -> None:
    writer.select(db)
    for key, exists in zip(keys, writer.existing(keys), strict=True):
        if exists:
            writer.tally.conflict(db, key)
        if overwrite or not exists:
            writer.tally.written[db] += 1
    writer.context.raise_if_cancelled()


def _copy(
    source: RespConnection,
    writer: PipelinedWriter,
    db: int,
    keys: list[bytes],
    now_ms: int,
    replace: bool,
    absolute: bool,
) -> None:
    expiry_command = "PEXPIRETIME" if absolute else "PTTL"
    source.send(
        (b"" if absolute else encode_command("TIME"))
        + b"".join(encode_command("DUMP", k) + encode_command(expiry_command, k) for k in keys)
    )
    base = 0
    if not absolute:
        seconds, micros = source.read_reply()
        base = int(seconds) * 1000 + int(micros) // 1000
    items = []
    options = ["ABSTTL", "REPLACE"] if replace else ["ABSTTL"]
    for key in keys:
        payload, expiry = source.read_reply(), source.read_reply()
        if isinstance(payload, RespError) or isinstance(expiry, RespError):
            raise RespError(f"the scratch server refused DUMP: {payload or expiry}")
        if payload is None or expiry == -2:
            writer.tally.expired += 1  # expired in the scratch server meanwhile
            continue
        expires_at = 0 if expiry < 0 else (expiry if absolute else base + expiry)
        if expires_at and expires_at <= now_ms:
            writer.tally.expired += 1
            continue
        items.append(
            KeyWrite(key, encode_command("RESTORE", key, expires_at, payload, *options), 1)
        )
    writer.write(db, items)
