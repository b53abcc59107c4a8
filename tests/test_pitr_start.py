"""`restore postgres --pitr ... --start --port N` (issue #16): the restored server started by
jarvis-tui itself, as the folder's owner, and watched until recovery reached the target:
promoted, paused (rows read while paused), shut down, or recovery ending early at the end
of the archive, which is one line naming the log."""

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from engines.pitr.recovery_server import RecoveryServer
from engines.pitr.recovery_wait import ENDED_EARLY, RecoveryEndedEarlyError, _after_exit
from engines.pitr.restore_target import PitrTarget
from engines.servers.process import Account, free_port, reachable_by
from tests.support.processes import wait_until
from tests.test_pitr_archive import REPO_ROOT, SYSTEM_PYTHON, Archive, archive  # noqa: F401
from tests.test_pitr_restore import TABLE, History, history  # noqa: F401


def server_jarvis(archive: Archive) -> str:  # noqa: F811
    """A jarvis-tui PostgreSQL's account can run: the venv's, else (under root, the venv's
    interpreter lying under /root) a script running the same code with the system's Python
    of the same version, as the archive tests' archive_command."""
    if reachable_by(archive.pg.account, Path(sys.executable).resolve()):
        return str(Path(sys.executable).parent / "jarvis-tui")
    if not SYSTEM_PYTHON.is_file():
        pytest.skip(f"the server's account cannot run {sys.executable}")
    script = archive.root / "bin" / "jarvis-tui"
    if not script.exists():
        script.parent.mkdir()
        (script.parent / "python3").symlink_to(Path(sys.executable).resolve())
        script.write_text(
            f'#!/bin/sh\nexec env {python_path()} {SYSTEM_PYTHON} -m jarvis_tui.launch "$@"\n'
        )
        script.chmod(0o755)
    return str(script)


def jarvis_beside_python(archive: Archive) -> list[str]:  # noqa: F811
    """The command line to restore with, such that the restore_command it writes (the
    `jarvis-tui` beside the interpreter that runs) is server_jarvis: under root, the venv's
    interpreter through a link in server_jarvis's folder."""
    script = Path(server_jarvis(archive))
    if script.parent == Path(sys.executable).parent:
        return [str(script)]
    return ["env", python_path(), str(script.parent / "python3"), "-m", "jarvis_tui.launch"]


def python_path() -> str:
    packages = next(Path(sys.prefix).glob("lib/python3*/site-packages"))
    return f"PYTHONPATH={REPO_ROOT}:{packages}"


def restore_and_start(archive: Archive, folder: Path, port: int, *words: str):  # noqa: F811
    return subprocess.run(
        [*jarvis_beside_python(archive), "--env-file", str(archive.env_file), "restore",
         "postgres", "--pitr", *words, "--pgdata", str(folder), "--start", "--port", str(port)],
        capture_output=True, text=True, timeout=180, cwd=archive.root,
    )  # fmt: skip


def rows(port: int) -> list[int]:
    with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres") as conn:
        return [n for (n,) in conn.execute(f"SELECT n FROM {TABLE} ORDER BY n")]


def in_recovery(port: int) -> tuple[bool, str]:
    with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres") as conn:
        row = conn.execute(
            "SELECT pg_is_in_recovery(), CASE WHEN pg_is_in_recovery() THEN "
            "pg_get_wal_replay_pause_state() ELSE '' END"
        )
        return row.fetchone()  # type: ignore[return-value]


def server_pid(folder: Path) -> int | None:
    try:
        first = (folder / "postmaster.pid").read_text().split()[0]
    except (OSError, IndexError):
        return None
    return int(first) if first.isdigit() and Path(f"/proc/{first}").exists() else None


@contextlib.contextmanager
def stopped_after(folder: Path):
    """Whatever the test saw, the server it started is stopped (fast shutdown, then kill)."""
    try:
        yield
    finally:
        pid = server_pid(folder)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGINT)
            try:
                wait_until(
                    lambda: server_pid(folder) is None, timeout=30, what="the server to stop"
                )
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)


def test_start_promotes_at_the_moment_and_says_where_it_stopped(history: History) -> None:  # noqa: F811
    arc, port = history.archive, free_port()
    folder = arc.root / "start-promote"
    with stopped_after(folder):
        result = restore_and_start(arc, folder, port, "--target-time", history.moments[1])
        assert result.returncode == 0, result.stderr + result.stdout
        out = result.stdout
        assert f"started PostgreSQL 15 on {folder} (port {port}, account " in out
        assert f"its log: {folder}/log/jarvis-recovery.log" in out
        assert "recovery reached the moment" in out
        assert "recovery stopping before commit of transaction" in out
        assert f"promoted on timeline 2: the server runs on port {port}" in out
        assert rows(port) == [1]
        assert in_recovery(port) == (False, "")
        assert not (folder / "pg_wal" / "jarvis-fetch").exists()  # the prefetch cleared
        owner = arc.pg.account
        if owner is not None:
            assert (folder.stat().st_uid, (folder / "base").stat().st_uid) == (owner.uid,) * 2


def test_start_pauses_at_a_wal_position_and_the_rows_read_while_paused(history: History) -> None:  # noqa: F811
    arc, port = history.archive, free_port()
    # A name too long for a socket path inside it: the server is asked through one of its own.
    folder = arc.root / ("start-pause-" + "x" * 80)
    with stopped_after(folder):
        result = restore_and_start(
            arc, folder, port, "--target-lsn", history.positions[2], "--target-action", "pause"
        )
        assert result.returncode == 0, result.stderr + result.stdout
        assert "paused at the target: the server runs on port" in result.stdout
        assert "replayed WAL up to " in result.stdout
        assert in_recovery(port) == (True, "paused")
        assert rows(port) == [1, 2]
        sockets = Path(result.stdout.split("its socket folder: ")[1].split()[0])
    sockets.rmdir()  # the server is stopped: its socket is gone, the folder is empty


