"""The console hosts the scheduler unless another process holds it."""

import os
import subprocess
import sys
import time

from engines.config import load_settings
from engines.scheduling.schedules import scheduler_holder
from tests.console_fixtures import screen_words
from tests.support.files_env import child_env


async def wait_until(pilot, condition, timeout: float = 20.0) -> None:
    for _ in range(int(timeout / 0.1)):
        if condition():
            return
        await pilot.pause(0.1)
    raise AssertionError("the console never showed what the test waited for")


async def test_console_runs_the_schedules_and_lets_go_when_it_quits(console_env):
    settings = load_settings(env_file=console_env.cwd / console_env.env_file, strict=False)
    app = console_env.app(host_scheduler=True)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_until(pilot, lambda: "schedules run here" in screen_words(app))
        holder = scheduler_holder(settings)
        assert holder is not None and holder["purpose"] == "scheduler (console)"
    assert scheduler_holder(settings) is None


async def test_console_stands_by_while_a_headless_runner_holds_the_schedules(console_env):
    settings = load_settings(env_file=console_env.cwd / console_env.env_file, strict=False)
    runner = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jarvis_tui.cli",
            "--env-file",
            str(console_env.cwd / console_env.env_file),
            "--run-scheduled",
        ],
        cwd=console_env.cwd,  # the settings' relative paths are the test's folder
        env=child_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while scheduler_holder(settings) is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert scheduler_holder(settings)["pid"] == runner.pid
        app = console_env.app(host_scheduler=True)
        async with app.run_test(size=(120, 30)) as pilot:
            expected = f"schedules: headless pid {runner.pid}"
            await wait_until(pilot, lambda: expected in screen_words(app))
        assert scheduler_holder(settings)["pid"] == runner.pid  # untouched by the console
    finally:
        runner.terminate()
        runner.wait(30)


def test_the_consoles_scheduled_backup_runs_in_a_child_inside_the_schedulers_job(
    tmp_path, isolated_env
):
    from datetime import UTC, datetime

    from engines.workspace import Workspace
    from jarvis_tui.scheduler_host import backup_in_child
    from tests.support.files_env import make_files_env

    env = make_files_env(tmp_path / "env")
    (env.data / "notes.txt").write_text("Grüße\n")
    secrets = tmp_path / "app.env"
    secrets.write_text("API_TOKEN=tok\n")
    env.set(BACKUP_SECRET_FILES=str(secrets))
    planned = datetime(2026, 5, 3, 3, 0, tzinfo=UTC)
    action = backup_in_child(env.env_file)
    with Workspace.open(load_settings(env_file=env.env_file)) as workspace:
        status = workspace.run_job(
            "backup",
            "scheduled weekly backup",
            lambda context: action(workspace, context, "weekly", planned, None),
        )
        job = workspace.catalog.list_jobs()[0]
        backup_set = workspace.catalog.list_backup_sets()[0]
        events = [e.message for e in workspace.catalog.job_events(job.id)]
    assert status == "complete" and job.status == "succeeded"
    assert backup_set.kind == "full" and backup_set.tier == "weekly"
    assert backup_set.created_at == planned and backup_set.job_id == job.id
    assert any("part files: ok" in message for message in events)  # written by the child
    assert job.pid == os.getpid()  # the job stays the scheduler's; only the work moved
