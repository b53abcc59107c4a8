"""A catalog of many backup sets with the rows real backups write, for benchmarks/api.py.

Real backups first, in the folder's own repository: `backup files`, `backup secrets`,
and `backup config` through the CLI, and PostgreSQL's dump
and globals and Redis's RDB snapshot and JSON export stored by `store_artifact` with the
metadata the engines' own builders give (`dump_metadata`, `ServerFacts.to_metadata`,
`RdbSummary.counts`, `ExportCounts.to_metadata`), so no database server is needed. Their
catalog rows are the templates. Then `sets` sets are cloned from them through the catalog
API (create_backup_set, add_artifact, complete_artifact, record_verification,
set_copy_state, finish_backup_set) under a clock set to each set's moment: several sources
on a schedule, tiers, failed and partial sets, an S3 copy of most, verification results.

The clones' artifact files are not written (their rows are what the endpoints read); only
the templates and the benchmark's download artifact exist in the repository.
"""

import contextlib
import io
import random
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

KEY = "0123456789abcdef" * 4
# One schedule slot every 47 minutes, newest last: a day holds about 30 sets.
SLOT = timedelta(minutes=47)
# The sources in turn, as a busy host's schedules would interleave them.
ROTATION = (
    "postgres",
    "redis",
    "postgres",
    "files",
    "postgres",
    "redis",
    "secrets",
    "postgres",
    "full",
    "redis",
    "postgres",
    "config",
)
FULL_PARTS = ("postgres", "redis", "files", "secrets", "config")
S3 = "s3"
# Stored bytes of a server's artifacts (their templates hold 64 KiB stand-ins) and how
# many plain bytes each stored byte holds: a 1.4 GB database, a 400 MB Redis.
SERVER_SIZES = {
    ("postgres", "full"): (350_000_000, 4.0),
    ("postgres", "globals"): (4_000, 3.0),
    ("redis", "rdb"): (90_000_000, 2.0),
    ("redis", "json"): (140_000_000, 5.0),
}


@dataclass(frozen=True)
class Template:
    source: str
    mode: str
    name: str  # the relpath's part after `<set id>_`
    stored_size: int
    plain_size: int | None
    key_id: str | None
    codec: str | None
    metadata: dict[str, Any]


def write_env(root: Path, name: str = "jarvis.env", **extra: str) -> Path:
    """An env file in a work folder: its repository, catalog, logs and sources."""
    values = {
        "BACKUP_DIR": str(root / "repo"),
        "BACKUP_CATALOG_PATH": str(root / "catalog.sqlite3"),
        "BACKUP_LOG_DIR": str(root / "logs"),
        "BACKUP_ENCRYPTION_KEY": KEY,
        "BACKUP_COMPRESSION": "zstd",
        "BACKUP_FILE_PATHS": str(root / "data"),
        "BACKUP_SECRET_FILES": str(root / "app.env"),
        "BACKUP_CONFIG_PATHS": str(root / "config"),
        **extra,
    }
    env_file = root / name
    env_file.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
    return env_file


def _source_folders(root: Path) -> None:
    data = root / "data"
    for number in range(40):
        folder = data / f"project-{number % 5}"
        folder.mkdir(parents=True, exist_ok=True)
        text = "".join(f"line {line} of file {number}\n" for line in range(200 + number * 37))
        (folder / f"notes-{number}.txt").write_text(text)
    (root / "app.env").write_text("DATABASE_URL=postgres://app@db/app\nAPP_MODE=production\n")
    config = root / "config"
    (config / "nginx").mkdir(parents=True)
    (config / "nginx" / "site.conf").write_text("server { listen 80; root /srv/app; }\n" * 20)
    (config / "app.toml").write_text('[app]\nworkers = 4\nlog = "info"\n')


def cli(env_file: Path, *args: str) -> None:
    from jarvis_tui.cli import main

    with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.redirect_stderr(out):
        code = main(["--env-file", str(env_file), *args])
    if code != 0:
        raise SystemExit(f"jarvis-tui {' '.join(args)} failed ({code}):\n{out.getvalue()}")


