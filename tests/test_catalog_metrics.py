"""The catalog's aggregates for `GET /metrics` (engines/catalog/metrics.py), on a catalog
stamped by a frozen clock: each equals what the row-by-row questions answer."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engines.catalog import Catalog
from tests.console_fixtures import FrozenCatalogClock

T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
BOUNDS = (10.0, 60.0, 600.0)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FrozenCatalogClock:
    return FrozenCatalogClock(monkeypatch, T0)


@pytest.fixture
def catalog(tmp_path: Path, clock: FrozenCatalogClock):
    with Catalog.open(tmp_path / "catalog.sqlite3") as opened:
        yield opened


def _set(catalog: Catalog, kind: str, at: datetime, status: str, sizes: dict[str, int]) -> str:
    backup_set = catalog.create_backup_set(kind, tier="daily", created_at=at)
    for number, (source, size) in enumerate(sizes.items()):
        artifact = catalog.add_artifact(backup_set.id, source, "full", f"{backup_set.id}/{number}")
        catalog.complete_artifact(
            artifact.id,
            checksum="ab" * 32,
            stored_size=size,
            plain_size=size * 2,
            key_id="k1",
            codec="zstd",
            metadata={"snapshot": {"stored_bytes": 7}} if source == "files" else {},
        )
    catalog.finish_backup_set(backup_set.id, status)
    return backup_set.id


def _job(catalog: Catalog, clock: FrozenCatalogClock, kind: str, seconds: int, status: str):
    job = catalog.create_job(kind, f"{kind} something")
    clock.moment += timedelta(seconds=seconds)
    catalog.finish_job(job.id, status, None if status == "succeeded" else "it broke")
    clock.moment += timedelta(seconds=1)


def test_last_successes_are_the_watchdogs_with_what_each_source_added(catalog: Catalog) -> None:
    _set(catalog, "full", T0, "complete", {"postgres": 100, "files": 50})
    newer = _set(catalog, "postgres", T0 + timedelta(hours=1), "partial", {"postgres": 300})
    _set(catalog, "postgres", T0 + timedelta(hours=2), "failed", {"postgres": 999})
    found = {last.source: last for last in catalog.last_successes()}
    watchdog = catalog.last_good_backups()
    assert set(found) == set(watchdog) == {"postgres", "files"}
    for source, last in found.items():
        assert (last.set_id, last.created_at) == (
            watchdog[source].set_id,
            watchdog[source].created_at,
        )
    assert found["postgres"].set_id == newer and found["postgres"].added_bytes == 300
    files = [a for a in catalog.artifacts_of(found["files"].set_id) if a.source == "files"]
    assert found["files"].added_bytes == sum(a.added_bytes for a in files) == 57


def test_sets_are_counted_by_kind_and_status_and_the_newest_finished_is_named(
    catalog: Catalog,
) -> None:
    _set(catalog, "files", T0, "complete", {"files": 1})
    failed = T0 + timedelta(hours=1)
    _set(catalog, "files", failed, "failed", {})
    catalog.create_backup_set("files", created_at=T0 + timedelta(hours=2))  # still running
    _set(catalog, "redis", T0, "complete", {"redis": 1})
    assert catalog.set_counts() == {
        ("files", "complete"): 1,
        ("files", "failed"): 1,
        ("files", "running"): 1,
        ("redis", "complete"): 1,
    }
    assert catalog.last_set_statuses() == {"files": ("failed", failed), "redis": ("complete", T0)}


def test_job_durations_are_cumulative_buckets_per_kind_and_status(
    catalog: Catalog, clock: FrozenCatalogClock
) -> None:
    _job(catalog, clock, "backup", 5, "succeeded")
    _job(catalog, clock, "backup", 120, "succeeded")
    _job(catalog, clock, "backup", 30, "failed")
    _job(catalog, clock, "verify", 2000, "succeeded")
    catalog.create_job("backup", "still running")
    assert catalog.job_counts() == {
        ("backup", "succeeded"): 2,
        ("backup", "failed"): 1,
        ("backup", "running"): 1,
        ("verify", "succeeded"): 1,
    }
    found = {(d.kind, d.status): d for d in catalog.job_durations(BOUNDS)}
    assert set(found) == {("backup", "succeeded"), ("backup", "failed"), ("verify", "succeeded")}
    succeeded = found["backup", "succeeded"]
    assert (succeeded.buckets, succeeded.count) == ((1, 1, 2), 2)
    assert succeeded.sum_seconds == pytest.approx(125, abs=0.01)
    assert found["backup", "failed"].buckets == (0, 1, 1)
    assert found["verify", "succeeded"].buckets == (0, 0, 0)
    last = {job.kind: job for job in catalog.last_jobs()}
    assert (last["backup"].status, last["backup"].seconds) == ("failed", 30.0)
    assert (last["verify"].status, last["verify"].seconds) == ("succeeded", 2000.0)


def test_verification_counts_and_failed_deliveries(
    catalog: Catalog, clock: FrozenCatalogClock
) -> None:
    set_id = _set(catalog, "full", T0, "complete", {"postgres": 1, "redis": 2, "files": 3})
    postgres, redis, _files = catalog.artifacts_of(set_id)
    clock.moment = T0 + timedelta(hours=3)
    catalog.record_verification(postgres.id, True, "ok")
    clock.moment = T0 + timedelta(hours=4)
    catalog.record_verification(redis.id, False, "checksum mismatch")
    counted = {
        (v.source, v.state): (v.artifacts, v.last_verified_at)
        for v in catalog.verification_counts()
    }
    assert counted == {
        ("postgres", "ok"): (1, T0 + timedelta(hours=3)),
        ("redis", "failed"): (1, T0 + timedelta(hours=4)),
        ("files", "never"): (1, None),
    }
    catalog.record_alert("warning", "a", "m", {"slack": "failed: HTTP 500", "email": "sent (250)"})
    catalog.record_alert("warning", "b", "m", {"slack": "failed: timeout", "email": "failed: x"})
    catalog.queue_alert("critical", "c", "m", T0)
    assert catalog.failed_alert_deliveries() == {"slack": 2, "email": 1}
    assert catalog.undelivered_alerts() == 1
