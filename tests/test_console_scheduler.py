"""The console hosts the scheduler unless another process holds it."""

import os
import subprocess
import sys
import time

from engines.config import load_settings
from engines.scheduling.schedules import scheduler_holder
from tests.console_fixtures import screen_words, wait_until
from tests.support.files_env import child_env


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

    from engines.actions.verbs import Request
    from engines.workspace import Workspace
    from jarvis_tui.scheduler_host import verbs_in_child
    from tests.support.files_env import make_files_env

    env = make_files_env(tmp_path / "env")
    (env.data / "notes.txt").write_text("Grüße\n")
    secrets = tmp_path / "app.env"
    secrets.write_text("API_TOKEN=tok\n")
    env.set(BACKUP_SECRET_FILES=str(secrets))
    planned = datetime(2026, 5, 3, 3, 0, tzinfo=UTC)
    run_verb = verbs_in_child(env.env_file)
    request = Request(tier="weekly", created_at=planned)
    with Workspace.open(load_settings(env_file=env.env_file)) as workspace:
        status = workspace.run_job(
            "backup",
            "scheduled weekly backup",
            lambda context: run_verb("backup-full", workspace, request, context),
        )
        job = workspace.catalog.list_jobs()[0]
        backup_set = workspace.catalog.list_backup_sets()[0]
        events = [e.message for e in workspace.catalog.job_events(job.id)]
    assert status == "complete" and job.status == "succeeded"
    assert backup_set.kind == "full" and backup_set.tier == "weekly"
    assert backup_set.created_at == planned and backup_set.job_id == job.id
    assert any("part files: ok" in message for message in events)  # written by the child
    assert job.pid == os.getpid()  # the job stays the scheduler's; only the work moved


# No scheduled backup; the cleanup at 05:00 UTC.
NO_BACKUPS = {
    "BACKUP_DAILY_ENABLED": "false",
    "BACKUP_WEEKLY_ENABLED": "false",
    "BACKUP_MONTHLY_ENABLED": "false",
    "BACKUP_CLEANUP_TIME": "0 5 * * *",
    "BACKUP_TIMEZONE": "UTC",
}

# The console's scheduler, with a settable clock, in a process of its own: a cleanup and a
# restore drill fall due together; the script says which action modules it ever loaded.
CONSOLE_SCHEDULER = """
import json, os, sys
from datetime import UTC, datetime
from pathlib import Path

from engines.config import load_settings
from engines.scheduling.scheduler import Scheduler
from jarvis_tui.scheduler_host import verbs_in_child

env_file = Path(sys.argv[1])
now = [datetime(2030, 1, 1, 0, 0, tzinfo=UTC)]
scheduler = Scheduler(
    load_settings(env_file=env_file),
    purpose="console",
    clock=lambda: now[0],
    run_verb=verbs_in_child(env_file),
)
assert scheduler.start(timers=False)
try:
    now[0] = datetime(2030, 1, 1, 5, 0, tzinfo=UTC)
    ran = sorted(run.schedule.name for run in scheduler.tick())
finally:
    scheduler.stop(0)
engine_work = ("engines.actions.cleanup", "engines.actions.verify_drill", "engines.store")
loaded = sorted(m for m in sys.modules if m.startswith(engine_work))
print(json.dumps({"pid": os.getpid(), "ran": ran, "loaded": loaded}))
"""


def test_the_consoles_scheduled_cleanup_and_drill_run_in_job_processes(tmp_path, isolated_env):
    import json

    from tests.support.files_env import REPO_ROOT, make_files_env

    env = make_files_env(tmp_path / "env")
    (env.data / "notes.txt").write_text("Grüße\n")
    assert env.cli("backup", "files") == 0
    env.set(**NO_BACKUPS, BACKUP_VERIFY_RESTORE_TIME="0 5 * * *")
    finished = subprocess.run(
        [sys.executable, "-c", CONSOLE_SCHEDULER, str(env.env_file)],
        cwd=REPO_ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 0, finished.stderr
    console = json.loads(finished.stdout.strip().splitlines()[-1])
    assert console["ran"] == ["cleanup", "verify"]
    assert console["loaded"] == []  # the console's process never ran the engines' work
    with env.workspace() as workspace:
        catalog = workspace.catalog
        jobs = {job.kind: job for job in catalog.list_jobs() if job.pid == console["pid"]}
        cleanup, drill = jobs["cleanup"], jobs["verify"]
        cleanup_events = [e.message for e in catalog.job_events(cleanup.id)]
        drill_events = [e.message for e in catalog.job_events(drill.id)]
        runs = {name: catalog.list_schedule_runs(name)[0] for name in ("cleanup", "verify")}
        [artifact] = catalog.artifacts_of(catalog.list_backup_sets()[0].id)
    # The jobs are the console's scheduler's; the children logged the work into them.
    assert cleanup.status == drill.status == "succeeded"
    assert cleanup.description == "scheduled retention and prune"
    assert drill.description == "scheduled restore drill"
    assert any(message.startswith("cleanup: 0 set(s) deleted") for message in cleanup_events)
    assert any(message.startswith("restore drill: ") for message in drill_events)
    assert runs["cleanup"].outcome == runs["verify"].outcome == "succeeded"
    assert runs["cleanup"].job_id == cleanup.id and runs["verify"].job_id == drill.id
    # The drill's result, recorded by the child.
    assert artifact.verify_state == "ok" and artifact.verify_detail.startswith("restore drill: ")


def test_a_console_scheduled_run_the_repository_lock_refuses_is_skipped(tmp_path, isolated_env):
    """As in the scheduler's own process (`--run-scheduled`): another process's lock
    means the run waits for the next time, not that it failed."""
    from datetime import UTC, datetime

    from engines.scheduling.scheduler import Scheduler
    from jarvis_tui.scheduler_host import verbs_in_child
    from tests.support.files_env import make_files_env

    env = make_files_env(tmp_path / "env")
    env.set(**NO_BACKUPS, BACKUP_VERIFY_RESTORE_ENABLED="false")
    now = [datetime(2030, 1, 1, 0, 0, tzinfo=UTC)]
    scheduler = Scheduler(
        load_settings(env_file=env.env_file),
        purpose="console",
        clock=lambda: now[0],
        run_verb=verbs_in_child(env.env_file),
    )
    assert scheduler.start(timers=False)
    try:
        with env.workspace() as holder, holder.lock("backup files"):
            now[0] = datetime(2030, 1, 1, 5, 0, tzinfo=UTC)
            assert [run.schedule.name for run in scheduler.tick()] == ["cleanup"]
        [run] = scheduler.workspace.catalog.list_schedule_runs("cleanup")
        alerts = scheduler.workspace.catalog.open_conditions("schedule_failed:")
    finally:
        scheduler.stop(0)
    assert run.outcome == "skipped" and "backup files" in run.detail
    assert alerts == []
