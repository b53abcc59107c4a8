"""Engine actions in a process of their own, so the console's screen never waits on them.

The engines compress, chunk and hash in Python threads; run in the console's
own process they would hold the interpreter lock for seconds and freeze the
screen. Each action the console starts is therefore a child process (a fresh
interpreter, never a fork of a process with threads) that runs the same engine
action as the CLI, as a catalogued job: its progress, log and cancellation
travel through the catalog like any other process's, and its JobContext
updates come back on a private pipe for the screen that asked. Never imports
textual: the child stays light.
"""

import contextlib
import os
import pickle
import select
import struct
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from engines.errors import JobCancelledError
from engines.jobs import JobContext, JobUpdate
from engines.pipeline.allocator import keep_freed_memory
from engines.plumbing.error_text import error_text

if TYPE_CHECKING:
    from engines.workspace import Workspace


CHILD_NICENESS = 5
POLL_S = 0.5


@dataclass(frozen=True)
class ActionSpec:
    """One engine action, described so it can cross to the child process."""

    verb: str  # backup, restore, verify, export, delete
    kind: str | None = None
    reference: str | None = None
    options: Any = None
    relpaths: tuple[str, ...] = ()
    folder: Path | None = None
    as_sql: bool = False
    # A scheduled backup runs inside the job the scheduler already started.
    job_id: int | None = None
    tier: str | None = None
    created_at: datetime | None = None

    @property
    def job(self) -> tuple[str, str]:
        """(job kind, description) as the CLI words them."""
        dry = " (dry run)" if getattr(self.options, "dry_run", False) else ""
        return {
            "backup": ("backup", f"backup {self.kind}"),
            "restore": ("restore", f"restore {self.kind} {self.reference}{dry}"),
            "verify": ("verify", f"verify {self.reference}"),
            "export": ("export", f"export {len(self.relpaths)} artifact(s) to {self.folder}"),
            "delete": ("delete", f"delete {self.reference}"),
            "scheduled-backup": ("backup", f"scheduled {self.tier} backup"),
        }[self.verb]


@dataclass(frozen=True)
class Outcome:
    value: Any = None
    error: str | None = None
    cancelled: bool = False


def failure_text(error: BaseException) -> str:
    return error_text(error)


def perform(spec: ActionSpec, workspace: "Workspace", context: JobContext) -> Any:
    """The engine action itself; what it returns is plain data the console shows."""
    if spec.verb == "scheduled-backup":
        from engines.actions.backup_full import run_backup_full

        report = run_backup_full(workspace, context, tier=spec.tier, created_at=spec.created_at)
        return report.backup_set.status
    if spec.verb == "backup" and spec.kind == "full":
        from engines.actions.backup_full import run_backup_full

        return run_backup_full(workspace, context, tier="manual").backup_set
    if spec.verb == "backup":
        from engines.actions.backup import run_backup

        return run_backup(workspace, str(spec.kind), spec.options, context, tier="manual")
    if spec.verb == "restore":
        from engines.actions.restore import run_restore

        return run_restore(workspace, str(spec.kind), str(spec.reference), spec.options, context)
    if spec.verb == "verify":
        from engines.actions.verify import verify_backup

        results = verify_backup(workspace, str(spec.reference), context)
        return [problem for result in results for problem in result.report.problems]
    if spec.verb == "export":
        return export_artifacts(spec, workspace, context)
    if spec.verb == "delete":
        from engines.actions.delete_set import delete_backup_set

        return delete_backup_set(workspace, str(spec.reference), context)
    raise ValueError(f"unknown console action {spec.verb!r}")


def export_artifacts(spec: ActionSpec, workspace: "Workspace", context: JobContext) -> list[Path]:
    """Each artifact into the folder: its plain .gz, or with `as_sql` PostgreSQL as SQL."""
    from engines.actions.decrypt import decrypt_to_file

    assert spec.folder is not None
    spec.folder.mkdir(parents=True, exist_ok=True)
    written = []
    for relpath in spec.relpaths:
        context.raise_if_cancelled()
        if spec.as_sql:
            from engines.postgres.plain_sql import decrypt_to_sql

            path = decrypt_to_sql(workspace, relpath, spec.folder, context)
        else:
            path = decrypt_to_file(workspace, relpath, spec.folder)
        context.log(f"wrote {path}")
        written.append(path)
    return written


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
        outcome = Outcome(error=failure_text(error), cancelled=isinstance(error, JobCancelledError))
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
) -> Outcome:
    """Blocking (call it from a worker thread): start the child, relay its updates, wait.

    `while_waiting` is called every POLL_S while the child is quiet (a scheduler passing
    on its own stop request, say).

    A plain subprocess rather than multiprocessing: the console's screen owns the
    standard streams, and multiprocessing's helpers want them.
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
            )
        finally:
            os.close(write_fd)
        with os.fdopen(read_fd, "rb", buffering=0) as frames:
            assert child.stdin is not None
            child.stdin.write(pickle.dumps((env_file, spec)))
            child.stdin.close()
            outcome = None
            while True:
                if while_waiting is not None and not select.select([frames], [], [], POLL_S)[0]:
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
    child_main(env_file, spec, lambda item: write_frame(fd, item))
    os.close(fd)
    return 0


if __name__ == "__main__":
    # Through the package's module, so what is pickled names jarvis_tui.job_process, not
    # __main__, and the console can read it back.
    from jarvis_tui.job_process import main as package_main

    sys.exit(package_main(sys.argv))
