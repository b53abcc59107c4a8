"""The SQLite catalog against real files, shared by real threads and processes."""

import multiprocessing
import secrets
import sqlite3
import stat
import threading
import traceback
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from engines.catalog import SCHEMA_VERSION, Catalog, schema
from engines.catalog.rebuild import SealedArtifact, check_sealed
from engines.errors import IntegrityError, JarvisError, NotFoundError
from engines.joblog import register_secrets

T0 = datetime(2026, 11, 27, 20, 1, 1, tzinfo=UTC)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def catalog_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "catalog.sqlite3"


@pytest.fixture
def catalog(catalog_path: Path):
    with Catalog.open(catalog_path) as opened:
        yield opened


def complete_set(catalog: Catalog, kind: str, created_at: datetime, status: str = "complete"):
    backup_set = catalog.create_backup_set(kind, created_at=created_at)
    catalog.finish_backup_set(backup_set.id, status)
    return backup_set.id


def add_complete_artifact(catalog: Catalog, set_id: str, relpath: str, size: int = 100):
    artifact = catalog.add_artifact(set_id, "postgres", "dump", relpath)
    catalog.complete_artifact(
        artifact.id,
        checksum="sha256:" + relpath,
        stored_size=size,
        plain_size=size * 3,
        key_id="k1",
        codec="gzip+aes-256-gcm",
        metadata={"database": "jarvis"},
    )
    return artifact.id


# --- opening and migrations -------------------------------------------------------------


