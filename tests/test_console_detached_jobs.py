"""Jobs the console starts outlive it: a hang-up (SSH closed) or a quit leaves them running.

Each test holds the job's process still (SIGSTOP) the moment it appears, before it has
done anything, so the console is gone (or asked to quit) while the job surely has work
left; SIGCONT then lets it finish on its own.
"""

import asyncio
import contextlib
import os
import signal
import time
from pathlib import Path

import pytest
from textual.widgets import OptionList

from engines.plumbing.processes import process_alive
from jarvis_tui.app import make_app
from jarvis_tui.exit_codes import ExitCode
from tests.console_fixtures import screen_words, wait_until
from tests.support.files_env import FilesEnv, make_files_env
from tests.test_console_tmux import TMUX, Terminal, console_command

JOB_MODULE = b"jarvis_tui.job_process"
WAIT_S = 60.0


@pytest.fixture
def files_env(tmp_path, isolated_env) -> FilesEnv:
    env = make_files_env(tmp_path / "env")
    (env.data / "notes.txt").write_text("remember the milk\n" * 100)
    return env


def keep_it_busy(env: FilesEnv, parts: int) -> FilesEnv:
    """About 0.1 s of gzip work per part (2 MiB of text) on an idle core."""
    env.set(BACKUP_COMPRESSION="gzip")
    for number in range(parts):
        (env.data / f"part{number:02d}.txt").write_text(os.urandom(1 << 20).hex())
    return env


def _stat(pid: int) -> list[str]:
    """/proc/PID/stat after the command name: state, ppid, pgrp, session, tty_nr, ..."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def job_processes_below(root: int) -> list[int]:
    """The job processes (python -m jarvis_tui.job_process) descending from `root`."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                parents[int(entry.name)] = int(_stat(int(entry.name))[1])

    def descends(pid: int) -> bool:
        for _ in range(64):
            pid = parents.get(pid, 0)
            if pid == root:
                return True
            if pid <= 1:
                return False
        return False

    found = []
    for pid in filter(descends, parents):
        with contextlib.suppress(OSError):
            if JOB_MODULE in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
    return found


