"""A server process of our own: on a free loopback port, in its own session (so its
whole process group can be stopped), as an unprivileged account when run as root.

Nothing here ever connects to a service the machine already runs: every readiness check
confirms it reached the process it started. A server tied to its starter dies with it
(the tests'); a detached one outlives it and is stopped later by its pid (the demo's).
"""

import contextlib
import ctypes
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from engines.plumbing.processes import owner_gone

LOOPBACK = "127.0.0.1"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
PORT_ATTEMPTS = 3

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.02)


@dataclass(frozen=True)
class Account:
    """The unprivileged OS account a server runs as when started by root."""

    name: str
    uid: int
    gid: int


def unprivileged_account(*preferred: str) -> Account | None:
    if os.geteuid() != 0:
        return None
    for name in (*preferred, "nobody"):
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return Account(name, entry.pw_uid, entry.pw_gid)
    raise RuntimeError(f"running as root but none of {(*preferred, 'nobody')} exists")


def chown_tree(path: Path, account: Account | None) -> None:
    if account is None:
        return
    os.lchown(path, account.uid, account.gid)
    for folder, dirs, files in os.walk(path):
        for name in dirs + files:
            os.lchown(os.path.join(folder, name), account.uid, account.gid)


def reachable_by(account: Account | None, folder: Path) -> bool:
    """True when `account` can walk down to `folder` (every parent searchable by others)."""
    if account is None:
        return True
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    return all(p.stat().st_mode & 0o001 for p in (existing, *existing.parents))


def _die_with_parent() -> None:
    # Runs in the child after the uid switch (which would clear the setting).
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL))


def credentials(account: Account | None) -> dict[str, Any]:
    if account is None:
        return {}
    return {"user": account.uid, "group": account.gid, "extra_groups": []}


def child_environment(account: Account | None, home: Path) -> dict[str, str]:
    """The parent's environment without libpq settings that could redirect a server tool."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(LC_ALL="C", TZ="UTC")
    if account is not None:
        env.update(HOME=str(home), USER=account.name, LOGNAME=account.name)
    return env


def group_members_alive(pgid: int) -> bool:
    """True while any non-zombie process is in group `pgid` (PID 1 may never reap them)."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    for stat_file in proc.glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] not in "ZX":
            return True
    return False


def _kill_members(pgid: int) -> None:
    if group_members_alive(pgid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)


def stop_detached(pid: int, start: str, stop_signal: int, what: str) -> None:
    """Stop a detached server another process started (`start`: its start token, so that
    a pid now naming someone else's process is left alone); kill its group after
    STOP_TIMEOUT."""
    if owner_gone(pid, start):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, stop_signal)
    with contextlib.suppress(TimeoutError):
        wait_until(lambda: not group_members_alive(pid), STOP_TIMEOUT, what)
    _kill_members(pid)
    wait_until(lambda: not group_members_alive(pid), STOP_TIMEOUT, f"{what} to exit")


class ProcessServer:
    """A server process in its own session, in `base_dir`, so its whole group can be killed."""

    kind = "server"
    stop_signal = signal.SIGTERM
    host = LOOPBACK

    def __init__(self, base_dir: Path, account: Account | None, *, detached: bool = False):
        self.account = account
        self.base_dir = base_dir
        self.detached = detached
        base_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        chown_tree(base_dir, account)
        self.log_path = self.base_dir / f"{self.kind}.log"
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.running and self._process else None

    def _argv(self, port: int) -> list[str]:
        raise NotImplementedError

    def _answers(self, port: int) -> bool:
        """True once the process this object started accepts requests on `port`."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self) -> Self:
        if self.running:
            return self
        # A restart keeps its port so DSNs handed out earlier stay valid.
        for _ in range(1 if self.port else PORT_ATTEMPTS):
            port = self.port or free_port()
            if self._launch(port):
                self.port = port
                return self
        raise RuntimeError(f"{self.kind} found no free port in {PORT_ATTEMPTS} attempts")

    def _launch(self, port: int) -> bool:
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        in_main_thread = threading.current_thread() is threading.main_thread()
        # The death signal follows the creating thread, so only tie it to the main one.
        tied = in_main_thread and not self.detached
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                self._argv(port),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.base_dir,
                env=child_environment(self.account, self.base_dir),
                start_new_session=True,
                preexec_fn=_die_with_parent if tied else None,
                **credentials(self.account),
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code is not None:
                output = self.read_log(log_offset)
                if "Address already in use" in output:
                    return False
                raise RuntimeError(f"{self.kind} exited with code {code}:\n{output}")
            if self._answers(port):
                return True
            time.sleep(0.05)
        self.kill()
        raise TimeoutError(f"{self.kind} did not answer in {START_TIMEOUT:.0f}s: {self.log_path}")

    def read_log(self, offset: int = 0) -> str:
        with open(self.log_path, "rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    def stop(self) -> None:
        """Shut down cleanly; escalate to killing the process group after STOP_TIMEOUT."""
        if self._process is None:
            return
        if self._process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.send_signal(self.stop_signal)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(STOP_TIMEOUT)
        self._kill_group()

    def kill(self) -> None:
        """SIGKILL the server and everything it started, as a crash would."""
        if self._process is not None:
            self._kill_group()

    def _kill_group(self) -> None:
        assert self._process is not None
        pgid = self._process.pid
        # Signal before reaping the leader: until then the group id cannot be reused.
        _kill_members(pgid)
        self._process.wait()
        wait_until(lambda: not group_members_alive(pgid), STOP_TIMEOUT, f"{self.kind} to exit")
        # Forget the pid: once the group is gone its number may belong to someone else.
        self._process = None

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.base_dir, ignore_errors=True)