def test_open_creates_a_private_wal_database_at_the_current_schema(catalog_path: Path):
    with Catalog.open(catalog_path) as catalog:
        catalog.create_backup_set("postgres")
        assert catalog.schema_version == SCHEMA_VERSION

        assert mode_of(catalog_path.parent) == 0o700
        assert mode_of(catalog_path) == 0o600
        wal = catalog_path.with_name(catalog_path.name + "-wal")
        assert wal.exists() and mode_of(wal) == 0o600

        observer = sqlite3.connect(catalog_path)
        try:
            assert observer.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert observer.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
            tables = {
                row[0]
                for row in observer.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
        finally:
            observer.close()
    assert {
        "backup_sets",
        "artifacts",
        "copies",
        "jobs",
        "job_events",
        "alerts",
        "schedule_runs",
    } <= tables


def test_reopening_keeps_data_and_applies_nothing_twice(catalog_path: Path):
    with Catalog.open(catalog_path) as catalog:
        set_id = catalog.create_backup_set("redis", created_at=T0).id
    for _ in range(2):
        with Catalog.open(catalog_path) as catalog:
            assert catalog.schema_version == SCHEMA_VERSION
            assert [s.id for s in catalog.list_backup_sets()] == [set_id]


def test_a_new_migration_is_applied_on_open_and_a_failing_one_leaves_nothing_behind(
    catalog_path: Path, monkeypatch: pytest.MonkeyPatch
):
    with Catalog.open(catalog_path) as catalog:
        set_id = catalog.create_backup_set("files", created_at=T0).id

    shipped = list(schema.MIGRATIONS)
    current, following = len(shipped), len(shipped) + 1
    broken = "CREATE TABLE half_done (x INTEGER);\nINSERT INTO no_such_table VALUES (1);\n"
    monkeypatch.setattr(schema, "MIGRATIONS", [*shipped, broken])
    monkeypatch.setattr(schema, "SCHEMA_VERSION", following)
    with pytest.raises(JarvisError, match=f"migration to schema version {following} failed"):
        Catalog.open(catalog_path)
    observer = sqlite3.connect(catalog_path)
    assert observer.execute("PRAGMA user_version").fetchone()[0] == current
    assert not observer.execute("SELECT 1 FROM sqlite_master WHERE name='half_done'").fetchone()
    observer.close()

    addition = "ALTER TABLE backup_sets ADD COLUMN label TEXT;\n"
    monkeypatch.setattr(schema, "MIGRATIONS", [*shipped, addition])
    with Catalog.open(catalog_path) as catalog:
        assert catalog.schema_version == following
        assert catalog.get_backup_set(set_id).kind == "files"
    observer = sqlite3.connect(catalog_path)
    assert observer.execute("PRAGMA user_version").fetchone()[0] == following
    assert "label" in [row[1] for row in observer.execute("PRAGMA table_info(backup_sets)")]
    observer.close()


def test_a_catalog_from_a_newer_version_is_refused(catalog_path: Path):
    Catalog.open(catalog_path).close()
    observer = sqlite3.connect(catalog_path)
    observer.execute("PRAGMA user_version = 99")
    observer.close()
    with pytest.raises(JarvisError, match=r"schema version 99.*upgrade jarvis-tui"):
        Catalog.open(catalog_path)


def test_a_file_that_is_not_a_catalog_is_reported_with_the_way_out(tmp_path: Path):
    path = tmp_path / "catalog.sqlite3"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(JarvisError, match=r"catalog rebuild"):
        Catalog.open(path)


# --- several processes at once ------------------------------------------------------------

WORKERS = 4
ROUNDS = 40


def _write_from_another_process(path: str, worker: int, barrier, errors) -> None:
    try:
        barrier.wait(timeout=30)
        with Catalog.open(Path(path)) as catalog:
            job = catalog.create_job("backup", f"worker {worker}")
            for round_ in range(ROUNDS):
                catalog.add_job_event(job.id, "info", f"worker {worker} round {round_}")
                catalog.create_backup_set("postgres", job_id=job.id, created_at=T0)
                catalog.update_job_progress(job.id, round_ + 1, ROUNDS, "rounds")
            catalog.finish_job(job.id, "succeeded")
    except BaseException:
        errors.put(traceback.format_exc())


def test_processes_opening_and_writing_at_once_lose_nothing(catalog_path: Path):
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(WORKERS)
    errors = context.Queue()
    processes = [
        context.Process(
            target=_write_from_another_process, args=(str(catalog_path), n, barrier, errors)
        )
        for n in range(WORKERS)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
    failures = []
    while not errors.empty():
        failures.append(errors.get())
    assert failures == []
    assert [process.exitcode for process in processes] == [0] * WORKERS

    with Catalog.open(catalog_path) as catalog:
        sets = catalog.list_backup_sets()
        assert len(sets) == WORKERS * ROUNDS
        # Every set was created in the same second, so all but one carry a suffix.
        expected_ids = {"postgres_2026-11-27_200101"} | {
            f"postgres_2026-11-27_200101-{n}" for n in range(2, WORKERS * ROUNDS + 1)
        }
        assert {s.id for s in sets} == expected_ids
        jobs = catalog.list_jobs()
        assert len(jobs) == WORKERS
        for job in jobs:
            assert job.status == "succeeded"
            assert (job.progress_done, job.progress_total) == (ROUNDS, ROUNDS)
            assert len(catalog.job_events(job.id)) == ROUNDS
            # The first set linked to the job is the one recorded on the job.
            assert catalog.get_backup_set(job.set_id).job_id == job.id


def test_a_write_lock_held_past_the_busy_timeout_is_a_clear_error(catalog_path: Path):
    with Catalog.open(catalog_path, busy_timeout_ms=100) as catalog:
        holder = sqlite3.connect(catalog_path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(JarvisError, match="stayed locked by another process for 100 ms"):
                catalog.create_job("backup", "blocked")
            assert catalog.list_jobs() == []  # readers are not blocked in WAL mode
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert catalog.create_job("backup", "after the lock").status == "running"


def test_threads_can_share_one_catalog(catalog: Catalog):
    job = catalog.create_job("verify", "threads")

    def write(thread: int) -> None:
        for n in range(50):
            catalog.add_job_event(job.id, "info", f"{thread}:{n}")
            catalog.list_backup_sets(limit=5)

    threads = [threading.Thread(target=write, args=(t,)) for t in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    messages = [event.message for event in catalog.job_events(job.id)]
    assert sorted(messages) == sorted(f"{t}:{n}" for t in range(6) for n in range(50))


# --- backup sets --------------------------------------------------------------------------


def test_set_ids_name_kind_and_utc_second_with_a_suffix_on_collision(catalog: Catalog):
    ids = [catalog.create_backup_set("postgres", created_at=T0).id for _ in range(3)]
    assert ids == [
        "postgres_2026-11-27_200101",
        "postgres_2026-11-27_200101-2",
        "postgres_2026-11-27_200101-3",
    ]
    in_berlin = T0.astimezone(timezone(timedelta(hours=1)))
    assert catalog.create_backup_set("redis", created_at=in_berlin).id == (
        "redis_2026-11-27_200101"
    )
    created = catalog.get_backup_set(ids[0])
    assert (created.status, created.tier, created.created_at) == ("running", None, T0)


def test_set_inputs_are_checked(catalog: Catalog):
    with pytest.raises(ValueError, match="no time zone"):
        catalog.create_backup_set("postgres", created_at=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="backup kind"):
        catalog.create_backup_set("../etc")
    with pytest.raises(ValueError, match="tier"):
        catalog.create_backup_set("postgres", tier="hourly")
    with pytest.raises(ValueError, match="status"):
        catalog.finish_backup_set(catalog.create_backup_set("redis").id, "done")
    assert catalog.list_backup_sets(kind="postgres") == []


def test_latest_is_the_newest_complete_set_optionally_of_a_kind(catalog: Catalog):
    older_postgres = complete_set(catalog, "postgres", T0)
    complete_set(catalog, "postgres", T0 + timedelta(hours=1), status="failed")
    complete_set(catalog, "postgres", T0 + timedelta(hours=2), status="partial")
    catalog.create_backup_set("postgres", created_at=T0 + timedelta(hours=3))  # still running
    newest_redis = complete_set(catalog, "redis", T0 + timedelta(minutes=30))

    assert catalog.get_backup_set("latest").id == newest_redis
    assert catalog.get_backup_set("latest", "postgres").id == older_postgres
    assert catalog.get_backup_set(older_postgres, "postgres").id == older_postgres


def test_not_found_names_what_was_asked_and_points_to_list(catalog: Catalog):
    with pytest.raises(NotFoundError) as empty:
        catalog.get_backup_set("latest")
    assert "no complete backup" in str(empty.value)
    assert "`jarvis-tui list`" in str(empty.value)

    redis_id = complete_set(catalog, "redis", T0)
    with pytest.raises(NotFoundError, match=r"no complete files backup.*jarvis-tui list"):
        catalog.get_backup_set("latest", "files")
    with pytest.raises(NotFoundError, match=r"'postgres_1999-01-01_000000'.*jarvis-tui list"):
        catalog.get_backup_set("postgres_1999-01-01_000000")
    with pytest.raises(NotFoundError, match="is a redis backup, not postgres"):
        catalog.get_backup_set(redis_id, "postgres")


def test_listing_is_newest_first_with_filters_and_sizes(catalog: Catalog):
    first = complete_set(catalog, "postgres", T0)
    second = complete_set(catalog, "redis", T0 + timedelta(days=1))
    third = complete_set(catalog, "postgres", T0 + timedelta(days=2), status="failed")
    add_complete_artifact(catalog, first, "postgres/a.sql.gz.enc", size=100)
    add_complete_artifact(catalog, first, "postgres/b.sql.gz.enc", size=23)

    assert [s.id for s in catalog.list_backup_sets()] == [third, second, first]
    assert [s.id for s in catalog.list_backup_sets(kind="postgres")] == [third, first]
    assert [s.id for s in catalog.list_backup_sets(limit=2)] == [third, second]
    assert [s.id for s in catalog.list_backup_sets(search="FAILED")] == [third]
    assert [s.id for s in catalog.list_backup_sets(search="11-28")] == [second]
    assert catalog.list_backup_sets(search="%") == []

    listed = {s.id: s for s in catalog.list_backup_sets()}
    assert (listed[first].artifact_count, listed[first].stored_size) == (2, 123)
    assert (listed[second].artifact_count, listed[second].stored_size) == (0, 0)


def test_deleting_a_set_removes_its_artifacts_and_copies(catalog: Catalog):
    set_id = complete_set(catalog, "postgres", T0)
    artifact_id = add_complete_artifact(catalog, set_id, "postgres/a.sql.gz.enc")
    catalog.set_copy_state(artifact_id, "s3", "stored")
    job = catalog.create_job("backup", "postgres", set_id=set_id)

    assert catalog.delete_backup_set(set_id) is True
    assert catalog.delete_backup_set(set_id) is False
    assert catalog.find_artifact_by_relpath("postgres/a.sql.gz.enc") is None
    assert catalog.copies_of(artifact_id) == []
    assert catalog.get_job(job.id).set_id is None


# --- artifacts and copies ------------------------------------------------------------------


def test_artifact_lifecycle(catalog: Catalog):
    set_id = catalog.create_backup_set("postgres", created_at=T0).id
    writing = catalog.add_artifact(set_id, "postgres", "dump", "postgres/x.sql.gz.enc")
    assert (writing.status, writing.checksum, writing.metadata) == ("writing", None, {})

    catalog.complete_artifact(
        writing.id,
        checksum="abc",
        stored_size=10,
        plain_size=30,
        key_id="k1",
        codec="gzip+aes-256-gcm",
        metadata={"database": "jarvis", "tables": 12},
    )
    failed = catalog.add_artifact(set_id, "redis", "rdb", "redis/x.rdb.gz.enc")
    catalog.fail_artifact(failed.id, "connection refused")

    done, broken = catalog.artifacts_of(set_id)
    assert (done.status, done.checksum, done.stored_size, done.plain_size) == (
        "complete",
        "abc",
        10,
        30,
    )
    assert (done.key_id, done.codec) == ("k1", "gzip+aes-256-gcm")
    assert done.metadata == {"database": "jarvis", "tables": 12}
    assert (broken.status, broken.error) == ("failed", "connection refused")
    assert catalog.find_artifact_by_relpath("postgres/x.sql.gz.enc") == done

    with pytest.raises(ValueError, match="already in the catalog"):
        catalog.add_artifact(set_id, "postgres", "dump", "postgres/x.sql.gz.enc")
    with pytest.raises(NotFoundError, match="no backup set named 'nope'"):
        catalog.add_artifact("nope", "postgres", "dump", "postgres/y.sql.gz.enc")
    with pytest.raises(NotFoundError):
        catalog.fail_artifact(9999, "x")


def test_verification_rolls_up_into_the_set(catalog: Catalog):
    set_id = complete_set(catalog, "postgres", T0)
    first = add_complete_artifact(catalog, set_id, "postgres/a.enc")
    second = add_complete_artifact(catalog, set_id, "postgres/b.enc")

    catalog.record_verification(first, True, "12 chunks authenticated")
    assert catalog.get_backup_set(set_id).verified_state is None
    catalog.record_verification(second, True, "3 chunks authenticated")
    assert catalog.get_backup_set(set_id).verified_state == "ok"
    catalog.record_verification(second, False, "chunk 2 failed authentication")
    assert catalog.get_backup_set(set_id).verified_state == "failed"

    checked = catalog.find_artifact_by_relpath("postgres/b.enc")
    assert (checked.verify_state, checked.verify_detail) == (
        "failed",
        "chunk 2 failed authentication",
    )
    assert checked.verified_at is not None


def test_copy_state_is_one_row_per_destination(catalog: Catalog):
    set_id = complete_set(catalog, "files", T0)
    artifact_id = add_complete_artifact(catalog, set_id, "files/snap.enc")
    catalog.set_copy_state(artifact_id, "local", "stored")
    catalog.set_copy_state(artifact_id, "s3", "pending")
    catalog.set_copy_state(artifact_id, "s3", "failed", error="503 Slow Down")

    local, s3 = catalog.copies_of(artifact_id)
    assert (local.destination, local.state, local.error) == ("local", "stored", None)
    assert (s3.destination, s3.state, s3.error) == ("s3", "failed", "503 Slow Down")
    with pytest.raises(ValueError, match="copy state"):
        catalog.set_copy_state(artifact_id, "s3", "lost")
    with pytest.raises(NotFoundError):
        catalog.set_copy_state(9999, "s3", "stored")


# --- rebuilding from sealed metadata --------------------------------------------------------


def sealed(**overrides):
    document = {
        "set_id": "postgres_2026-11-27_200101",
        "set_kind": "postgres",
        "set_tier": "daily",
        "source": "postgres",
        "mode": "dump",
        "created_at": "2026-11-27T20:01:05Z",
        "plain_size": 9000,
        "key_id": "k1",
        "codec": "gzip",
        "database": "jarvis",
        "server_version": "16.4",
    }
    document.update(overrides)
    return document


def found(relpath: str, checksum: str = "aaa", **overrides) -> SealedArtifact:
    return SealedArtifact(relpath, sealed(**overrides), checksum, 4096)


def test_importing_sealed_artifacts_is_an_idempotent_upsert(catalog: Catalog):
    dump = found("postgres/postgres_2026-11-27_200101_dump.enc")
    globals_ = found("postgres/postgres_2026-11-27_200101_globals.enc", "ggg", mode="globals")
    assert catalog.import_sealed_artifacts([dump]) == ["postgres_2026-11-27_200101"]
    assert catalog.import_sealed_artifacts([dump, globals_]) == []

    (backup_set,) = catalog.list_backup_sets()
    assert (backup_set.id, backup_set.kind, backup_set.tier, backup_set.status) == (
        "postgres_2026-11-27_200101",
        "postgres",
        "daily",
        "complete",
    )
    first, second = catalog.artifacts_of(backup_set.id)
    assert (first.relpath, first.status, first.checksum, first.stored_size) == (
        dump.relpath,
        "complete",
        "aaa",
        4096,
    )
    assert (first.plain_size, first.key_id, first.codec) == (9000, "k1", "gzip")
    assert first.created_at == datetime(2026, 11, 27, 20, 1, 5, tzinfo=UTC)
    assert first.metadata == {**dump.sealed, "checksum": "aaa", "stored_size": 4096}
    assert second.mode == "globals"
    assert catalog.get_backup_set("latest", "postgres").id == backup_set.id


def test_reimporting_a_changed_artifact_forgets_its_old_verification(catalog: Catalog):
    relpath = "postgres/postgres_2026-11-27_200101_dump.enc"
    catalog.import_sealed_artifacts([found(relpath)])
    artifact = catalog.find_artifact_by_relpath(relpath)
    catalog.record_verification(artifact.id, True, "ok")

    catalog.import_sealed_artifacts([found(relpath)])
    assert catalog.find_artifact_by_relpath(relpath).verify_state == "ok"
    catalog.import_sealed_artifacts([found(relpath, "bbb")])
    changed = catalog.find_artifact_by_relpath(relpath)
    assert (changed.id, changed.checksum, changed.verify_state) == (artifact.id, "bbb", None)
    assert catalog.get_backup_set(changed.set_id).verified_state is None


def test_malformed_sealed_metadata_is_refused(catalog: Catalog):
    document = sealed()
    del document["source"]
    with pytest.raises(IntegrityError, match="lacks source"):
        check_sealed("postgres/a.enc", document)
    with pytest.raises(IntegrityError, match="malformed"):
        check_sealed("postgres/a.enc", sealed(created_at="yesterday"))
    with pytest.raises(IntegrityError, match="malformed"):
        check_sealed("postgres/a.enc", sealed(set_kind="../etc"))


def test_a_rebuild_keeps_failed_and_partial_sets_and_drops_vanished_rows(catalog: Catalog):
    failed = catalog.create_backup_set("secrets", created_at=T0)
    kept = catalog.add_artifact(failed.id, "secrets", "file", f"secrets/{failed.id}_a.enc")
    catalog.fail_artifact(kept.id, "read-back failed")
    catalog.finish_backup_set(failed.id, "failed", "read-back failed")
    whole = complete_set(catalog, "postgres", T0 + timedelta(hours=1))
    add_complete_artifact(catalog, whole, f"postgres/{whole}_a.enc")
    add_complete_artifact(catalog, whole, f"postgres/{whole}_b.enc")
    gone = complete_set(catalog, "redis", T0 + timedelta(hours=2))
    add_complete_artifact(catalog, gone, f"redis/{gone}_a.enc")

    again = found(kept.relpath, set_id=failed.id, set_kind="secrets", source="secrets")
    assert catalog.import_sealed_artifacts([again]) == []
    dropped = catalog.forget_vanished_artifacts({kept.relpath, f"postgres/{whole}_a.enc"})

    assert sorted(dropped) == [f"postgres/{whole}_b.enc", f"redis/{gone}_a.enc"]
    assert catalog.get_backup_set(failed.id).status == "failed"
    assert [a.status for a in catalog.artifacts_of(failed.id)] == ["failed"]
    assert catalog.get_backup_set(whole).status == "partial"
    with pytest.raises(NotFoundError):
        catalog.get_backup_set(gone)


def test_a_new_set_lacking_a_sealed_part_is_partial(catalog: Catalog):
    set_id = "full_2026-11-27_200101"
    parts = ["postgres", "secrets"]
    (created,) = catalog.import_sealed_artifacts(
        [found(f"postgres/{set_id}_a.enc", set_id=set_id, set_kind="full", set_parts=parts)]
    )
    assert catalog.get_backup_set(created).status == "partial"
    assert "secrets" in catalog.get_backup_set(created).error


# --- jobs, alerts, secrets -----------------------------------------------------------------


def test_job_rows_events_and_cancel_flag(catalog: Catalog):
    job = catalog.create_job("backup", "full backup")
    assert (job.status, job.pid, job.cancel_requested) == ("running", job.pid, False)
    assert job.pid > 0 and job.host

    first = catalog.add_job_event(job.id, "info", "dumping postgres")
    catalog.add_job_event(job.id, "warning", "redis slow")
    assert [e.message for e in catalog.job_events(job.id, after_id=first)] == ["redis slow"]

    catalog.update_job_progress(job.id, 10, 100)
    catalog.update_job_progress(job.id, 20)
    progressed = catalog.get_job(job.id)
    assert (progressed.progress_done, progressed.progress_total) == (20, 100)

    assert catalog.request_job_cancel(job.id) is True
    assert catalog.job_cancel_requested(job.id) is True
    catalog.finish_job(job.id, "cancelled", "cancelled by request")
    assert catalog.request_job_cancel(job.id) is False
    finished = catalog.get_job(job.id)
    assert (finished.status, finished.error, finished.finished) == (
        "cancelled",
        "cancelled by request",
        True,
    )

    newer = catalog.create_job("verify", "latest")
    assert [j.id for j in catalog.list_jobs()] == [newer.id, job.id]
    with pytest.raises(NotFoundError, match="no job with id 9999"):
        catalog.get_job(9999)
    with pytest.raises(ValueError, match="event level"):
        catalog.add_job_event(job.id, "loud", "x")


def test_alerts_newest_first_with_delivery(catalog: Catalog):
    first = catalog.record_alert("warning", "copy-failed", "upload to s3 failed")
    second = catalog.record_alert(
        "critical", "backup-failed", "postgres backup failed", {"slack": "sent", "email": "failed"}
    )
    newest, oldest = catalog.list_alerts()
    assert (newest.id, newest.severity, newest.delivery) == (
        second,
        "critical",
        {"email": "failed", "slack": "sent"},
    )
    assert (oldest.id, oldest.message, oldest.delivery) == (first, "upload to s3 failed", {})
    with pytest.raises(ValueError, match="alert severity"):
        catalog.record_alert("fatal", "x", "y")


def test_registered_secrets_never_reach_the_catalog(catalog: Catalog, catalog_path: Path):
    secret = "pw-" + secrets.token_hex(8)
    register_secrets([secret])
    job = catalog.create_job("backup", f"connect with {secret}")
    catalog.add_job_event(job.id, "error", f"auth failed for password {secret}")
    catalog.finish_job(job.id, "failed", f"FATAL: password {secret} rejected")
    catalog.record_alert("critical", "backup-failed", f"dsn postgres://u:{secret}@db/x")
    set_id = catalog.create_backup_set("postgres").id
    artifact = catalog.add_artifact(set_id, "postgres", "dump", "postgres/a.enc")
    catalog.complete_artifact(
        artifact.id,
        checksum="c",
        stored_size=1,
        plain_size=1,
        key_id=None,
        codec="gzip",
        metadata={"dsn": f"postgres://u:{secret}@db/x", "nested": [secret]},
    )
    catalog.close()

    stored = b"".join(path.read_bytes() for path in catalog_path.parent.iterdir() if path.is_file())
    assert secret.encode() not in stored
    assert b"auth failed for password ****" in stored
