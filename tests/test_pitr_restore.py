"""Restore to a moment (issue #16): a throwaway cluster archiving through our wal-push, a
base backup, rows written across segment switches at moments and WAL positions the server
itself reports; each restore lays the backup out into a new folder, a server started on it
recovers through wal-fetch, and exactly the rows up to the target exist."""

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from engines.pitr.restore_pitr import BEGIN, END
from tests.support.postgres import PostgresServer
from tests.support.processes import wait_until
from tests.test_pitr_archive import Archive, archive, archive_command  # noqa: F401

TABLE = "pitr_rows"


@dataclass(frozen=True)
class History:
    archive: Archive
    base_set: str
    moments: dict[int, str]  # row n -> the server's clock just after it committed
    positions: dict[int, str]  # row n -> the server's WAL position just after it committed
    xids: dict[int, str]  # row n -> the transaction that wrote it
    later_set: str  # a second base backup, taken after row 3
    after_later: str  # the server's clock after it ended


@pytest.fixture(scope="module")
def history(archive: Archive) -> History:  # noqa: F811
    base_set = _table_and_base_backup(archive, TABLE)
    pg = archive.pg
    moments, positions, xids = {}, {}, {}
    for n in (1, 2, 3):
        ((xids[n],),) = pg.execute(
            f"WITH r AS (INSERT INTO {TABLE} VALUES ({n})) SELECT txid_current()::text"
        )
        ((moments[n], positions[n]),) = pg.execute(
            "SELECT clock_timestamp()::text, pg_current_wal_lsn()::text"
        )
        if n == 1:
            pg.execute("SELECT pg_create_restore_point('after-1')")
        pg.execute("SELECT pg_switch_wal()")
    later_set = _base_backup(archive)
    _next_second(pg)
    ((after_later,),) = pg.execute("SELECT clock_timestamp()::text")
    checked = archive.cli("pitr", "check")  # the last switched segment arrived, so all did
    assert checked.returncode == 0, checked.stderr
    return History(archive, base_set, moments, positions, xids, later_set, after_later)


def _table_and_base_backup(archive: Archive, table: str) -> str:  # noqa: F811
    """Where each moment test's history starts: `table` made, a base backup taken (zstd:
    gzip-9 of a cluster costs seconds), the server's clock past its end. Its set's name."""
    with archive.env_file.open("a") as settings:
        settings.write("BACKUP_COMPRESSION=zstd\n")
    archive.pg.execute(f"CREATE TABLE {table} (n int)")
    base_set = _base_backup(archive)
    _next_second(archive.pg)
    return base_set


def _next_second(pg: PostgresServer) -> None:
    """A base backup's end is recorded to the second: a moment that must come after it
    waits for the server's clock to pass into the next second."""
    pg.execute("SELECT pg_sleep(1.02 - extract(epoch FROM clock_timestamp())::numeric % 1)")


def _base_backup(archive: Archive) -> str:  # noqa: F811
    result = archive.cli("backup", "postgres", "--mode", "base")
    assert result.returncode == 0, result.stderr
    return result.stdout.split("backup ")[1].split()[0]


def _restore(history: History, folder: Path, *target: str) -> subprocess.CompletedProcess:
    result = history.archive.cli("restore", "postgres", *target, "--pitr", "--pgdata", str(folder))
    assert result.returncode == 0, result.stderr
    return result


def _rows_after_recovery(history: History, folder: Path, action: str = "promote") -> list[int]:
    """Start a server on the restored folder (restore_command as PostgreSQL's account can
    run it, as the archive tests' archive_command) and read the rows once promoted (or,
    with pause, once recovery paused at the target)."""
    auto = folder / "postgresql.auto.conf"
    text = auto.read_text()
    block = text[text.index(BEGIN) : text.index(END)]
    ours = f"--env-file {history.archive.env_file} wal-fetch %f %p'"
    assert "restore_command = '" in block and ours in block
    assert f"recovery_target_action = '{action}'" in block and "archive_mode = 'off'" in block
    assert (folder / "recovery.signal").is_file()
    runnable = archive_command(history.archive.pg, history.archive.env_file)
    runnable = runnable.replace("wal-push %p", "wal-fetch %f %p")
    line = next(x for x in block.splitlines() if x.startswith("restore_command"))
    auto.write_text(text.replace(line, f"restore_command = {runnable}"))
    copy = PostgresServer(data_source=folder)
    try:
        copy.start()
        done = {
            "promote": "SELECT NOT pg_is_in_recovery()",
            "pause": "SELECT pg_is_in_recovery() AND pg_get_wal_replay_pause_state() = 'paused'",
        }[action]
        wait_until(
            lambda: copy.execute(done) == [(True,)],
            timeout=60,
            what=f"the restored server to reach its target and {action}",
        )
        return [n for (n,) in copy.execute(f"SELECT n FROM {TABLE} ORDER BY n")]
    finally:
        copy.close()


