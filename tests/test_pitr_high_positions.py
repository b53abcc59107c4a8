"""WAL far from its start (issue #16): a cluster whose WAL was moved by pg_resetwal to the
end of log 5 archives through our wal-push across the boundary into log 6; a base backup
there, rows and switches, then the chain check and a real recovery find every segment
(names, numbers and LSNs with a high part, e.g. 5/FA000000 and 6/2000000)."""

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from engines.pipeline.crypto import generate_key_hex
from engines.servers.process import child_environment, credentials
from tests.support.postgres import PostgresServer
from tests.test_pitr_archive import Archive, _write_env, archive_command
from tests.test_pitr_restore import TABLE, History, _next_second, _rows_after_recovery

START = "0000000100000005000000FA"


@pytest.fixture(scope="module")
def high() -> History:
    root = Path(tempfile.mkdtemp(prefix="jarvis-pitr-high-", dir="/tmp"))
    os.chmod(root, 0o755)
    env_file = root / "jarvis.env"
    try:
        pg = PostgresServer()
        moved = subprocess.run(
            [pg.binary("pg_resetwal"), "-l", START, "-D", str(pg.data_dir)],
            capture_output=True, text=True, cwd=pg.base_dir,
            env=child_environment(pg.account, pg.base_dir), **credentials(pg.account),
        )  # fmt: skip
        assert moved.returncode == 0, moved.stderr
        with pg:
            _write_env(env_file, root / "repository", generate_key_hex(), pg.url())
            with env_file.open("a") as settings:
                settings.write("BACKUP_COMPRESSION=zstd\n")
            (root / "repository").mkdir()
            pg.give_access(root)
            pg.execute(f"ALTER SYSTEM SET archive_command = {archive_command(pg, env_file)}")
            pg.execute("SELECT pg_reload_conf()")
            archive = Archive(root, pg)
            assert archive.cli("pitr", "check").returncode == 0
            pg.execute(f"CREATE TABLE {TABLE} (n int)")
            base = archive.cli("backup", "postgres", "--mode", "base")
            assert base.returncode == 0, base.stderr
            _next_second(pg)
            moments = {}
            for n in range(1, 9):
                pg.execute(f"INSERT INTO {TABLE} VALUES ({n})")
                ((moments[n],),) = pg.execute("SELECT clock_timestamp()::text")
                pg.execute("SELECT pg_switch_wal()")
            checked = archive.cli("pitr", "check")
            assert checked.returncode == 0, checked.stderr
            ((position,),) = pg.execute("SELECT pg_current_wal_lsn()::text")
            assert position.startswith("6/"), position
            yield History(archive, "", moments, {}, {}, "", "")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_the_archive_holds_every_segment_postgresql_marked_done(high: History) -> None:
    status = high.archive.pg.data_dir / "pg_wal" / "archive_status"
    done = {p.name.split(".")[0] for p in status.glob("*.done") if len(p.name) == 29}
    stored = set(high.archive.stored())
    assert done and done <= stored, sorted(done - stored)
    assert any(name[8:16] == "00000006" for name in stored)


def test_the_chain_check_and_recovery_cross_into_log_6(high: History, tmp_path) -> None:
    folder = tmp_path / "restored"
    target = ("--target-time", high.moments[7])
    dry = high.archive.cli(
        "restore", "postgres", "--pitr", *target, "--pgdata", str(folder), "--dry-run"
    )
    assert dry.returncode == 0, dry.stderr
    crossing = r"segments 00000001000000050{6}F\w to 0{7}10{7}60{6}\w\w: all in the archive"
    assert re.search(crossing, dry.stdout), dry.stdout
    result = high.archive.cli("restore", "postgres", "--pitr", *target, "--pgdata", str(folder))
    assert result.returncode == 0, result.stderr
    assert _rows_after_recovery(high, folder) == list(range(1, 8))
