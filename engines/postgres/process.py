"""Running the client tools: stderr collected on a thread, failures turned into clear errors."""

import contextlib
import subprocess
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

from engines.errors import JarvisError
from engines.plumbing.redaction import redact
from engines.postgres.tools import die_with_parent

MAX_STDERR_LINES = 200


class ToolFailedError(JarvisError):
    """A client tool exited non-zero; the message carries the tail of its stderr."""


class RunningTool:
    """A started tool whose stderr lines are kept (the last MAX_STDERR_LINES) and
    optionally handed to `on_line` as they come."""

    def __init__(
        self,
        argv: Sequence[str],
        env: dict[str, str],
        *,
        name: str,
        stdin: int | IO[bytes] | None = subprocess.DEVNULL,
        stdout: int | IO[bytes] | None = subprocess.DEVNULL,
        on_line: Callable[[str], None] | None = None,
        cwd: Path | None = None,
    ):
        self.name = name
        self.lines: list[str] = []
        self._on_line = on_line
        self.process = subprocess.Popen(
            list(argv),
            stdin=stdin,
            stdout=stdout,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
            preexec_fn=die_with_parent,
        )
        self._reader = threading.Thread(
            target=self._read_stderr, name=f"{name}-stderr", daemon=True
        )
        self._reader.start()

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            line = redact(raw.decode(errors="replace").rstrip())
            self.lines.append(line)
            if len(self.lines) > MAX_STDERR_LINES:
                del self.lines[0]
            if self._on_line is not None:
                with contextlib.suppress(Exception):
                    self._on_line(line)

    @property
    def stdout(self) -> IO[bytes]:
        assert self.process.stdout is not None
        return self.process.stdout

    def errors(self) -> list[str]:
        """The lines that say what went wrong (libpq and psql errors with DETAIL and HINT)."""
        words = ("error:", "fatal:", "detail:", "hint:")
        return [line for line in self.lines if any(w in line.lower() for w in words)]

    def wait(self) -> int:
        code = self.process.wait()
        self._reader.join()
        return code

    def check(self, what: str) -> None:
        """Wait; on a non-zero exit raise ToolFailedError saying `what` failed and why."""
        code = self.wait()
        if code != 0:
            detail = self.errors() or self.lines[-5:] or [f"exit code {code}"]
            raise ToolFailedError(f"{what}: {self.name} failed: " + " | ".join(detail[-5:]))

    def stop(self) -> None:
        """Kill if still running (cancellation, or our own failure) and reap."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        self.wait()


def run_tool(argv: Sequence[str], env: dict[str, str], *, name: str, what: str) -> str:
    """Run to completion and return stdout as text; raise ToolFailedError on failure."""
    result = subprocess.run(
        list(argv), env=env, capture_output=True, preexec_fn=die_with_parent, check=False
    )
    if result.returncode != 0:
        lines = [redact(line) for line in result.stderr.decode(errors="replace").splitlines()]
        detail = [line for line in lines if "error:" in line] or lines[-5:]
        raise ToolFailedError(f"{what}: {name} failed: " + " | ".join(detail[-5:]))
    return result.stdout.decode(errors="replace")
