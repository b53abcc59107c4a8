"""The repository lock against real competing processes."""

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from engines.errors import RepositoryLockedError
from engines.repository.lock import RepositoryLock, read_holder

REPO_ROOT = Path(__file__).resolve().parents[1]

HOLDER = """
import sys, time
from pathlib import Path
from engines.repository.lock import RepositoryLock

with RepositoryLock(Path(sys.argv[1]), sys.argv[2]):
    print("locked", flush=True)
    time.sleep(300)
"""

# Takes the flock and never says who it is, like a holder killed just after flock().
SILENT_HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(300)
"""


@pytest.fixture
def start_holder() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []

    def start(script: str, *args: str) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, "-c", script, *args],
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
            stdout=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "locked"
        return process

    yield start
    for process in started:
        process.kill()
        process.wait()


def _kill(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait()


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_a_second_acquirer_fails_fast_naming_the_holder(tmp_path: Path, start_holder):
    holder = start_holder(HOLDER, str(tmp_path), "backup postgres")

    started = time.monotonic()
    with pytest.raises(RepositoryLockedError) as locked:
        RepositoryLock(tmp_path, "backup redis").acquire()

    assert time.monotonic() - started < 0.5
    message = str(locked.value)
    assert f"pid {holder.pid}" in message
    assert "backup postgres" in message
    assert "started 20" in message and "UTC" in message
    assert "wait for it to finish" in message and "check that process" in message
    assert read_holder(tmp_path)["pid"] == holder.pid


def test_a_killed_holder_is_taken_over(tmp_path: Path, start_holder):
    holder = start_holder(HOLDER, str(tmp_path), "backup postgres")
    _kill(holder)

    assert read_holder(tmp_path) is None  # its record is still there, but its pid is gone
    with RepositoryLock(tmp_path, "backup redis") as lock:
        assert lock.took_over_from is not None
        assert f"pid {holder.pid}" in lock.took_over_from
        assert "backup postgres" in lock.took_over_from
        holder_now = read_holder(tmp_path)
        assert holder_now is not None
        assert (holder_now["pid"], holder_now["purpose"]) == (os.getpid(), "backup redis")
        assert holder_now["host"] == socket.gethostname()
        assert holder_now["started_at"].endswith("+00:00")
    assert read_holder(tmp_path) is None


def test_a_clean_release_leaves_nothing_to_take_over(tmp_path: Path):
    with RepositoryLock(tmp_path, "cleanup") as first:
        assert first.took_over_from is None
    assert (tmp_path / ".lock").read_bytes() == b""
    with RepositoryLock(tmp_path, "backup files") as second:
        assert second.took_over_from is None


def test_a_leftover_record_of_a_dead_process_is_taken_over(tmp_path: Path):
    gone = _dead_pid()
    record = {
        "pid": gone,
        "host": socket.gethostname(),
        "purpose": "backup secrets",
        "started_at": "2024-03-01T02:00:00+00:00",
    }
    (tmp_path / ".lock").write_text(json.dumps(record))

    assert read_holder(tmp_path) is None
    with RepositoryLock(tmp_path, "backup postgres") as lock:
        assert lock.took_over_from == (
            f"pid {gone} (backup secrets, started 2024-03-01 02:00:00 UTC), "
            "which ended without releasing the lock"
        )


def test_an_unreadable_record_does_not_block_the_repository(tmp_path: Path):
    (tmp_path / ".lock").write_bytes(b"\x00{half a rec")
    assert read_holder(tmp_path) is None
    with RepositoryLock(tmp_path, "backup") as lock:
        assert "unreadable" in (lock.took_over_from or "")


def test_a_holder_that_has_not_written_its_record_still_blocks(tmp_path: Path, start_holder):
    start_holder(SILENT_HOLDER, str(tmp_path / ".lock"))
    with pytest.raises(RepositoryLockedError, match="another process"):
        RepositoryLock(tmp_path, "backup").acquire()


def test_two_locks_in_one_process_exclude_each_other(tmp_path: Path):
    first = RepositoryLock(tmp_path, "scheduler backup")
    with first:
        with pytest.raises(RepositoryLockedError, match=f"pid {os.getpid()}"):
            RepositoryLock(tmp_path, "console backup").acquire()
        with pytest.raises(RuntimeError, match="already held"):
            first.acquire()
    with RepositoryLock(tmp_path, "console backup") as second:
        assert second.held
    assert not second.held


def test_the_lock_lives_in_a_private_file_and_creates_a_missing_repository(tmp_path: Path):
    root = tmp_path / "new-repository"
    with RepositoryLock(root, "backup"):
        assert stat.S_IMODE(root.stat().st_mode) == 0o700
        assert stat.S_IMODE((root / ".lock").stat().st_mode) == 0o600


def test_a_failed_body_still_releases_the_lock(tmp_path: Path):
    with pytest.raises(OSError, match="disk on fire"), RepositoryLock(tmp_path, "backup"):
        raise OSError("disk on fire")
    with RepositoryLock(tmp_path, "backup") as lock:
        assert lock.took_over_from is None


def test_separately_named_locks_do_not_interfere(tmp_path: Path):
    with (
        RepositoryLock(tmp_path, "backup"),
        RepositoryLock(tmp_path, "scheduler", name=".scheduler.lock") as scheduler,
    ):
        assert scheduler.held
        assert read_holder(tmp_path, name=".scheduler.lock")["purpose"] == "scheduler"
