"""The catalog's grouped counts for the API's overview (engines/catalog/stats.py) and the
indexed `last_good_backups`: each equals what the row-by-row reading of the same catalog
says, on a seeded mix of statuses, tiers, verifications, copies and equal start times."""

import random
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engines.catalog import Artifact, BackupSet, Catalog
from engines.monitoring.overview import _FiguresCache
from engines.repository.offsite import offsite_status
from tests.support.catalog_figures import (
    destination_totals,
    source_totals,
    tier_totals,
    verification_totals,
)

T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
SOURCES = ("postgres", "redis", "files", "secrets")
TIERS = ("daily", "weekly", "monthly", "manual", None)


def _seed(catalog: Catalog, sets: int, seed: int) -> None:
    draw = random.Random(seed)
    for number in range(sets):
        # Every fifth set starts at the same moment as the one before: ties by rowid.
        at = T0 + timedelta(minutes=10 * (number - number // 5))
        kind = draw.choice((*SOURCES, "full"))
        backup_set = catalog.create_backup_set(kind, tier=draw.choice(TIERS), created_at=at)
        sources = SOURCES if kind == "full" else (kind,)
        for index, source in enumerate(sources):
            artifact = catalog.add_artifact(
                backup_set.id, source, draw.choice(("full", "base")), f"{backup_set.id}/{index}"
            )
            if draw.random() < 0.15:
                catalog.fail_artifact(artifact.id, "it broke")
                continue
            if draw.random() < 0.05:
                continue  # still writing
            size = draw.randrange(1, 10_000)
            catalog.complete_artifact(
                artifact.id,
                checksum="ab" * 32,
                stored_size=size,
                plain_size=size * 3,
                key_id="k1",
                codec="zstd",
                metadata={"snapshot": {"stored_bytes": 70}} if source == "files" else {},
            )
            if draw.random() < 0.6:
                catalog.record_verification(artifact.id, draw.random() < 0.8, "checked")
            for destination in ("local", "s3"):
                state = draw.choice(("stored", "stored", "failed", "pending", None))
                if state is not None:
                    catalog.set_copy_state(artifact.id, destination, state)
        status = draw.choice(("complete", "complete", "partial", "failed", "running"))
        if status != "running":
            catalog.finish_backup_set(backup_set.id, status)


@pytest.fixture(params=[0, 1, 2])
def catalog(request: pytest.FixtureRequest, tmp_path: Path):
    with Catalog.open(tmp_path / "catalog.sqlite3") as opened:
        _seed(opened, 120, request.param)
        yield opened


def _sets(catalog: Catalog) -> list[BackupSet]:
    return catalog.list_backup_sets()  # newest first, equal start times by insertion


def _complete(catalog: Catalog) -> list[Artifact]:
    return [a for a in catalog.all_artifacts() if a.status == "complete"]


def test_source_totals_count_complete_artifacts_and_what_they_added(catalog: Catalog) -> None:
    expected: dict[str, list] = defaultdict(lambda: [set(), 0, 0, 0])
    for artifact in _complete(catalog):
        entry = expected[artifact.source]
        entry[0].add(artifact.set_id)
        entry[1] += 1
        entry[2] += artifact.added_bytes
        entry[3] += artifact.plain_size or 0
    found = {
        t.source: (t.sets, t.artifacts, t.stored_bytes, t.plain_bytes)
        for t in source_totals(catalog)
    }
    assert found == {s: (len(e[0]), e[1], e[2], e[3]) for s, e in expected.items()}
    assert set(found) == set(SOURCES)


def test_tier_totals_count_sets_by_status_with_their_complete_bytes(catalog: Catalog) -> None:
    added = Counter()
    for artifact in _complete(catalog):
        added[artifact.set_id] += artifact.added_bytes
    expected: dict[str | None, Counter] = defaultdict(Counter)
    for backup_set in _sets(catalog):
        counts = expected[backup_set.tier]
        counts["sets"] += 1
        counts[backup_set.status] += 1
        counts["bytes"] += added[backup_set.id]
    found = tier_totals(catalog)
    assert [t.tier for t in found] == sorted(t for t in expected if t) + [None] * (None in expected)
    for totals in found:
        counts = expected[totals.tier]
        assert (totals.sets, totals.stored_bytes) == (counts["sets"], counts["bytes"])
        assert (totals.complete, totals.partial, totals.failed, totals.running) == (
            counts["complete"],
            counts["partial"],
            counts["failed"],
            counts["running"],
        )


def test_verification_totals_cover_complete_artifacts_and_good_sets(catalog: Catalog) -> None:
    complete = _complete(catalog)
    states = Counter(a.verify_state for a in complete)
    good = [s for s in _sets(catalog) if s.status in ("complete", "partial")]
    set_states = Counter(s.verified_state for s in good)
    moments = [a.verified_at for a in complete if a.verified_at is not None]
    totals = verification_totals(catalog)
    assert (totals.artifacts, totals.artifacts_ok, totals.artifacts_failed) == (
        len(complete),
        states["ok"],
        states["failed"],
    )
    assert totals.artifacts_never == states[None] > 0
    assert (totals.sets, totals.sets_ok, totals.sets_failed, totals.sets_never) == (
        len(good),
        set_states["ok"],
        set_states["failed"],
        set_states[None],
    )
    assert (totals.oldest_verified_at, totals.newest_verified_at) == (min(moments), max(moments))


def test_destination_totals_count_complete_artifacts_stored_there(catalog: Catalog) -> None:
    complete = {a.id: a for a in _complete(catalog)}
    for destination in ("local", "s3", "elsewhere"):
        stored = [
            complete[p.artifact_id]
            for p in catalog.placed_artifacts()
            if any(c.destination == destination and c.state == "stored" for c in p.copies)
        ]
        totals = destination_totals(catalog, destination)
        assert (totals.artifacts, totals.stored_bytes) == (
            len(stored),
            sum(a.added_bytes for a in stored),
        )


def test_offsite_summary_is_copy_counts_on_summed(catalog: Catalog) -> None:
    for destination in ("s3", "elsewhere"):
        counts = catalog.copy_counts_on(destination)
        behind = [c for c in counts if c.stored < c.artifacts]
        summary = catalog.offsite_summary(destination)
        assert (summary.finished_sets, summary.incomplete_sets, summary.failed_copies) == (
            len(counts),
            len(behind),
            sum(c.failed for c in counts),
        )
        assert summary.newest_incomplete == (behind[0].set_id if behind else None)
    (status,) = offsite_status(catalog, ["s3"])
    assert status.newest_not_offsite is not None and status.newest_gaps


def test_last_good_backups_is_the_newest_good_set_per_source(catalog: Catalog) -> None:
    complete_sources: dict[str, set[str]] = defaultdict(set)
    for artifact in _complete(catalog):
        complete_sources[artifact.set_id].add(artifact.source)
    expected: dict[str, tuple[str, datetime]] = {}
    for backup_set in _sets(catalog):
        if backup_set.status in ("complete", "partial"):
            for source in complete_sources[backup_set.id]:
                expected.setdefault(source, (backup_set.id, backup_set.created_at))
    found = catalog.last_good_backups()
    assert {s: (g.set_id, g.created_at) for s, g in found.items()} == expected
    assert set(expected) == set(SOURCES)


def test_an_empty_catalog_counts_nothing(tmp_path: Path) -> None:
    with Catalog.open(tmp_path / "catalog.sqlite3") as catalog:
        assert source_totals(catalog) == [] and tier_totals(catalog) == []
        assert catalog.last_good_backups() == {}
        totals = verification_totals(catalog)
        assert (totals.artifacts, totals.sets, totals.oldest_verified_at) == (0, 0, None)
        summary = catalog.offsite_summary("s3")
        assert (summary.finished_sets, summary.incomplete_sets, summary.newest_incomplete) == (
            0,
            0,
            None,
        )
        assert destination_totals(catalog, "s3").artifacts == 0


def test_the_overviews_figures_are_read_again_only_when_a_set_artifact_or_copy_changes(
    tmp_path: Path,
) -> None:
    path = tmp_path / "catalog.sqlite3"
    cache = _FiguresCache()
    with Catalog.open(path) as reader, Catalog.open(path) as writer:
        backup_set = writer.create_backup_set("redis", tier="daily", created_at=T0)
        first = cache.figures(reader, ("s3",))
        assert cache.figures(reader, ("s3",)) is first
        job = writer.create_job("backup", "backup redis")
        writer.update_job_progress(job.id, 10, 100)  # another process's job moving on
        assert cache.figures(reader, ("s3",)) is first
        artifact = writer.add_artifact(backup_set.id, "redis", "full", "redis/a.enc")
        second = cache.figures(reader, ("s3",))
        assert second is not first and second.tiers[0].sets == 1
        writer.set_copy_state(artifact.id, "s3", "stored")
        assert cache.figures(reader, ("s3",)) is not second
        assert cache.figures(reader, ()) is not cache.figures(reader, ("s3",))


def test_the_overviews_figures_in_two_passes_equal_each_grouped_query(catalog: Catalog) -> None:
    destinations = ("local", "s3", "elsewhere")
    figures = catalog.overview_figures(destinations)
    assert figures.sources == source_totals(catalog)
    assert figures.tiers == tier_totals(catalog)
    assert figures.verification == verification_totals(catalog)
    assert figures.stored_on == {d: destination_totals(catalog, d) for d in destinations}
    assert figures.offsite == {d: catalog.offsite_summary(d) for d in destinations}
    assert catalog.overview_figures(()).offsite == {}


def test_an_empty_catalogs_overview_figures_count_nothing(tmp_path: Path) -> None:
    with Catalog.open(tmp_path / "catalog.sqlite3") as catalog:
        figures = catalog.overview_figures(("s3",))
        assert (figures.sources, figures.tiers) == ([], [])
        assert figures.verification == verification_totals(catalog)
        assert figures.offsite == {"s3": catalog.offsite_summary("s3")}
        assert figures.stored_on == {"s3": destination_totals(catalog, "s3")}
