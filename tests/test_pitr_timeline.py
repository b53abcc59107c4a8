"""`pitr timeline` (issue #16): a throwaway cluster archiving through our wal-push; the
window a restore can reach after a base backup and a few switched segments, and how a
segment deleted from the archive shows as a gap that ends the window before it."""

import json
from pathlib import Path

import pytest

from engines.catalog import Catalog
from tests.test_pitr_archive import Archive, _switch, archive, archive_command  # noqa: F401
from tests.test_pitr_restore import _base_backup


def _timeline(archive: Archive, *words: str) -> str:  # noqa: F811
    result = archive.cli("pitr", "timeline", *words)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _segments(archive: Archive) -> dict[str, Path]:  # noqa: F811
    """Archived segments only (a .backup file shares its segment's leading name)."""
    return {
        path.name.split(".")[0]: path
        for path in archive.repository.glob("wal/*/*/*.enc")
        if len(path.name.split(".")) == 3
    }


def test_without_a_base_backup_it_says_so_in_one_line(archive: Archive) -> None:  # noqa: F811
    out = _timeline(archive)
    assert out.strip().splitlines() == [
        "pitr timeline: no PostgreSQL base backup yet, so no moment to restore to "
        "(`jarvis-tui backup postgres --mode base` takes one)"
    ]
    assert json.loads(_timeline(archive, "--json"))["windows"] == []


@pytest.fixture(scope="module")
def base_set(archive: Archive) -> str:  # noqa: F811
    with archive.env_file.open("a") as settings:
        settings.write("BACKUP_COMPRESSION=zstd\n")  # gzip-9 of a cluster costs seconds
    base = _base_backup(archive)
    for _ in range(3):
        _switch(archive)
    checked = archive.cli("pitr", "check")  # the last switched segment arrived, so all did
    assert checked.returncode == 0, checked.stderr
    return base


def test_the_window_runs_from_the_base_backup_to_the_newest_segment(
    archive: Archive,  # noqa: F811
    base_set: str,
) -> None:
    report = json.loads(_timeline(archive, "--json"))
    ((system_id, pg_system_id),) = [
        (w["system_id"], archive.pg.execute("SELECT system_identifier::text FROM "
                                            "pg_control_system()")[0][0])
        for w in report["windows"]
    ]  # fmt: skip
    assert system_id == pg_system_id
    (window,) = report["windows"]
    assert set(window) == {
        "system_id", "timeline", "ranges", "gaps", "unusable", "note", "switches"
    }  # fmt: skip
    assert window["switches"] == []
    assert (window["timeline"], window["gaps"], window["unusable"]) == (1, [], [])
    (part,) = window["ranges"]
    assert part["base_backups"] == [base_set]
    newest = max(name for name in _segments(archive) if name.startswith("00000001"))
    assert part["latest_segment"] == newest
    assert part["latest_archived_at"]
    catalog = Catalog.open(archive.root / "catalog.db")
    try:
        (artifact,) = catalog.artifacts_of(base_set)
    finally:
        catalog.close()
    assert part["earliest_lsn"] == artifact.metadata["stop_lsn"]
    assert part["earliest_time"] == artifact.metadata["stop_time"]
    text = _timeline(archive)
    assert f"cluster {system_id}, timeline 1:" in text
    assert f"up to LSN {part['latest_lsn']} (segment {newest} archived at " in text
    assert f"(LSN {part['earliest_lsn']})" in text and f"base backups: {base_set}" in text


def test_a_deleted_segment_is_a_gap_that_ends_the_window_before_it(
    archive: Archive,  # noqa: F811
    base_set: str,
) -> None:
    report = json.loads(_timeline(archive, "--json"))
    (before,) = report["windows"][0]["ranges"]
    names = sorted(_segments(archive))
    newest = before["latest_segment"]
    missing = names[names.index(newest) - 1]  # switched after the base backup ended
    _segments(archive)[missing].unlink()
    (window,) = json.loads(_timeline(archive, "--json"))["windows"]
    assert window["gaps"] == [{"first": missing, "last": missing, "count": 1}]
    (part,) = window["ranges"]
    assert part["latest_segment"] == names[names.index(missing) - 1]
    assert part["earliest_lsn"] == before["earliest_lsn"]
    assert f"gap: 1 segment(s) missing: {missing}" in _timeline(archive)


def test_a_repository_without_the_archive_says_so_in_one_line(
    archive: Archive,  # noqa: F811
    base_set: str,
    tmp_path: Path,
) -> None:
    empty = tmp_path / "repository"
    empty.mkdir()
    env_file = tmp_path / "jarvis.env"
    env_file.write_text(
        archive.env_file.read_text().replace(
            f"BACKUP_DIR={archive.repository}", f"BACKUP_DIR={empty}"
        )
    )
    result = archive.cli("pitr", "timeline", env_file=env_file)
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.strip().splitlines()
    assert line.startswith("cluster ") and ", timeline 1: the archive holds no WAL of this " in line


def test_a_base_backup_after_the_gap_opens_a_second_range(
    archive: Archive,  # noqa: F811
    base_set: str,
) -> None:
    (before,) = json.loads(_timeline(archive, "--json"))["windows"]
    assert before["gaps"], "runs after the deleted-segment test"
    later = _base_backup(archive)
    _switch(archive)
    assert archive.cli("pitr", "check").returncode == 0
    (window,) = json.loads(_timeline(archive, "--json"))["windows"]
    first, second = window["ranges"]
    assert (first, window["gaps"]) == (before["ranges"][0], before["gaps"])
    newest = max(name for name in _segments(archive) if name.startswith("00000001"))
    assert (second["base_backups"], second["latest_segment"]) == ([later], newest)
    lines = _timeline(archive).splitlines()
    assert [line.split(";")[-1] for line in lines if "  from " in line] == [
        f" base backups: {base_set}",
        f" base backups: {later}",
    ]
