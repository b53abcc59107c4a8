"""Engine actions in a process of their own, so the console's screen never waits on them.

The engines compress, chunk and hash in Python threads; run in the console's
own process they would hold the interpreter lock for seconds and freeze the
screen. Each action the console starts, and each run of the console's scheduler
(backup, cleanup, restore drill), is therefore a child process (a fresh
interpreter, never a fork of a process with threads) that runs the same verb as
the CLI (engines.actions.verbs), as a catalogued job: its progress, log and cancellation
travel through the catalog like any other process's, and its JobContext
updates come back on a private pipe for the screen that asked. Never imports
textual: the child stays light.

A job of its own outlives the console: it runs detached (a session of its own, no
controlling terminal), so the hang-up that closing an SSH session sends to the
console's process group never reaches it, and it carries on alone once the console
is gone. Its catalog row names its own pid, which is how every process tells a job
still running from one whose process died. A scheduled verb runs inside the job of
the scheduler that started it (the row names the console), so it stays in the
console's group and stops with it.
"""

import contextlib
import logging
import os
import pickle
import select
import struct
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from engines.actions.verbs import VERBS, Request, run_scheduled
from engines.errors import JobCancelledError, RepositoryLockedError
from engines.jobs import JobContext, JobUpdate
from engines.pipeline.allocator import keep_freed_memory
from engines.plumbing.error_text import error_text
from jarvis_tui.maintenance_reports import MAINTENANCE_VALUES

if TYPE_CHECKING:
    from engines.workspace import Workspace


logger = logging.getLogger("jarvis.jobs")

CHILD_NICENESS = 5
POLL_S = 0.5


@dataclass(frozen=True)
class ActionSpec:
    """One verb of the table (engines.actions.verbs), described so it can cross to the child."""

    verb: str  # backup, backup-full, restore, verify, export, delete, ...
    request: Request = field(default_factory=Request)
    # A scheduled verb runs inside the job the scheduler already started, and answers
    # with the run's result (complete, partial, failed).
    job_id: int | None = None

    @property
    def job(self) -> tuple[str, str]:
        """(job kind, description) as the CLI words them."""
        job = VERBS[self.verb].job(self.request)
        assert job is not None, f"{self.verb} is no job"
        return job


@dataclass(frozen=True)
class Outcome:
    value: Any = None
    error: str | None = None
    cancelled: bool = False
    locked: bool = False  # another process held the repository lock: a scheduled run is skipped
    left_running: bool = False  # the console let go: the job goes on without it


def _problems(results: list) -> list[str]:
    return [problem for result in results for problem in result.report.problems]


def _pulled(report: Any) -> tuple[str, list[str]]:
    """A pull's line as the CLI says it, and one line per object it could not bring."""
    outcome = report.outcome
    if outcome is None:
        line = f"nothing to download: the repository holds {report.scope} already"
    else:
        line = (
            f"downloaded {len(outcome.pulled)} object(s), {outcome.pulled_bytes} bytes, "
            f"of {report.scope}"
        )
    problems = [f"{key} was not stored: {why}" for key, why in report.refused]
    problems += [f"{key} could not be downloaded: {why}" for key, why in report.failed]
    problems += [f"{key} is in no copy" for key in report.plan.absent]
    return line, problems


# What the console is sent back where the verb's report is more than it shows.
CONSOLE_VALUES: dict[str, Callable[[Any], Any]] = {
    "backup-full": lambda report: report.backup_set,
    "verify": _problems,
    # Each destination's line as the CLI prints it, and whether that copy failed.
    "sync": lambda report: [(outcome.describe(), not outcome.ok) for outcome in report.outcomes],
    "pull": _pulled,
    **MAINTENANCE_VALUES,
}


def perform(spec: ActionSpec, workspace: "Workspace", context: JobContext) -> Any:
    """The verb itself; what it returns is plain data the console shows."""
    if spec.job_id is not None:
        return run_scheduled(spec.verb, workspace, spec.request, context)
    verb = VERBS[spec.verb]
    verb.refuse_while_browsing(workspace)
    value = verb.load()(workspace, spec.request, context)
    shown = CONSOLE_VALUES.get(spec.verb)
    return value if shown is None else shown(value)


def child_main(env_file: Path | None, spec: ActionSpec, send: Callable[[Any], None]) -> None:
    """In the child: the action as a job, every update and then the outcome through `send`.

    Settings are read again here, strictly, as the CLI reads them: an action never
    runs on defaults standing in for invalid values.
    """
    from engines.config import load_settings
    from engines.joblog import configure_logging, register_secrets
    from engines.workspace import Workspace

    try:
        settings = load_settings(env_file=env_file)
        register_secrets(settings.secret_values())
        with contextlib.suppress(Exception):  # without its log file the job still logs
            configure_logging(settings.log_dir)
        with Workspace.open(settings) as workspace:
            if spec.job_id is not None:  # the job is the parent's: it records the end
                context = JobContext(workspace.catalog, spec.job_id, listeners=(send,))
                value = perform(spec, workspace, context)
                context.flush_progress()
            else:
                kind, description = spec.job
                value = workspace.run_job(
                    kind,
                    description,
                    lambda context: perform(spec, workspace, context),
                    listeners=(send,),
                )
    except BaseException as error:
        outcome = Outcome(
            error=error_text(error),
            cancelled=isinstance(error, JobCancelledError),
            locked=isinstance(error, RepositoryLockedError),
        )
    else:
        outcome = Outcome(value=value)
    send(outcome)


