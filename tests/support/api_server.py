"""`jarvis-tui serve` as a real process on a free loopback port, and an HTTP client for it.

The server is started with `--port 0` and says which port it got, so two test workers
never race for one. A test stops it by SIGTERM (what a service manager sends).
"""

import asyncio
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Self

import httpx

from tests.support.files_env import REPO_ROOT
from tests.support.processes import Server

TOKEN = "api-token-" + "5f3c9a1e7b2d4068" * 3  # 58 characters
START_TIMEOUT_S = 60.0
HOLD_DEADLINE_S = 120.0
STOP_TIMEOUT_S = 30.0
_LISTENING = re.compile(r"listening on (http://\S+)")


class ApiServer(Server):
    """`jarvis-tui --env-file ENV serve --port 0 ARGS`; `url` once it listens. With
    `scheduled`, `jarvis-tui --env-file ENV --run-scheduled --serve 127.0.0.1:0 ARGS`."""

    def __init__(
        self,
        env_file: Path,
        *args: str,
        env: dict[str, str] | None = None,
        scheduled: bool = False,
    ):
        super().__init__()
        self.env_file = env_file
        self.args = args
        self.env = env
        self.scheduled = scheduled
        self.url = ""
        self.process: subprocess.Popen[str] | None = None
        self.output: list[str] = []  # every line it printed (its log goes to stdout too)

    def command(self) -> list[str]:
        return [sys.executable, "-m", "jarvis_tui.launch", "--env-file", str(self.env_file)]

    def start(self) -> Self:
        serve = ["--run-scheduled", "--serve", "127.0.0.1:0"] if self.scheduled else ["serve"]
        if not self.scheduled:
            serve += ["--port", "0"]
        self.process = subprocess.Popen(
            [*self.command(), *serve, *self.args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=REPO_ROOT,
            env={**os.environ, **(self.env or {})},
        )
        found = threading.Event()
        threading.Thread(target=self._read_output, args=(found,), daemon=True).start()
        if not found.wait(START_TIMEOUT_S) or not self.url:
            self.close()
            raise RuntimeError("jarvis-tui serve did not start:\n" + "".join(self.output))
        return self

    def _read_output(self, found: threading.Event) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            match = _LISTENING.search(line)
            if match and not self.url:
                self.url = match.group(1)
                found.set()
        found.set()  # it ended

    def client(self, token: str | None = TOKEN, **kwargs: object) -> httpx.Client:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60.0, **kwargs)

    def stop(self) -> int:
        """SIGTERM, then its exit code (killed after STOP_TIMEOUT_S)."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def close(self) -> None:
        try:
            if self.process is not None:
                self.stop()
        finally:
            super().close()


def refused_start(env_file: Path, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """`serve ARGS` expected to refuse: it must end by itself, with its one line."""
    return subprocess.run(
        [sys.executable, "-m", "jarvis_tui.launch", "--env-file", str(env_file), "serve", *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=START_TIMEOUT_S,
    )


def hold_still(pid: int, catalog: Path) -> None:
    """SIGSTOP the job process, but never inside a write to the catalog (the server's
    own writes would wait on it): stopped there, it is let go a moment and stopped again."""
    deadline = time.monotonic() + HOLD_DEADLINE_S
    while True:
        os.kill(pid, signal.SIGSTOP)
        probe = sqlite3.connect(catalog, timeout=0.5)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.rollback()
            return
        except sqlite3.OperationalError:
            os.kill(pid, signal.SIGCONT)
            assert time.monotonic() < deadline, "the job kept the catalog locked"
            time.sleep(0.01)
        finally:
            probe.close()


def in_process_client(app: object) -> httpx.AsyncClient:
    """An HTTP client on `app` itself (no server process), with the token: for tests
    that hold a reading still inside the application."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),  # type: ignore[arg-type]
        base_url="http://api",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )


async def until(check: Callable[[], object], what: str, wait_s: float = 60.0) -> None:
    """Poll `check` on the event loop until it is true; fail naming `what` after `wait_s`."""
    deadline = time.monotonic() + wait_s
    while not check():
        assert time.monotonic() < deadline, f"timed out after {wait_s:.0f}s waiting for {what}"
        await asyncio.sleep(0.01)
