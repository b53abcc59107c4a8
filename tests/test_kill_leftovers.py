"""Processes SIGKILLed half way leave nothing behind for long: the next backup or cleanup
removes their temporaries and work folders, and never those of a process still running,
even one given a dead writer's pid."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from engines.plumbing.fsutil import TEMP_MARKER, remove_abandoned_temporaries
from engines.plumbing.processes import process_start_token
from jarvis_tui.exit_codes import ExitCode
from tests.support.files_env import make_files_env
from tests.support.pg_seed import PgCase
from tests.support.processes import wait_until

CLI = Path(sys.executable).with_name("jarvis-tui")
BIG_TABLE = """
CREATE TABLE public.events AS
SELECT g AS id, md5(g::text) AS digest, md5((g * 7)::text) AS other
FROM generate_series(1, 120000) AS g;
"""


@pytest.fixture
def pg(tmp_path, isolated_env, postgres_server):
    case = PgCase(postgres_server, tmp_path)
    postgres_server.execute(BIG_TABLE, dbname=case.source)
    yield case
    case.cleanup()


def _leftovers(repository: Path) -> list[Path]:
    found = [p for p in repository.rglob(f"*{TEMP_MARKER}*")]
    found += [p for p in repository.glob(".*/work-*")]
    return found


def _stored(repository: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(repository)): p.read_bytes()
        for p in (repository / "postgres").iterdir()
        if TEMP_MARKER not in p.name
    }


def _temporary_bigger_than(repository: Path, size: int) -> Callable[[], bool]:
    def ready() -> bool:
        for path in (repository / "postgres").glob(f".*{TEMP_MARKER}*"):
            try:
                if path.stat().st_size >= size:
                    return True
            except FileNotFoundError:
                continue
        return False

    return ready


def _kill_backup_when(case: PgCase, ready: Callable[[], bool], what: str) -> None:
    backing_up = subprocess.Popen(
        [str(CLI), "--env-file", str(case.env_file), "backup", "postgres"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(ready, 60, what)
    finally:
        os.kill(backing_up.pid, signal.SIGKILL)
        backing_up.wait()
    assert backing_up.returncode == -signal.SIGKILL


def test_temporaries_of_killed_backups_are_removed_by_the_next_backup_and_cleanup(pg):
    repository = pg.tmp_path / "repo"
    assert pg.cli("backup", "postgres") == ExitCode.OK
    earlier = _stored(repository)
    # Killed as soon as the artifact's temporary exists, and once it holds data.
    for size in (0, 64 * 1024):
        _kill_backup_when(
            pg, _temporary_bigger_than(repository, size), f"a temporary of {size}+ bytes"
        )
    # Each backup starts by removing what the one killed before it left.
    assert len(_leftovers(repository)) == 1

    assert pg.cli("cleanup") == ExitCode.OK
    assert _leftovers(repository) == []
    assert _stored(repository) == earlier

    _kill_backup_when(pg, _temporary_bigger_than(repository, 1), "a temporary with data")
    assert _leftovers(repository)
    assert pg.cli("backup", "postgres") == ExitCode.OK
    assert _leftovers(repository) == []
    after = _stored(repository)
    assert {name: after[name] for name in earlier} == earlier
    assert pg.cli("verify", "latest") == ExitCode.OK

    _kill_backup_when(pg, _temporary_bigger_than(repository, 1), "a temporary with data")
    assert pg.cli("prune") == ExitCode.OK
    assert _leftovers(repository) == []


def test_a_temporary_whose_pid_now_names_another_process_is_abandoned(tmp_path):
    """Same pid, different process: a start token that differs, or (older names without
    one) a process started after the file was last written."""
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        pid, start = sleeper.pid, process_start_token(sleeper.pid)
        assert start != "0"
        live = tmp_path / f".a.enc{TEMP_MARKER}{pid}-{start}-0a0b0c0d"
        reused = tmp_path / f".b.enc{TEMP_MARKER}{pid}-{int(start) - 1}-0a0b0c0d"
        old_name_recent = tmp_path / f".c.enc{TEMP_MARKER}{pid}-0a0b0c0d"
        old_name_stale = tmp_path / f".d.enc{TEMP_MARKER}{pid}-0a0b0c0e"
        work = tmp_path / ".postgres-restore" / f"work-{pid}-{int(start) + 5}-abcd"
        own = tmp_path / ".redis-restore" / f"work-{pid}-{start}-abcd"
        for path in (live, reused, old_name_recent, old_name_stale):
            path.write_bytes(b"partial")
        work.mkdir(parents=True)
        own.mkdir(parents=True)
        long_ago = time.time() - 3600
        os.utime(old_name_stale, (long_ago, long_ago))

        removed = remove_abandoned_temporaries(tmp_path)

        assert sorted(removed) == sorted([reused, old_name_stale, work])
        assert live.exists() and old_name_recent.exists() and own.exists()
    finally:
        sleeper.kill()
        sleeper.wait()
    assert sorted(remove_abandoned_temporaries(tmp_path)) == sorted([live, old_name_recent, own])


@pytest.mark.parametrize("command", ["rekey", "repair"])
def test_temporaries_a_killed_rekey_or_repair_left_are_removed_by_its_next_run(
    tmp_path, isolated_env, command
):
    """benchmarks/trials.py: a rekey killed while sealing a copy left the copy's own
    temporary (`..NAME.tmp-A.tmp-B`), and the next rekey left it there."""
    env = make_files_env(tmp_path)
    (env.data / "song.txt").write_text("la la la\n")
    assert env.cli("backup", "files") == ExitCode.OK
    killed = subprocess.Popen(["sleep", "60"])
    pid, start = killed.pid, process_start_token(killed.pid)
    killed.kill()
    killed.wait()
    snapshot, pack = env.snapshots()[0], env.packs()[0]
    staged = f".{snapshot.name}{TEMP_MARKER}{pid}-{start}-0a0b0c0d"
    left = [
        snapshot.with_name(staged),
        snapshot.with_name(f".{staged}{TEMP_MARKER}{pid}-{start}-0a0b0c0e"),
        pack.with_name(f".{pack.name}{TEMP_MARKER}{pid}-{start}-0a0b0c0f"),
    ]
    for path in left:
        path.write_bytes(b"half written")

    result = env.cli_process(command)

    assert result.returncode == ExitCode.OK, result.stderr
    assert [path for path in left if path.exists()] == []
    assert env.cli_process("verify", "--all", "--read-data").returncode == ExitCode.OK
