"""Catalog.job_events_tail (a long job's log read from its end) and list_jobs by status."""

from pathlib import Path

import pytest

from engines.catalog import Catalog


@pytest.fixture
def catalog(tmp_path: Path):
    with Catalog.open(tmp_path / "catalog.sqlite3") as opened:
        yield opened


def test_the_tail_is_the_last_events_in_order(catalog: Catalog) -> None:
    job = catalog.create_job("backup", "backup files")
    other = catalog.create_job("backup", "backup redis")
    for n in range(10):
        catalog.add_job_event(job.id, "info", f"line {n}")
        catalog.add_job_event(other.id, "info", f"other {n}")
    assert [e.message for e in catalog.job_events_tail(job.id, 3)] == [
        "line 7",
        "line 8",
        "line 9",
    ]
    assert len(catalog.job_events_tail(job.id, 1000)) == 10
    assert catalog.job_events_tail(job.id, 0) == []


def test_jobs_by_status_newest_first(catalog: Catalog) -> None:
    first = catalog.create_job("backup", "one")
    second = catalog.create_job("verify", "two")
    third = catalog.create_job("backup", "three")
    catalog.finish_job(second.id, "succeeded")
    assert [j.id for j in catalog.list_jobs(status="running")] == [third.id, first.id]
    assert [j.id for j in catalog.list_jobs(status="succeeded")] == [second.id]
    assert [j.id for j in catalog.list_jobs(1, status="running")] == [third.id]
    assert [j.id for j in catalog.list_jobs()] == [third.id, second.id, first.id]
    with pytest.raises(ValueError, match="job status"):
        catalog.list_jobs(status="sleeping")