def test_restore_to_a_moment_between_two_writes(history: History, tmp_path) -> None:
    folder = tmp_path / "dry"
    dry = history.archive.cli(
        "restore", "postgres", "--pitr", "--target-time", history.moments[1],
        "--pgdata", str(folder), "--dry-run",
    )  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    assert f"would lay out base backup postgres/{history.base_set}" in dry.stdout
    assert "archived WAL segments" in dry.stdout and "all in the archive" in dry.stdout
    assert "would recover to the moment" in dry.stdout and not folder.exists()
    later = history.archive.cli(
        "restore", "postgres", "--pitr", "--target-time", history.after_later,
        "--pgdata", str(folder), "--dry-run",
    )  # fmt: skip
    assert f"would lay out base backup postgres/{history.later_set}" in later.stdout

    folder = tmp_path / "moment"
    out = _restore(history, folder, "--target-time", history.moments[1]).stdout
    assert f"laid out base backup postgres/{history.base_set}" in out
    assert _rows_after_recovery(history, folder) == [1]


def test_restore_to_a_wal_position_and_to_a_restore_point(history: History, tmp_path) -> None:
    by_lsn = tmp_path / "lsn"
    _restore(history, by_lsn, "--target-lsn", history.positions[2])
    assert _rows_after_recovery(history, by_lsn) == [1, 2]
    by_name = tmp_path / "name"
    named = _restore(history, by_name, history.base_set, "--target-name", "after-1")
    assert f"warning: recovery starts from postgres/{history.base_set}" in named.stderr
    assert _rows_after_recovery(history, by_name) == [1]


def test_restore_to_a_transaction_and_pause_there(history: History, tmp_path) -> None:
    folder = tmp_path / "xid"
    # A transaction cannot be placed from the catalog: the base backup is named.
    named = (history.base_set, "--target-xid", history.xids[2], "--target-action", "pause")
    _restore(history, folder, *named)
    assert _rows_after_recovery(history, folder, "pause") == [1, 2]


def test_a_missing_segment_is_named_before_anything_is_written(history: History, tmp_path):
    stored = history.archive.stored()
    ((missing,),) = history.archive.pg.execute(
        "SELECT pg_walfile_name(%s)", (history.positions[2],)
    )  # the segment between the rows 2 and 3, after the base backup's end
    aside = tmp_path / "aside"
    stored[missing].rename(aside)
    try:
        folder = tmp_path / "gap"
        for extra in ((), ("--dry-run",)):
            result = history.archive.cli(
                "restore", "postgres", "--pitr", "--target-time", history.moments[3],
                "--pgdata", str(folder), *extra,
            )  # fmt: skip
            assert result.returncode != 0
            err = result.stderr.strip()
            assert f"WAL segment {missing} is not in the archive" in err, err
            assert "nothing was changed" in err and len(err.splitlines()) == 1
            assert not folder.exists()
    finally:
        aside.rename(stored[missing])
    too_early = history.archive.cli(
        "restore", "postgres", "--pitr", "--target-time", "2000-01-01 00:00:00+00",
        "--pgdata", str(folder),
    )  # fmt: skip
    assert too_early.returncode != 0 and not folder.exists()
    assert "ended before the moment 2000-01-01 00:00:00+00:00" in too_early.stderr


def test_a_bad_or_missing_target_is_one_line(history: History, tmp_path) -> None:
    folder = str(tmp_path / "bad")
    for args, words in (
        (("--pitr", "--pgdata", folder), "--pitr needs a target: --target-time"),
        (("--pitr", "--target-time", "2026-11-27 14:03", "--pgdata", folder), "time zone"),
        (("--pitr", "--target-lsn", "3000148", "--pgdata", folder), "not a WAL position"),
        (("--pitr", "--target-xid", "x1", "--pgdata", folder), "give its id"),
        (("--target-name", "x", "--pgdata", folder), "a recovery target needs --pitr"),
        ((), "name the backup to restore"),
    ):
        result = history.archive.cli("restore", "postgres", *args)
        err = result.stderr.strip()
        assert result.returncode != 0 and words in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "bad").exists()
