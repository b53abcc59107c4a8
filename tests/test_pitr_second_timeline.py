"""A second timeline (issue #16): a restore to a moment promoted with archiving on through our
wal-push starts timeline 2, whose history file names the switch point on timeline 1; rows
written there are archived, and a restore to a moment on timeline 2 starts from timeline
1's base backup (timeline 2 has none of its own), follows timeline 1 up to the switch and
timeline 2 after it: exactly timeline 1's rows before the first target and timeline 2's up
to the second. A base backup taken on timeline 1 after the switch is not on timeline 2's
history and is passed over. `pitr timeline` shows both windows; `--target immediate` gives
the rows of the base backup alone."""

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from engines.pitr.restore_pitr import BEGIN, END
from engines.pitr.timeline_history import Switch, TimelinePath, parse_history
from tests.support.postgres import PostgresServer
from tests.support.processes import wait_until
from tests.test_pitr_archive import Archive, archive  # noqa: F401
from tests.test_pitr_restore import TABLE, _base_backup, _table_and_base_backup
from tests.test_pitr_start import (
    free_port,
    jarvis_beside_python,
    restore_and_start,
    rows,
    server_jarvis,
    stopped_after,
)


@dataclass(frozen=True)
class Branch:
    archive: Archive
    base_set: str  # on timeline 1, before every row
    after_switch_set: str  # on timeline 1, after the switch: not on timeline 2's history
    first_target: str  # after row 1 (timeline 1), before row 2
    switch_lsn: str  # where timeline 2 begins
    moments: dict[int, str]  # timeline 2's rows 10 and 11 -> the clock after each


def _write(pg: PostgresServer, n: int) -> str:
    pg.execute(f"INSERT INTO {TABLE} VALUES ({n})")
    ((moment,),) = pg.execute("SELECT clock_timestamp()::text")
    pg.execute("SELECT pg_switch_wal()")
    return moment


@pytest.fixture(scope="module")
def branch(archive: Archive) -> Branch:  # noqa: F811
    base_set = _table_and_base_backup(archive, TABLE)
    pg = archive.pg
    first_target = _write(pg, 1)
    _write(pg, 2)
    _write(pg, 3)
    after_switch_set = _base_backup(archive)
    assert archive.cli("pitr", "check").returncode == 0
    folder = archive.root / "first-recovery"
    first = _restore(archive, folder, "--target-time", first_target)
    assert first.returncode == 0, first.stderr
    promoted = PostgresServer(data_source=_archiving(archive, folder))
    try:
        promoted.start()
        wait_until(
            lambda: promoted.execute("SELECT pg_is_in_recovery()") == [(False,)],
            timeout=60,
            what="the first recovery to promote",
        )
        ((timeline,),) = promoted.execute("SELECT timeline_id FROM pg_control_checkpoint()")
        assert timeline == 2
        moments = {n: _write(promoted, n) for n in (10, 11)}
        ((last,),) = promoted.execute("SELECT pg_walfile_name(pg_current_wal_lsn())")
        switched = f"{last[:16]}{int(last[16:], 16) - 1:08X}"
        wait_until(
            lambda: (
                (promoted.execute("SELECT last_archived_wal FROM pg_stat_archiver")[0][0] or "")
                >= switched
            ),
            timeout=60,
            what="timeline 2's segments to be archived",
        )
    finally:
        promoted.close()
    history = (archive.repository / "wal").glob("*/00000002.history.*")
    assert list(history), "the promotion's history file reached the archive"
    switch = _switch_lsn(archive)
    return Branch(archive, base_set, after_switch_set, first_target, switch, moments)


def _restore(archive: Archive, folder: Path, *words: str):  # noqa: F811
    """A restore whose restore_command PostgreSQL's account can run (no server started)."""
    import subprocess

    return subprocess.run(
        [*jarvis_beside_python(archive), "--env-file", str(archive.env_file), "restore",
         "postgres", "--pitr", *words, "--pgdata", str(folder)],
        capture_output=True, text=True, timeout=180, cwd=archive.root,
    )  # fmt: skip


def _archiving(archive: Archive, folder: Path) -> Path:  # noqa: F811
    """The restored folder with archiving on through our wal-push (the restore turned it
    off so that a copy never pushes; here the copy is to go on as timeline 2)."""
    auto = folder / "postgresql.auto.conf"
    text = auto.read_text()
    push = f"'{server_jarvis(archive)} --env-file {archive.env_file} wal-push %p'"
    auto.write_text(
        text.replace("archive_mode = 'off'", f"archive_mode = 'on'\narchive_command = {push}")
    )
    return folder


def _switch_lsn(archive: Archive) -> str:  # noqa: F811
    fetched = archive.root / "pg_wal" / "00000002.history"
    fetched.parent.mkdir(exist_ok=True)
    result = archive.fetch("00000002.history", fetched)
    assert result.returncode == 0, result.stderr
    (switch,) = parse_history(fetched.read_text())
    assert switch.timeline == 1
    return switch.lsn


