"""`restore redis --data-dir DIR`: the snapshot placed as `dump.rdb` in a stopped server's
data folder, for the guide's complete-system restore with services down.

The RDB is decrypted next to its final place under a temporary name, counted and
checked, given the folder's owner, then renamed over `dump.rdb`; an existing
`dump.rdb` is kept as `dump.rdb.pre-restore-<UTC time>`. A redis-server still running
in that folder would overwrite the file on shutdown, so it is refused.
"""

import contextlib
import os
from datetime import UTC, datetime
from pathlib import Path

from engines.errors import IntegrityError, JarvisError
from engines.jobs import JobContext
from engines.pipeline.artifacts import READ_SIZE, open_artifact_plain
from engines.pipeline.crypto import Keyring
from engines.plumbing.fsutil import (
    fsync_directory,
    remove_abandoned_temporaries_of,
    temporary_path_for,
)
from engines.redis.options import RedisRestoreOptions
from engines.redis.rdb_format import RdbFormatError
from engines.redis.rdb_tee import SummarisingTee
from engines.reports import RestoreReport
from engines.repository.resolve import ResolvedArtifact

RDB_NAME = "dump.rdb"


def servers_using(folder: Path) -> list[int]:
    """Pids of redis-server processes whose working folder (Redis chdirs into `dir`) is
    `folder`; processes we may not inspect are skipped."""
    found = []
    wanted = folder.resolve()
    for entry in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            if "redis" not in (entry / "comm").read_text():
                continue
            if Path(os.readlink(entry / "cwd")).resolve() == wanted:
                found.append(int(entry.name))
    return found


def restore_offline(
    chosen: ResolvedArtifact, keyring: Keyring, options: RedisRestoreOptions, context: JobContext
) -> RestoreReport:
    folder = options.data_dir
    assert folder is not None
    if not folder.is_dir():
        raise JarvisError(f"--data-dir {folder}: no such folder")
    running = servers_using(folder)
    if running:
        raise JarvisError(
            f"--data-dir {folder}: redis-server (pid {', '.join(map(str, running))}) is running "
            "there and would overwrite dump.rdb when it stops; stop it first"
        )
    final = folder / RDB_NAME
    existing = final.exists() and final.stat().st_size > 0
    if existing and not options.flush:
        raise JarvisError(
            f"--data-dir {folder}: {final.name} exists ({final.stat().st_size} bytes) and "
            "restoring replaces that whole dataset; add --flush (the old file is kept as "
            f"{final.name}.pre-restore-<time>)"
        )
    report = RestoreReport("redis", options.dry_run, str(final))
    aof = [p.name for p in folder.iterdir() if p.name == "appendonlydir" or p.suffix == ".aof"]
    if aof:
        report.warnings.append(
            f"{folder} holds an append-only file ({', '.join(aof)}): with `appendonly yes` "
            "Redis loads it instead of dump.rdb; move it aside for the first start"
        )
    if not options.dry_run:
        for left in remove_abandoned_temporaries_of(final):
            report.add(f"removed {left.name}, left by an interrupted restore")
    temporary = temporary_path_for(final)
    try:
        summary = _decrypt(chosen, keyring, temporary, context)
        per_db = ", ".join(f"db {db}: {n}" for db, n in sorted(summary.keys_per_db.items()))
        report.add(
            f"RDB version {summary.version}, {summary.total_keys} keys ({per_db or 'empty'})"
        )
        recorded = chosen.metadata.get("keys")
        if (
            recorded is not None
            and chosen.metadata.get("counts_from") == "rdb"
            and (recorded != summary.total_keys)
        ):
            raise IntegrityError(
                f"{chosen.label}: holds {summary.total_keys} keys, its metadata records {recorded}"
            )
        if options.dry_run:
            action = f"would replace {final} (kept aside)" if existing else f"would write {final}"
            report.add(action)
            return report
        stat = folder.stat()
        with contextlib.suppress(PermissionError):
            os.chown(temporary, stat.st_uid, stat.st_gid)
        if existing:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            kept = final.with_name(f"{final.name}.pre-restore-{stamp}")
            os.link(final, kept)
            report.add(f"previous {final.name} kept as {kept.name}")
        os.replace(temporary, final)
        fsync_directory(folder)
    finally:
        temporary.unlink(missing_ok=True)
    report.add(f"wrote {final}; start Redis with `dir {folder}` and `dbfilename {RDB_NAME}`")
    context.log(f"placed the snapshot at {final}")
    return report


def _decrypt(chosen: ResolvedArtifact, keyring: Keyring, path: Path, context: JobContext):
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with (
        os.fdopen(descriptor, "wb") as out,
        open_artifact_plain(chosen.stored, keyring, chosen.expected) as plain,
    ):

        def blocks():
            while block := plain.read(READ_SIZE):
                yield block

        tee = SummarisingTee(blocks())
        for block in tee:
            out.write(block)
            context.raise_if_cancelled()
        out.flush()
        os.fsync(out.fileno())
    summary = tee.summary()
    if summary is None:
        error = tee.error or RdbFormatError("the RDB ends before its end marker")
        raise IntegrityError(f"{chosen.label}: the RDB inside is not whole: {error}")
    return summary