def _database_metadata() -> tuple[dict, dict]:
    """A dump's and the globals' metadata, as PostgreSQL's backup builds them."""
    from engines.postgres.connection import PostgresTarget
    from engines.postgres.dump import dump_metadata
    from engines.postgres.inspect import ServerFacts, TableInfo
    from engines.postgres.tools import ClientTools

    target = PostgresTarget("db.internal", 5432, "jarvis", "app")
    facts = ServerFacts("16.4", 160004, 1_412_000_000, "UTF8", "C.UTF-8", "C.UTF-8")
    tools = ClientTools(Path("/usr/lib/postgresql/16/bin"), 16, "16.4")
    names = "users orders order_lines products payments sessions events invoices addresses"
    tables = [
        TableInfo(
            "public" if number % 4 else "audit",
            name,
            rows=(number + 1) * 48_311,
            indexes=(f"{name}_pkey", f"{name}_created_idx") if number % 3 else (f"{name}_pkey",),
            sequences=(f"{name}_id_seq",),
        )
        for number, name in enumerate(f"{names} carts coupons shipments reviews tags".split())
    ]
    dump = dump_metadata(target, facts, tools, "full", tables, large_objects=0)
    globals_ = {
        "content": "globals",
        "format": "pg_dumpall --globals-only",
        "database": target.database,
        "host": target.host,
        "port": target.port,
        "user": target.user,
        "role_passwords": True,
        **facts.to_metadata(),
        "pg_dump_version": tools.version,
    }
    return dump, globals_


def _redis_metadata() -> tuple[dict, dict]:
    """An RDB snapshot's and a JSON export's metadata, as Redis's backup builds them."""
    from collections import Counter

    from engines.redis.inspect import ServerFacts
    from engines.redis.json_export import ExportCounts
    from engines.redis.json_format import FORMAT
    from engines.redis.rdb_format import RdbSummary

    facts = ServerFacts(
        version="7.2.4",
        used_memory=412_000_000,
        keyspace={0: 181_000, 1: 24_000, 3: 1_200},
        expires={0: 52_000, 1: 300},
        databases=16,
        role="master",
    )
    types = {"string": 0.5, "hash": 0.2, "list": 0.1, "set": 0.1, "zset": 0.07, "stream": 0.03}
    per_db = {db: Counter({t: int(n * share) for t, share in types.items()})
              for db, n in facts.keyspace.items()}  # fmt: skip
    summary = RdbSummary(
        version=11,
        aux={"redis-ver": "7.2.4", "redis-bits": "64", "aof-base": "0"},
        keys_per_db=Counter({db: sum(c.values()) for db, c in per_db.items()}),
        keys_per_type=sum(per_db.values(), Counter()),
        keys_per_db_type=per_db,
        expires=52_300,
        complete=True,
    )
    rdb = {
        "content": "rdb",
        "rdb_version": 11,
        "transfer": "disk",
        **facts.to_metadata(),
        **summary.counts(),
        "counts_from": "rdb",
        "rdb_aux": summary.aux,
    }
    counts = ExportCounts()
    counts.per_db_type = per_db
    counts.with_ttl = 52_300
    exported = {
        "content": "json",
        "json_format": FORMAT,
        "rdb_snapshot": "stored",
        **facts.to_metadata(),
        **counts.to_metadata(),
        "counts_from": "json",
    }
    return rdb, exported


def _store_servers_templates(env_file: Path) -> None:
    """PostgreSQL's and Redis's artifacts sealed as their backups seal them, with a small
    stand-in for the bytes a server would send."""
    from engines.config import load_settings
    from engines.repository.artifacts import store_artifact
    from engines.workspace import Workspace

    dump, globals_ = _database_metadata()
    rdb, exported = _redis_metadata()
    artifacts = {
        "postgres": [("full", "app_full.dump", dump), ("globals", "globals.sql", globals_)],
        "redis": [("rdb", "redis.rdb", rdb), ("json", "redis.json", exported)],
    }
    with Workspace.open(load_settings(environ={}, env_file=env_file)) as workspace:
        for source, parts in artifacts.items():

            def work(context, source=source, parts=parts) -> None:
                backup_set = workspace.catalog.create_backup_set(source, tier="daily")
                for mode, name, metadata in parts:
                    store_artifact(
                        workspace,
                        backup_set,
                        context,
                        source=source,
                        mode=mode,
                        name=name,
                        stream=[random.randbytes(64 * 1024)],
                        metadata=metadata,
                    )
                workspace.catalog.finish_backup_set(backup_set.id, "complete")

            workspace.run_job("backup", f"backup {source}", work)


