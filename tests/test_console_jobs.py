"""Jobs of other processes in the console: live log, progress, and cancel mid-job."""

import asyncio
import os
import signal
import subprocess
import sys

import pytest
from textual.widgets import OptionList

from jarvis_tui.app import make_app
from jarvis_tui.exit_codes import ExitCode
from tests.console_fixtures import screen_words, wait_until
from tests.support.files_env import REPO_ROOT, child_env, make_files_env

BLOBS = 64
BLOB_SIZE = 4 << 20


@pytest.fixture
def slow_files_env(tmp_path, isolated_env):
    env = make_files_env(tmp_path / "env")
    env.set(BACKUP_COMPRESSION="gzip")
    for number in range(BLOBS):
        # Hex text: it compresses, so gzip level 9 has real work to do (random bytes are
        # stored as they are, fast).
        (env.data / f"blob{number:02d}.txt").write_text(os.urandom(BLOB_SIZE // 2).hex())
    return env


async def test_cancel_a_backup_running_in_another_process(slow_files_env):
    backup = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jarvis_tui.cli",
            "--env-file",
            str(slow_files_env.env_file),
            "backup",
            "files",
        ],
        cwd=REPO_ROOT,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        app = make_app(slow_files_env.env_file, poll_seconds=0.2, host_scheduler=False)
        async with app.run_test(size=(100, 30), notifications=True) as pilot:
            await pilot.press("3")

            def working() -> bool:
                return any(j.status == "running" and j.progress_done > 0 for j in app.jobs)

            await wait_until(pilot, working)
            # Hold the backup still, so the cancel surely lands in the middle of it.
            backup.send_signal(signal.SIGSTOP)
            await wait_until(pilot, lambda: "files in 1 folder(s)" in screen_words(app))
            assert "1 running" in screen_words(app)
            await pilot.press("c")
            await pilot.click("#yes")
            await pilot.pause(0.3)
            backup.send_signal(signal.SIGCONT)  # its next check sees the request
            returncode = await asyncio.to_thread(backup.wait, 60)
            await wait_until(pilot, lambda: all(j.finished for j in app.jobs))
            await wait_until(pilot, lambda: "cancelled by request" in screen_words(app))
            shown = screen_words(app)
            assert "backup files cancelled" in shown  # the notification of another's job
    finally:
        if backup.poll() is None:
            backup.kill()
            backup.wait()
    assert returncode == ExitCode.CANCELLED, backup.stderr.read().decode()
    with slow_files_env.workspace() as workspace:
        job = workspace.catalog.list_jobs()[0]
        assert job.status == "cancelled" and job.cancel_requested
        assert job.progress_done < BLOBS * BLOB_SIZE
        backup_set = workspace.catalog.list_backup_sets()[0]
    assert backup_set.status == "failed"  # never mistaken for a complete backup


async def test_quitting_while_a_backup_runs_here_asks_then_cancels_it(slow_files_env):
    app = make_app(slow_files_env.env_file, poll_seconds=0.2, host_scheduler=False)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        await pilot.press("b")
        await wait_until(pilot, lambda: "Back up now" in screen_words(app))
        choices = app.screen.query_one(OptionList)
        choices.highlighted = choices.get_option_index("files")
        await pilot.press("enter")
        await wait_until(pilot, lambda: bool(app.runner.running_jobs()))
        await pilot.press("q")
        await wait_until(pilot, lambda: "Quit while jobs run?" in screen_words(app))
        await pilot.click("#cancel-jobs")
        await wait_until(pilot, lambda: not app.is_running)
    with slow_files_env.workspace() as workspace:
        job = workspace.catalog.list_jobs()[0]
        backup_set = workspace.catalog.list_backup_sets()[0]
    assert job.description == "backup files (incremental)" and job.status == "cancelled"
    assert backup_set.status == "failed"
