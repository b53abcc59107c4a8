"""The console hosts the scheduler unless another process holds it."""

import subprocess
import sys
import time

from engines.config import load_settings
from engines.schedules import scheduler_holder
from tests.console_fixtures import screen_words
from tests.files_env import child_env


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
