"""The catalog's paged, filtered set listing and its artifacts-of-many-sets read."""

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from engines.catalog import Catalog, SetFilter

T0 = datetime(2026, 11, 27, 20, 0, 0, tzinfo=UTC)


@pytest.fixture
def catalog(tmp_path: Path):
    with Catalog.open(tmp_path / "catalog.sqlite3") as opened:
        yield opened


def make_set(catalog: Catalog, kind: str, minutes: int, status: str = "complete", **parts):
    """A set started `minutes` after T0; `parts` maps a source to its stored sizes."""
    backup_set = catalog.create_backup_set(kind, created_at=T0 + timedelta(minutes=minutes))
    for source, sizes in parts.items():
        for number, size in enumerate(sizes):
            artifact = catalog.add_artifact(
                backup_set.id, source, "dump", f"{source}/{backup_set.id}_{number}.enc"
            )
            catalog.complete_artifact(
                artifact.id,
                checksum="ab" * 32,
                stored_size=size,
                plain_size=size,
                key_id="k1",
                codec="zstd",
                metadata={"snapshot": {"stored_bytes": 1000}} if source == "files" else {},
            )
    catalog.finish_backup_set(backup_set.id, status)
    return backup_set.id


def walk(catalog: Catalog, wanted: SetFilter, limit: int) -> list[list[str]]:
    pages, after = [], None
    while True:
        page = catalog.page_backup_sets(wanted, limit=limit, after=after)
        pages.append([s.id for s in page.sets])
        if not page.more:
            return pages
        after = page.positions[-1]


def test_pages_walk_every_set_once_in_the_listing_order(catalog: Catalog) -> None:
    for minute in range(7):
        make_set(catalog, "files", minute, files=[10])
    # Two sets in the same second: rowid breaks the tie as `list_backup_sets` does.
    make_set(catalog, "secrets", 3, secrets=[5])
    listed = [s.id for s in catalog.list_backup_sets()]
    pages = walk(catalog, SetFilter(), limit=3)
    assert [len(page) for page in pages] == [3, 3, 2]
    assert [set_id for page in pages for set_id in page] == listed
    assert catalog.page_backup_sets(SetFilter(), limit=3).total == 8


def test_sizes_and_counts_match_the_listing(catalog: Catalog) -> None:
    make_set(catalog, "full", 1, postgres=[100, 20], files=[7])
    make_set(catalog, "redis", 2)
    page = catalog.page_backup_sets(SetFilter(), limit=10)
    assert page.sets == catalog.list_backup_sets()
    full = page.sets[1]
    assert (full.artifact_count, full.stored_size) == (3, 100 + 20 + 7 + 1000)
    assert (page.sets[0].artifact_count, page.sets[0].stored_size) == (0, 0)


def test_filters_by_kind_source_status_and_time(catalog: Catalog) -> None:
    full = make_set(catalog, "full", 0, postgres=[1], files=[1])
    files = make_set(catalog, "files", 10, files=[1])
    postgres = make_set(catalog, "postgres", 20, "failed")
    redis = make_set(catalog, "redis", 30, redis=[1])

    def ids(**wanted) -> list[str]:
        return [s.id for s in catalog.page_backup_sets(SetFilter(**wanted), limit=100).sets]

    assert ids(kind="files") == [files]
    assert ids(source="files") == [files, full]
    assert ids(source="postgres") == [postgres, full]
    assert ids(source="postgres", status="complete") == [full]
    assert ids(status="failed") == [postgres]
    assert ids(since=T0 + timedelta(minutes=10)) == [redis, postgres, files]
    assert ids(until=T0 + timedelta(minutes=10)) == [full]
    # Another zone names the same moment.
    plus_two = timezone(timedelta(hours=2))
    moment = (T0 + timedelta(minutes=20)).astimezone(plus_two)
    assert ids(since=moment, until=moment + timedelta(minutes=10)) == [postgres]
    assert catalog.page_backup_sets(SetFilter(kind="config"), limit=5).total == 0
    assert ids(kind="files", source="postgres") == []


def test_a_page_after_a_position_stays_right_while_new_sets_arrive(catalog: Catalog) -> None:
    for minute in range(4):
        make_set(catalog, "files", minute)
    first = catalog.page_backup_sets(SetFilter(), limit=2)
    newest = make_set(catalog, "files", 60)
    second = catalog.page_backup_sets(SetFilter(), limit=2, after=first.positions[-1])
    listed = [s.id for s in catalog.list_backup_sets()]
    assert listed[0] == newest
    assert [s.id for s in first.sets + second.sets] == listed[1:]
    assert second.total == 5 and not second.more


def test_a_page_after_a_deleted_set_still_continues(catalog: Catalog) -> None:
    for minute in range(4):
        make_set(catalog, "files", minute)
    first = catalog.page_backup_sets(SetFilter(), limit=2)
    assert catalog.delete_backup_set(first.sets[-1].id)
    second = catalog.page_backup_sets(SetFilter(), limit=2, after=first.positions[-1])
    assert [s.id for s in second.sets] == [s.id for s in catalog.list_backup_sets()][1:]


def test_a_page_holds_at_least_one_set(catalog: Catalog) -> None:
    with pytest.raises(ValueError, match="at least one"):
        catalog.page_backup_sets(SetFilter(), limit=0)
    with pytest.raises(ValueError, match="time zone"):
        catalog.page_backup_sets(SetFilter(since=datetime(2026, 1, 1)), limit=1)


def test_artifacts_of_sets_in_one_read(catalog: Catalog) -> None:
    full = make_set(catalog, "full", 0, postgres=[1, 2], files=[3])
    empty = make_set(catalog, "redis", 1)
    found = catalog.artifacts_of_sets([empty, full, "no-such-set"])
    assert list(found) == [empty, full, "no-such-set"]
    assert found[full] == catalog.artifacts_of(full)
    assert found[empty] == [] and found["no-such-set"] == []


def test_artifact_states_are_the_artifacts_without_their_metadata(catalog: Catalog) -> None:
    full = make_set(catalog, "full", 0, postgres=[1], files=[3])
    (postgres, _) = catalog.artifacts_of(full)
    catalog.record_verification(postgres.id, False, "bad tag")
    states = catalog.artifact_states_of_sets([full])[full]
    assert [(s.source, s.status, s.verify_state) for s in states] == [
        ("postgres", "complete", "failed"),
        ("files", "complete", None),
    ]
    assert states[0].verified_at == catalog.get_artifact(postgres.id).verified_at