# Frames on a private pipe: an 8-byte length, then a pickle. Pickle is safe here: both
# ends are this program, and the pipe is nobody else's.
def write_frame(fd: int, item: Any) -> None:
    payload = pickle.dumps(item)
    os.write(fd, struct.pack(">Q", len(payload)))
    view = memoryview(payload)
    while view:
        view = view[os.write(fd, view) :]


class ConsoleLink:
    """The child's end of the pipe to the console that started it.

    Once the console has gone (quit leaving the job running, or killed with its
    terminal), the job carries on alone: updates are dropped, the catalog still
    records all of them.
    """

    def __init__(self, fd: int):
        self.fd = fd
        self.gone = False

    def __call__(self, item: Any) -> None:
        if self.gone:
            return
        try:
            write_frame(self.fd, item)
        except BrokenPipeError:
            self.gone = True
            logger.info("the console that started this job has gone; the job carries on")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


def _read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        piece = stream.read(size - len(data))
        if not piece:
            return None
        data += piece
    return data


def read_frame(stream: BinaryIO) -> tuple[bool, Any]:
    """(True, item), or (False, None) once the child has closed its end."""
    header = _read_exactly(stream, 8)
    if header is None:
        return False, None
    payload = _read_exactly(stream, struct.unpack(">Q", header)[0])
    return (False, None) if payload is None else (True, pickle.loads(payload))


def run_in_process(
    env_file: Path | None,
    spec: ActionSpec,
    on_update: Callable[[JobUpdate], None],
    while_waiting: Callable[[], None] | None = None,
    *,
    let_go: threading.Event | None = None,
) -> Outcome:
    """Blocking (call it from a worker thread): start the child, relay its updates, wait.

    `while_waiting` is called every POLL_S while the child is quiet (a scheduler passing
    on its own stop request, say). Once `let_go` is set (the console quits and leaves
    the job running) this returns Outcome(left_running=True) within POLL_S without
    waiting for the child, which finishes on its own.

    A plain subprocess rather than multiprocessing: the console's screen owns the
    standard streams, and multiprocessing's helpers want them. The child never
    touches the terminal: the action comes on a pipe, its output goes nowhere, its
    errors to a file this reads if it ends without a result (the job's log is in the
    catalog and the log file).
    """
    read_fd, write_fd = os.pipe()
    with tempfile.TemporaryFile() as errors:
        try:
            child = subprocess.Popen(
                [sys.executable, "-m", "jarvis_tui.job_process", str(write_fd)],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=errors,
                pass_fds=(write_fd,),
                start_new_session=spec.job_id is None,
            )
        finally:
            os.close(write_fd)
        with os.fdopen(read_fd, "rb", buffering=0) as frames:
            assert child.stdin is not None
            child.stdin.write(pickle.dumps((env_file, spec)))
            child.stdin.close()
            outcome = None
            watching = while_waiting is not None or let_go is not None
            while True:
                if let_go is not None and let_go.is_set():
                    return Outcome(left_running=True)
                if watching and not select.select([frames], [], [], POLL_S)[0]:
                    if while_waiting is not None:
                        while_waiting()
                    continue
                more, item = read_frame(frames)
                if not more:
                    break
                if isinstance(item, Outcome):
                    outcome = item
                else:
                    on_update(item)
        child.wait()
        if outcome is not None:
            return outcome
        errors.seek(0)
        tail = errors.read().decode(errors="replace").strip().splitlines()[-3:]
        return Outcome(
            error=f"the job's process ended without a result (exit code {child.returncode}"
            + (f": {' / '.join(tail)}" if tail else "")
            + "); the job log in Jobs (3) says how far it got"
        )


def main(argv: list[str]) -> int:
    """`python -m jarvis_tui.job_process FD`: the settings file and the action on stdin."""
    fd = int(argv[1])
    # A little below the console, so that the screen answers while a job uses every core.
    os.nice(CHILD_NICENESS)
    keep_freed_memory()
    env_file, spec = pickle.loads(sys.stdin.buffer.read())
    link = ConsoleLink(fd)
    child_main(env_file, spec, link)
    link.close()
    return 0


if __name__ == "__main__":
    # Through the package's module, so what is pickled names jarvis_tui.job_process, not
    # __main__, and the console can read it back.
    from jarvis_tui.job_process import main as package_main

    sys.exit(package_main(sys.argv))
