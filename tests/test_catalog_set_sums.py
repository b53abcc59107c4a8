"""A set's artifact count and stored bytes are summed for the sets a lookup returns only.

Before, every set lookup (one set by id, `latest`, a page of the listing) grouped the
whole artifacts table first: 15 ms for one set among 10,000 (benchmarks/api.py), and
seeding a large catalog took quadratic time. The plans are SQLite's own answer to what
a query reads; the sums are checked against the artifacts themselves.
"""

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engines.catalog import Catalog
from engines.catalog.backups import _select_sets

T0 = datetime(2026, 11, 27, 20, 1, 1, tzinfo=UTC)


@pytest.fixture
def catalog(tmp_path: Path):
    with Catalog.open(tmp_path / "catalog.sqlite3") as opened:
        for number in range(30):
            kind = ("postgres", "files", "redis")[number % 3]
            backup_set = opened.create_backup_set(
                kind, tier="daily", created_at=T0 + timedelta(hours=number)
            )
            for part in range(number % 3):  # 0, 1 or 2 artifacts
                artifact = opened.add_artifact(
                    backup_set.id, kind, "full", f"{kind}/{backup_set.id}_{part}.zst.enc"
                )
                opened.complete_artifact(
                    artifact.id,
                    checksum="ab" * 32,
                    stored_size=1000 + number,
                    plain_size=4000,
                    key_id="k1",
                    codec="zstd",
                    metadata={"snapshot": {"stored_bytes": 7}} if kind == "files" else {},
                )
            opened.finish_backup_set(backup_set.id, "complete" if number % 5 else "failed")
        yield opened


def plan(catalog: Catalog, sql: str, params: list) -> list[str]:
    with sqlite3.connect(catalog.path) as conn:
        return [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]


@pytest.mark.parametrize(
    ("where", "params", "limit"),
    [
        ("s.id = ?", ["postgres_2026-11-28_020101"], False),
        ("s.deleting_since IS NULL AND s.status = 'complete'", [1], True),
        ("s.kind = ?", ["files", 100], True),
        ("1", [100], True),
    ],
)
def test_lookups_read_the_artifacts_of_the_chosen_sets_only(catalog, where, params, limit):
    steps = plan(catalog, _select_sets(where, limit=limit), params)
    assert not [step for step in steps if "artifacts" in step and step.startswith("SCAN")]
    # The old plan: MATERIALIZE a, SCAN artifacts USING INDEX artifacts_by_set (every row).
    assert [step for step in steps if "artifacts_by_set (set_id=?)" in step], steps


def test_the_sums_are_each_sets_own(catalog):
    listed = catalog.list_backup_sets()
    assert len(listed) == 30
    assert [s.created_at for s in listed] == sorted((s.created_at for s in listed), reverse=True)
    for backup_set in listed:
        artifacts = catalog.artifacts_of(backup_set.id)
        assert backup_set.artifact_count == len(artifacts)
        assert backup_set.stored_size == sum(a.added_bytes for a in artifacts)
        assert catalog.get_backup_set(backup_set.id) == backup_set
    newest_complete = next(s for s in listed if s.status == "complete")
    assert catalog.get_backup_set("latest") == newest_complete
    assert (
        catalog.list_backup_sets(kind="files", limit=4)
        == [s for s in listed if s.kind == "files"][:4]
    )
    assert catalog.list_backup_sets(search="failed") == [s for s in listed if s.status == "failed"]