def test_start_with_shutdown_leaves_the_server_stopped_at_the_target(history: History) -> None:  # noqa: F811
    arc = history.archive
    folder = arc.root / "start-shutdown"
    with stopped_after(folder):
        named = (history.base_set, "--target-name", "after-1", "--target-action", "shutdown")
        result = restore_and_start(arc, folder, free_port(), *named)
        assert result.returncode == 0, result.stderr + result.stdout
        assert 'recovery stopping at restore point "after-1"' in result.stdout
        assert "shut down at the target" in result.stdout
        assert server_pid(folder) is None


def test_recovery_ending_before_the_target_is_one_line_naming_the_log(history: History) -> None:  # noqa: F811
    arc = history.archive
    folder = arc.root / "start-early"
    with stopped_after(folder):
        result = restore_and_start(
            arc, folder, free_port(), "--target-time", "2099-01-01 00:00:00+00"
        )
        err = result.stderr.strip()
        assert result.returncode == 7, err + result.stdout
        assert len(err.splitlines()) == 1, err
        assert "recovery ended before the moment 2099-01-01 00:00:00+00:00" in err
        assert "the archived WAL ran out after segment " in err
        assert f"read {folder}/log/jarvis-recovery.log" in err
        assert server_pid(folder) is None and (folder / "PG_VERSION").is_file()


def test_what_would_keep_the_server_from_starting_is_refused_first(history: History) -> None:  # noqa: F811
    arc = history.archive
    folder = arc.root / "start-refused"
    taken = restore_and_start(arc, folder, arc.pg.port, "--target-time", history.moments[1])
    assert taken.returncode == 1 and f"port {arc.pg.port} is taken" in taken.stderr
    assert not folder.exists()
    if arc.pg.account is not None:  # under root: a folder root would own
        private = Path("/tmp") / f"jarvis-root-owned-{os.getpid()}"
        mine = restore_and_start(arc, private, free_port(), "--target-time", history.moments[1])
        err = mine.stderr.strip()
        assert mine.returncode == 1 and len(err.splitlines()) == 1, err
        assert "would belong to root, and PostgreSQL refuses to run as root" in err
        assert "install -d -o postgres" in err and not private.exists()
    no_port = arc.cli("restore", "postgres", "--pitr", "--target-time", history.moments[1],
                          "--pgdata", str(folder), "--start")  # fmt: skip
    assert no_port.returncode != 0 and "--start needs --port N" in no_port.stderr
    dry = restore_and_start(arc, folder, 5999, "--target-time", history.moments[1], "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would start PostgreSQL (" in dry.stdout and "on port 5999 as account " in dry.stdout
    assert not folder.exists()
    if not reachable_by(arc.pg.account, Path(sys.executable).resolve()):
        venv = arc.cli("restore", "postgres", "--pitr", "--target-time", history.moments[1],
                           "--pgdata", str(folder), "--start", "--port", "5999")  # fmt: skip
        err = venv.stderr.strip()
        assert venv.returncode == 1 and len(err.splitlines()) == 1, err
        assert f"account {arc.pg.account.name} cannot run " in err
        assert "which restore_command needs" in err and not folder.exists()


def test_a_damaged_segment_stops_recovery_in_one_line(history: History) -> None:  # noqa: F811
    arc = history.archive
    ((name,),) = arc.pg.execute("SELECT pg_walfile_name(%s)", (history.positions[2],))
    stored = arc.stored()[name]  # a segment recovery to row 3 replays, after the base's end
    data = stored.read_bytes()
    folder = arc.root / "start-damaged"
    with stopped_after(folder):
        stored.write_bytes(data[: len(data) // 2])
        try:
            result = restore_and_start(
                arc, folder, free_port(), history.base_set, "--target-time", history.moments[3]
            )
        finally:
            stored.write_bytes(data)
        err = result.stderr.strip()
        assert result.returncode == 1 and len(err.splitlines()) == 1, err + result.stdout
        assert f"restore_command (wal-fetch) failed on {name} (" in err
        assert "exit code 126" in err and f"read {folder}/log/jarvis-recovery.log" in err
        assert server_pid(folder) is None


def test_the_servers_own_log_decides_how_a_stopped_recovery_ended(tmp_path: Path) -> None:
    """PostgreSQL's lines as they end a recovery (a paused target without hot_standby shuts
    down; WAL running out before the target is FATAL), read from a real exited process."""
    log = tmp_path / "recovery.log"
    server = RecoveryServer(
        subprocess.Popen(["true"]), tmp_path, 5999, Account("x", 1, 1), tmp_path, log, tmp_path
    )
    pause = PitrTarget("lsn", "0/5000000", "pause")
    restored = 'LOG:  restored log file "000000010000000000000004" from archive\n'
    log.write_text(
        restored + 'LOG:  recovery stopping after WAL location (LSN) "0/5000000"\n'
        "LOG:  shutdown at recovery target\n"
    )
    reached = _after_exit(server, pause)
    assert reached.stopped and reached.stopping.endswith('(LSN) "0/5000000"')
    log.write_text(restored + f"FATAL:  {ENDED_EARLY}\n")
    with pytest.raises(RecoveryEndedEarlyError, match="ran out after segment 0000000100000000"):
        _after_exit(server, pause)