def test_a_path_reads_each_segment_from_the_newest_timeline_begun_by_then() -> None:
    path = TimelinePath(3, (Switch(1, "0/5000100"), Switch(2, "0/7000000")))
    size = 16 << 20
    assert [path.timeline_at(n, size) for n in (4, 5, 6, 7, 8)] == [1, 2, 2, 3, 3]
    assert path.holds(1, "0/4000000") and not path.holds(1, "0/6000000")
    assert path.holds(2, "0/6000000") and path.holds(3, "0/9000000")
    assert not TimelinePath(2, (Switch(1, "0/5000100"),)).holds(3, "0/1000000")
    assert TimelinePath(1).timeline_at(9, size) == 1 and TimelinePath(1).holds(1, "0/9000000")
    assert parse_history("1\t0/5000100\tbefore 2026-12-06\n\n2\t0/7000000\tno reason\n") == (
        Switch(1, "0/5000100"),
        Switch(2, "0/7000000"),
    )


def test_pitr_timeline_shows_both_windows(branch: Branch) -> None:
    result = branch.archive.cli("pitr", "timeline", "--json")
    assert result.returncode == 0, result.stderr
    first, second = json.loads(result.stdout)["windows"]
    assert (first["timeline"], first["switches"]) == (1, [])
    assert [part["base_backups"] for part in first["ranges"]] == [
        [branch.base_set, branch.after_switch_set]
    ]
    assert second["timeline"] == 2
    assert second["switches"] == [{"timeline": 1, "lsn": branch.switch_lsn}]
    (part,) = second["ranges"]
    assert part["base_backups"] == [branch.base_set]  # the later one is on another branch
    assert part["latest_segment"].startswith("00000002") and second["gaps"] == []
    text = branch.archive.cli("pitr", "timeline").stdout
    assert "timeline 2:" in text and f"base backups: {branch.base_set}" in text
    assert f"  along timeline 1 up to {branch.switch_lsn}, then timeline 2\n" in text


def test_a_moment_on_timeline_2_restores_both_timelines_rows(branch: Branch) -> None:
    arc, port = branch.archive, free_port()
    folder = arc.root / "second-recovery"
    with stopped_after(folder):
        result = restore_and_start(arc, folder, port, "--target-time", branch.moments[10])
        assert result.returncode == 0, result.stderr + result.stdout
        out = result.stdout
        assert f"laid out base backup postgres/{branch.base_set}" in out
        assert f"along timeline 1 up to {branch.switch_lsn}, then timeline 2" in out
        assert "promoted on timeline 3" in out
        auto = (folder / "postgresql.auto.conf").read_text()
        assert "recovery_target_timeline = '2'" in auto[auto.index(BEGIN) : auto.index(END)]
        assert rows(port) == [1, 10]
    along_one = _restore(
        arc, arc.root / "dry", "--target-time", branch.moments[10], "--target-timeline", "1",
        "--dry-run",
    )  # fmt: skip
    assert along_one.returncode == 0, along_one.stderr
    assert f"would lay out base backup postgres/{branch.after_switch_set}" in along_one.stdout
    assert "on timeline 1, then promote" in along_one.stdout


def test_a_missing_segment_of_timeline_2_is_named(branch: Branch) -> None:
    stored = branch.archive.stored()
    switched = sorted(n for n in stored if n.startswith("00000002"))[0]
    aside = stored[switched].with_name("aside")
    stored[switched].rename(aside)
    try:
        result = _restore(
            branch.archive, branch.archive.root / "gap", "--target-time", branch.moments[11],
            "--dry-run",
        )  # fmt: skip
        err = result.stderr.strip()
        assert result.returncode != 0 and len(err.splitlines()) == 1, err
        assert f"WAL segment {switched} is not in the archive" in err, err
    finally:
        aside.rename(stored[switched])


def test_target_immediate_gives_the_base_backups_rows_alone(branch: Branch) -> None:
    arc, port = branch.archive, free_port()
    folder = arc.root / "immediate"
    with stopped_after(folder):
        result = restore_and_start(arc, folder, port, branch.base_set, "--target", "immediate")
        assert result.returncode == 0, result.stderr + result.stdout
        assert "recovery reached the base backup's end (immediate)" in result.stdout
        assert rows(port) == []


def test_an_unknown_or_damaged_history_is_one_line(branch: Branch) -> None:
    arc = branch.archive
    folder = arc.root / "history"
    unknown = _restore(arc, folder, "--target-time", branch.moments[10], "--target-timeline", "5")
    err = unknown.stderr.strip()
    assert unknown.returncode != 0 and len(err.splitlines()) == 1, err
    assert "timeline 5's history file 00000005.history is not in the archive" in err
    (stored,) = (arc.repository / "wal").glob("*/00000002.history.*")
    data = stored.read_bytes()
    stored.write_bytes(data[: len(data) // 2])
    try:
        damaged = _restore(arc, folder, "--target-time", branch.moments[10], "--dry-run")
        err = damaged.stderr.strip()
        assert damaged.returncode == 4 and len(err.splitlines()) == 1, err
        assert "00000002.history" in err
        shown = arc.cli("pitr", "timeline")
        assert shown.returncode == 0, shown.stderr
        (line,) = [x for x in shown.stdout.splitlines() if ", timeline 2:" in x]
        assert "00000002.history" in line
    finally:
        stored.write_bytes(data)
    assert not folder.exists()