def make_templates(root: Path) -> tuple[Path, dict[str, list[Template]]]:
    """Real backups in `root`; each source's artifacts as templates."""
    from engines.catalog import Catalog

    _source_folders(root)
    env_file = write_env(root)
    for source in ("files", "secrets", "config"):
        cli(env_file, "backup", source)
    _store_servers_templates(env_file)
    templates: dict[str, list[Template]] = {}
    with Catalog.open(root / "catalog.sqlite3") as catalog:
        for backup_set in catalog.list_backup_sets():
            templates[backup_set.kind] = [
                _template(backup_set.id, a) for a in catalog.artifacts_of(backup_set.id)
            ]
    return env_file, templates


def _template(set_id: str, artifact) -> Template:
    stored, plain = artifact.stored_size or 0, artifact.plain_size
    if (artifact.source, artifact.mode) in SERVER_SIZES:
        stored, ratio = SERVER_SIZES[(artifact.source, artifact.mode)]
        plain = int(stored * ratio)
    return Template(
        artifact.source,
        artifact.mode,
        artifact.relpath.split("/", 1)[1].removeprefix(f"{set_id}_"),
        stored,
        plain,
        artifact.key_id,
        artifact.codec,
        artifact.metadata,
    )


@contextlib.contextmanager
def catalog_clock() -> Iterator[Callable[[datetime], None]]:
    """The catalog stamps rows (finished_at, copies, verification) with the moment set."""
    import engines.catalog.times as times

    moment = [datetime.now(UTC)]
    original = times.utc_now
    times.utc_now = lambda: moment[0]
    try:
        yield lambda at: moment.__setitem__(0, at)
    finally:
        times.utc_now = original


def _tier(slot: int, rng: random.Random) -> str:
    if rng.random() < 0.04:
        return "manual"
    day = slot // 30
    if day % 30 == 0:
        return "monthly"
    return "weekly" if day % 7 == 0 else "daily"


def _scaled(size: int, rng: random.Random, growth: float) -> int:
    return max(1, int(size * growth * rng.uniform(0.8, 1.25)))


def _clone_metadata(
    template: Template, backup_set, created: datetime, sizes: tuple[int, int | None], rng, growth
) -> dict:
    """The template's sealed metadata, with this set's fields, moment and sizes."""
    from engines.repository.set_records import record_relpath, set_fields

    stored, plain = sizes
    metadata = {
        **template.metadata,
        **set_fields(backup_set),
        "set_record": record_relpath(backup_set.id),
        "created_at": created.isoformat(timespec="microseconds"),
        "checksum": f"{rng.getrandbits(256):064x}",  # of the plain stream
        "compressed_size": max(1, stored - 64),
    }
    if plain is not None:
        metadata["plain_size"] = plain
    snapshot = metadata.get("snapshot")
    if isinstance(snapshot, dict) and "stored_bytes" in snapshot:
        new_bytes = _scaled(int(snapshot["stored_bytes"]) or 1, rng, growth)
        metadata["snapshot"] = {**snapshot, "stored_bytes": new_bytes}
    return metadata


def seed_sets(
    env_file: Path, templates: dict[str, list[Template]], sets: int, seed: int = 17
) -> dict[str, int]:
    """`sets` backup sets cloned from `templates`, the newest a slot before now."""
    import dataclasses

    from engines.catalog import Catalog
    from engines.config import load_settings

    rng = random.Random(seed)
    settings = load_settings(environ={}, env_file=env_file)
    counts = {"sets": 0, "artifacts": 0, "copies": 0, "failed": 0, "partial": 0}
    newest = datetime.now(UTC).replace(microsecond=0) - SLOT
    with Catalog.open(settings.catalog_path) as catalog, catalog_clock() as set_clock:
        for slot in range(sets):
            kind = ROTATION[slot % len(ROTATION)]
            created = newest - SLOT * (sets - 1 - slot)
            growth = 0.5 + slot / sets  # the data grows over the months
            set_clock(created)
            backup_set = catalog.create_backup_set(kind, tier=_tier(slot, rng), created_at=created)
            parts = FULL_PARTS if kind == "full" else (kind,)
            backup_set = dataclasses.replace(backup_set, parts=parts)
            roll = rng.random()
            status = "failed" if roll < 0.03 else "partial" if kind == "full" and roll < 0.1 else ""
            failing_part = rng.choice(parts) if status else None
            stopped = False
            s3_from = int(sets * 0.2)  # S3 copies began a fifth of the way in
            s3_state = "stored" if slot >= s3_from else None
            if s3_state and rng.random() < 0.04:
                s3_state = "failed"
            moment = created
            for part in parts:
                if status == "failed" and stopped:
                    break
                for template in templates[part]:
                    moment += timedelta(seconds=rng.uniform(2, 90))
                    set_clock(moment)
                    relpath = f"{template.source}/{backup_set.id}_{template.name}"
                    artifact = catalog.add_artifact(
                        backup_set.id, template.source, template.mode, relpath
                    )
                    counts["artifacts"] += 1
                    if part == failing_part:  # its first artifact failed, its others never began
                        catalog.fail_artifact(artifact.id, _failure(part))
                        stopped = True
                        break
                    _complete(catalog, artifact, template, backup_set, moment, s3_state, rng,
                              growth, set_clock, counts)  # fmt: skip
            set_clock(moment + timedelta(seconds=5))
            if status == "failed":
                catalog.finish_backup_set(backup_set.id, "failed", _failure(failing_part))
                counts["failed"] += 1
            elif status == "partial":
                failed = f"{failing_part}: failed ({_failure(failing_part)})"
                note = "; ".join(
                    failed if part == failing_part else _part_ok(part, templates)
                    for part in FULL_PARTS
                )
                catalog.finish_backup_set(backup_set.id, "partial", failed, note=note)
                counts["partial"] += 1
            elif kind == "full":
                note = "; ".join(_part_ok(part, templates) for part in FULL_PARTS)
                catalog.finish_backup_set(backup_set.id, "complete", note=note)
            else:
                catalog.finish_backup_set(backup_set.id, "complete")
            counts["sets"] += 1
    return counts