def hold_the_new_job(root: int, known: frozenset[int] = frozenset()) -> int:
    """Stop the job process `root` starts as soon as it exists; its pid. `known`: job
    processes below `root` before this one was started (an earlier test's job still
    running in the same worker), never taken for it."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        found = [pid for pid in job_processes_below(root) if pid not in known]
        if found:
            os.kill(found[0], signal.SIGSTOP)
            return found[0]
        time.sleep(0.02)  # a fresh interpreter takes far longer to reach its first step
    raise AssertionError(f"no job process appeared below pid {root}")


def _holds(pid: int, pipe: tuple[int, int]) -> bool:
    """Whether process `pid` still has `pipe` (device, inode) open."""
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            found = os.stat(fd)
            if (found.st_dev, found.st_ino) == pipe:
                return True
    return False


def wait_for_its_orders(job_pid: int) -> None:
    """Until the console (the job's parent) has written the action on the (stopped)
    job's stdin and closed its end: a console gone before that leaves a job that never
    starts, which is not what is tested here. Not "bytes wait in the pipe": on a busy
    machine (two xdist workers) the job may have read them before it was stopped."""
    stdin = os.stat(f"/proc/{job_pid}/fd/0")
    pipe = (stdin.st_dev, stdin.st_ino)
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if not _holds(int(_stat(job_pid)[1]), pipe):
            return
        time.sleep(0.02)
    raise AssertionError(f"the console never sent job process {job_pid} its action")


def wait_for_the_job(env: FilesEnv, timeout: float = WAIT_S):
    """The catalog's one job, once it has finished."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with env.workspace() as workspace:
            jobs = workspace.catalog.list_jobs()
            if jobs and jobs[0].finished:
                return jobs[0], workspace.catalog.list_backup_sets()
        time.sleep(0.1)
    raise AssertionError("the job never finished")


def hold_once_it_has_its_row(env: FilesEnv, job_pid: int) -> None:
    """Stop the (busy) job again as soon as its catalog row says it runs."""
    with env.workspace() as workspace:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            jobs = workspace.catalog.list_jobs()
            if jobs:
                os.kill(job_pid, signal.SIGSTOP)
                assert workspace.catalog.get_job(jobs[0].id).status == "running"
                return
            time.sleep(0.01)
    raise AssertionError(f"job process {job_pid} never created its row")


def reap(pid: int) -> None:
    """A job left running by a console inside this test process is this process's child."""
    with contextlib.suppress(ChildProcessError, ProcessLookupError):
        os.kill(pid, signal.SIGCONT)
        os.waitpid(pid, 0)


@pytest.mark.skipif(TMUX is None, reason="tmux is not installed: `apt-get install -y tmux`")
def test_a_backup_outlives_the_terminal_it_was_started_from(files_env, tmp_path):
    terminal = Terminal(tmp_path / "tmux.sock")
    job_pid = 0
    try:
        terminal.start(console_command(files_env.env_file))
        terminal.wait_for("Jobs")
        console = int(terminal.tmux("display-message", "-p", "-t", terminal.name, "#{pane_pid}"))
        terminal.keys("b")
        terminal.wait_for("Back up now")
        terminal.keys("Enter")  # everything: here, the files
        job_pid = hold_the_new_job(console)
        _, _, group, session, tty = _stat(job_pid)[:5]
        assert int(session) == job_pid and int(group) == job_pid, "not in a session of its own"
        assert int(tty) == 0, "the job has a controlling terminal"
        wait_for_its_orders(job_pid)
        # What closing the SSH session does: the terminal hangs up and its process group
        # gets SIGHUP. A pending SIGHUP would end the stopped job as soon as it goes on.
        os.killpg(os.getpgid(console), signal.SIGHUP)
        terminal.close()
        deadline = time.monotonic() + WAIT_S
        while process_alive(console) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not process_alive(console), "the console outlived its terminal"
        assert process_alive(job_pid), "the job died with the console"
        os.kill(job_pid, signal.SIGCONT)
        job, sets = wait_for_the_job(files_env)
    finally:
        terminal.close()
        if job_pid and process_alive(job_pid):
            os.kill(job_pid, signal.SIGCONT)
    assert (job.description, job.status, job.pid) == ("backup full", "succeeded", job_pid)
    # Only the files are configured here: the set is partial, with their snapshot in it.
    assert len(sets) == 1 and sets[0].status == "partial"
    with files_env.workspace() as workspace:
        artifacts = workspace.catalog.artifacts_of(sets[0].id)
    assert [artifact.source for artifact in artifacts] == ["files"]
    # It noticed the console had gone and went on quietly, no failing listener.
    log = (files_env.root / "logs" / "backup.log").read_text()
    assert "the console that started this job has gone; the job carries on" in log
    assert "listener" not in log


async def _start_files_backup(app, pilot) -> int:
    await pilot.press("b")
    await wait_until(pilot, lambda: "Back up now" in screen_words(app))
    choices = app.screen.query_one(OptionList)
    choices.highlighted = choices.get_option_index("files")
    known = frozenset(job_processes_below(os.getpid()))
    await pilot.press("enter")
    return await asyncio.to_thread(hold_the_new_job, os.getpid(), known)


async def test_quit_stay_then_leave_running_lets_the_job_finish_after_the_console(files_env):
    keep_it_busy(files_env, 4)  # long enough to be seen running by the next console
    app = make_app(files_env.env_file, poll_seconds=0.2, host_scheduler=False)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        job_pid = await _start_files_backup(app, pilot)
        try:
            await pilot.press("q")
            await wait_until(pilot, lambda: "Quit while jobs run?" in screen_words(app))
            await pilot.click("#stay")
            assert "Quit while jobs run?" not in screen_words(app)
            assert app.is_running and app.runner.running()
            await pilot.press("q")
            await wait_until(pilot, lambda: "Quit while jobs run?" in screen_words(app))
            shown = screen_words(app)
            assert "backup files" in shown and "Jobs (3)" in shown
            await pilot.click("#leave")
            await wait_until(pilot, lambda: not app.is_running)
        except BaseException:
            reap(job_pid)
            raise
    assert app.return_value == ExitCode.OK
    assert process_alive(job_pid), "leaving the job running ended it"
    try:
        os.kill(job_pid, signal.SIGCONT)
        await asyncio.to_thread(hold_once_it_has_its_row, files_env, job_pid)
        # The next console follows it in Jobs: running (its own pid is alive), never
        # taken for a job whose process died.
        later = make_app(files_env.env_file, poll_seconds=0.2, host_scheduler=False)
        async with later.run_test(size=(100, 30), notifications=True) as pilot:
            await pilot.press("3")
            await wait_until(pilot, lambda: "1 running" in screen_words(later))
            assert "backup files" in screen_words(later)
            os.kill(job_pid, signal.SIGCONT)
            await wait_until(pilot, lambda: bool(later.jobs) and later.jobs[0].finished, WAIT_S)
    finally:
        reap(job_pid)
    job, sets = wait_for_the_job(files_env)
    assert job.description.startswith("backup files") and job.status == "succeeded"
    assert [backup_set.status for backup_set in sets] == ["complete"]


async def test_quit_and_cancel_stops_a_job_that_had_only_just_started(files_env):
    keep_it_busy(files_env, 12)  # long enough for the cancel to land between two checks
    app = make_app(files_env.env_file, poll_seconds=0.2, host_scheduler=False)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        job_pid = await _start_files_backup(app, pilot)
        try:
            await pilot.press("q")
            await wait_until(pilot, lambda: "Quit while jobs run?" in screen_words(app))
            await pilot.click("#cancel-jobs")
            await pilot.pause(0.3)
            assert app.is_running, "quit before its job had stopped"
            os.kill(job_pid, signal.SIGCONT)  # its row, then the cancel asked for on start
            await wait_until(pilot, lambda: not app.is_running, timeout=WAIT_S)
        finally:
            reap(job_pid)
    job, sets = wait_for_the_job(files_env)
    assert job.description.startswith("backup files") and job.status == "cancelled"
    assert [backup_set.status for backup_set in sets] == ["failed"]