def _complete(catalog, artifact, template, backup_set, moment, s3_state, rng, growth,
              set_clock, counts) -> None:  # fmt: skip
    """The artifact written and read back, stored locally, copied to S3, maybe verified
    again later: the calls `store_artifact`, `sync` and `verify` make."""
    stored = _scaled(template.stored_size, rng, growth)
    checksum = f"{rng.getrandbits(256):064x}"
    plain = template.plain_size
    if plain is not None:
        plain = int(stored * plain / max(template.stored_size, 1))
    catalog.complete_artifact(
        artifact.id,
        checksum=checksum,
        stored_size=stored,
        plain_size=plain,
        key_id=template.key_id,
        codec=template.codec,
        metadata=_clone_metadata(template, backup_set, moment, (stored, plain), rng, growth),
    )
    chunks = max(1, stored // (4 * 1024 * 1024))
    catalog.record_verification(
        artifact.id, True, f"authenticated after backup: sha256 {checksum}, {chunks} chunks"
    )
    catalog.set_copy_state(artifact.id, "local", "stored")
    counts["copies"] += 1
    if s3_state:
        set_clock(moment + timedelta(minutes=3))
        error = "S3 answered 503 SlowDown; the next sync retries" if s3_state == "failed" else None
        catalog.set_copy_state(artifact.id, S3, s3_state, error)
        counts["copies"] += 1
    if rng.random() < 0.08:  # a later `verify --all` or restore drill
        set_clock(moment + timedelta(days=rng.uniform(0.5, 6)))
        ok = rng.random() > 0.03
        relpath = artifact.relpath
        detail = f"sha256 {checksum}, {chunks} chunks" if ok else (
            f"{relpath} is missing from the repository"
        )  # fmt: skip
        catalog.record_verification(artifact.id, ok, detail)
        set_clock(moment)


def _part_ok(part: str, templates: dict[str, list[Template]]) -> str:
    """A part's line in a full set's note, as `backup full` writes it (PartResult.summary)."""
    count = len(templates[part])
    return f"{part}: ok ({count} artifact{'s' if count != 1 else ''})"


def _failure(source: str | None) -> str:
    return {
        "postgres": "PostgreSQL refused an operation: could not extend file: No space left",
        "redis": "Redis at cache.internal:6379 refused SYNC: connection reset by peer",
        "files": "cannot read /srv/app/uploads (Permission denied); check BACKUP_FILE_PATHS",
        "secrets": "BACKUP_SECRET_FILES: /srv/app/.env does not exist",
        "config": "cannot read /etc/nginx/conf.d (Permission denied)",
    }.get(source or "", "interrupted")


def build_catalog(root: Path, sets: int) -> tuple[Path, dict[str, int]]:
    """A fresh work folder `root` with the templates' repository and `sets` more sets."""
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    env_file, templates = make_templates(root)
    counts = seed_sets(env_file, templates, sets)
    return env_file, counts
