"""`jarvis-tui --run-scheduled` as real processes: election, catch-up, SIGTERM."""

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from engines.catalog import Catalog
from engines.catalog.times import utc_now
from engines.workspace import Workspace
from jarvis_tui.cli import main
from jarvis_tui.exit_codes import ExitCode
from tests.scheduling_support import catalog_consistency_problems, make_settings, write_env_file

REPO_ROOT = Path(__file__).resolve().parents[1]
ONLY_DAILY = {
    "BACKUP_WEEKLY_ENABLED": "false",
    "BACKUP_MONTHLY_ENABLED": "false",
    "BACKUP_CLEANUP_ENABLED": "false",
    "BACKUP_VERIFY_RESTORE_ENABLED": "false",
    "BACKUP_MISFIRE_GRACE_MINUTES": "10080",
}


class Headless:
    """A `jarvis-tui --run-scheduled` process whose stdout lines are collected as they come."""

    def __init__(self, env_file: Path, *python_options: str):
        self.process = subprocess.Popen(
            [
                sys.executable,
                *python_options,
                *("-m", "jarvis_tui.cli", "--env-file", str(env_file), "--run-scheduled"),
            ],
            cwd=env_file.parent,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self.errors = ""
        self._changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_errors, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    def _read_errors(self) -> None:
        self.errors = self.process.stderr.read()

    @property
    def output(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def wait_for_line(self, text: str, timeout: float = 20) -> bool:
        with self._changed:
            return self._changed.wait_for(
                lambda: any(text in line for line in self.lines) or self.process.poll() is not None,
                timeout,
            ) and any(text in line for line in self.lines)

    def terminate(self, timeout: float = 60) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def headless_processes():
    started: list[Headless] = []

    def start(env_file: Path, *python_options: str) -> Headless:
        started.append(Headless(env_file, *python_options))
        return started[-1]

    yield start
    for process in started:
        process.kill()


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_runs_in_the_foreground_without_textual_and_stops_on_sigterm(
    tmp_path, isolated_env, headless_processes
):
    env_file = write_env_file(tmp_path)
    process = headless_processes(env_file, "-X", "importtime")
    assert process.wait_for_line("scheduler elected"), process.output + process.errors
    started = time.monotonic()
    assert process.terminate() == 0
    assert time.monotonic() - started < 10
    assert "SIGTERM received: no new runs; stopping" in process.output
    assert process.output.splitlines()[-1].endswith("stopped")
    imported = [line.rsplit("|", 1)[-1].strip() for line in process.errors.splitlines()]
    assert "engines.scheduling.scheduler" in imported
    assert not [name for name in imported if name.split(".")[0] == "textual"]
    log = (tmp_path / "logs" / "backup.log").read_text()
    assert "scheduler elected (headless)" in log and "stopped" in log


def test_two_schedulers_started_at_once_fire_exactly_once(
    tmp_path, isolated_env, headless_processes
):
    variables = {**ONLY_DAILY, "BACKUP_DAILY_ENABLED": "false", "BACKUP_CLEANUP_ENABLED": "true"}
    env_file = write_env_file(tmp_path, **variables)
    settings = make_settings(tmp_path, **variables)
    with Catalog.open(settings.catalog_path) as catalog:
        # The last cleanup ran eight days ago: one run is due the moment a scheduler starts.
        seeded = utc_now() - timedelta(days=8)
        catalog.record_schedule_run("cleanup", seeded, "succeeded", started_at=seeded)
    first, second = headless_processes(env_file), headless_processes(env_file)
    try:
        with Catalog.open(settings.catalog_path) as catalog:
            wait_until(
                lambda: any(j.kind == "cleanup" and j.finished for j in catalog.list_jobs()),
                30,
                "the catch-up cleanup",
            )
        said = [process.wait_for_line("scheduler", timeout=60) for process in (first, second)]
        assert all(said), first.output + "\n---\n" + second.output
        for process in (first, second):
            wait_until(
                lambda p=process: "elected" in p.output or "standing by" in p.output,
                20,
                "both processes to settle",
            )
    finally:
        codes = [first.terminate(), second.terminate()]
    assert codes == [0, 0], first.output + second.output
    elected = [p for p in (first, second) if "scheduler elected" in p.output]
    standing_by = [p for p in (first, second) if "standing by" in p.output]
    assert len(elected) == 1 and len(standing_by) == 1
    assert "scheduler (headless), pid" in standing_by[0].output
    with Catalog.open(settings.catalog_path) as catalog:
        jobs = [j for j in catalog.list_jobs() if j.kind == "cleanup"]
        assert len(jobs) == 1 and jobs[0].pid == elected[0].process.pid
        ran = [r for r in catalog.list_schedule_runs("cleanup") if r.outcome == "succeeded"]
        assert len(ran) == 2  # the seeded one and exactly one new run
        assert all(r.outcome in ("succeeded", "missed") for r in catalog.list_schedule_runs())


@pytest.fixture(scope="module")
def big_database(postgres_server):
    name = "headless_big"
    postgres_server.drop_database(name)
    postgres_server.create_database(name)
    postgres_server.execute(
        "CREATE TABLE big AS SELECT g, md5(g::text) || md5((g * 7)::text) AS a,"
        " md5((g * 3)::text) AS b FROM generate_series(1, 400000) AS g",
        dbname=name,
    )
    yield postgres_server.url(name)
    postgres_server.drop_database(name)


def backup_setup(tmp_path: Path, database_url: str, grace: str) -> dict[str, str]:
    files = tmp_path / "files"
    files.mkdir()
    (files / "song.txt").write_text("la la la\n")
    secrets = tmp_path / "app.env"
    secrets.write_text("API_TOKEN=abc\n")
    return {
        **ONLY_DAILY,
        "DATABASE_URL": database_url,
        "BACKUP_FILE_PATHS": str(files),
        "BACKUP_SECRET_FILES": str(secrets),
        "BACKUP_COMPRESSION": "gzip",
        "BACKUP_COMPRESSION_LEVEL": "9",
        "BACKUP_SHUTDOWN_GRACE_SECONDS": grace,
    }


def start_during_backup(tmp_path, variables, headless_processes) -> tuple[Headless, Path]:
    env_file = write_env_file(tmp_path, **variables)
    settings = make_settings(tmp_path, **variables)
    with Catalog.open(settings.catalog_path) as catalog:
        seeded = utc_now() - timedelta(days=2)
        catalog.record_schedule_run("daily", seeded, "succeeded", started_at=seeded)
    process = headless_processes(env_file)
    with Catalog.open(settings.catalog_path) as catalog:
        wait_until(
            lambda: any(
                a.source == "postgres" and a.status == "writing" for a in catalog.all_artifacts()
            ),
            30,
            "the PostgreSQL dump to be under way",
        )
    return process, settings


def test_sigterm_during_a_job_cancels_it_and_leaves_a_consistent_catalog(
    tmp_path, isolated_env, big_database, headless_processes
):
    variables = backup_setup(tmp_path, big_database, grace="0")
    process, settings = start_during_backup(tmp_path, variables, headless_processes)
    started = time.monotonic()
    assert process.terminate(timeout=40) == 0, process.output + process.errors
    assert time.monotonic() - started < 30
    assert "cancelling job" in process.output
    with Workspace.open(settings) as workspace:
        assert catalog_consistency_problems(workspace) == []
        [backup_set] = workspace.catalog.list_backup_sets()
        assert backup_set.status == "failed" and "cancel" in backup_set.error
        [run] = [r for r in workspace.catalog.list_schedule_runs("daily") if r.job_id]
        assert run.outcome == "cancelled"
        assert workspace.catalog.get_job(run.job_id).status == "cancelled"
        assert workspace.catalog.open_conditions("backup_failure:") == []


def test_sigterm_during_a_job_lets_it_finish_within_the_grace_time(
    tmp_path, isolated_env, big_database, headless_processes
):
    variables = backup_setup(tmp_path, big_database, grace="120")
    process, settings = start_during_backup(tmp_path, variables, headless_processes)
    assert process.terminate(timeout=120) == 0, process.output + process.errors
    with Workspace.open(settings) as workspace:
        assert catalog_consistency_problems(workspace) == []
        [backup_set] = workspace.catalog.list_backup_sets()
        assert backup_set.status == "complete", backup_set
        assert backup_set.tier == "daily"
        assert "postgres: ok (2 artifacts)" in backup_set.note
        assert "redis: skipped" in backup_set.note
        artifacts = workspace.catalog.artifacts_of(backup_set.id)
        assert {a.source for a in artifacts} == {"postgres", "files", "secrets"}
        assert all(a.verify_state == "ok" for a in artifacts)
        [run] = [r for r in workspace.catalog.list_schedule_runs("daily") if r.job_id]
        assert run.outcome == "succeeded"


def test_a_scheduled_backup_with_a_missing_folder_is_partial_and_alerted(
    tmp_path, isolated_env, headless_processes
):
    files = tmp_path / "files"
    files.mkdir()
    (files / "song.txt").write_text("la la la\n")
    secrets = tmp_path / "app.env"
    secrets.write_text("API_TOKEN=abc\n")
    nowhere = tmp_path / "unmounted"
    variables = {
        **ONLY_DAILY,
        "BACKUP_FILE_PATHS": f"{files},{nowhere}",
        "BACKUP_SECRET_FILES": str(secrets),
    }
    env_file = write_env_file(tmp_path, **variables)
    settings = make_settings(tmp_path, **variables)
    with Catalog.open(settings.catalog_path) as catalog:
        seeded = utc_now() - timedelta(days=2)  # the daily run is due the moment it starts
        catalog.record_schedule_run("daily", seeded, "succeeded", started_at=seeded)
    process = headless_processes(env_file)
    try:
        with Catalog.open(settings.catalog_path) as catalog:
            wait_until(
                lambda: any(
                    r.job_id and r.outcome not in (None, "running")
                    for r in catalog.list_schedule_runs("daily")
                ),
                60,
                "the scheduled backup to finish",
            )
    finally:
        assert process.terminate() == 0, process.output + process.errors
    with Workspace.open(settings) as workspace:
        [run] = [r for r in workspace.catalog.list_schedule_runs("daily") if r.job_id]
        assert run.outcome == "partial", run
        [backup_set] = workspace.catalog.list_backup_sets()
        assert backup_set.status == "partial" and str(nowhere) in backup_set.error
        kept = {a.source for a in workspace.catalog.artifacts_of(backup_set.id)}
        assert kept == {"files", "secrets"}
        (alert,) = workspace.catalog.open_conditions("backup_paths_missing:")
        assert alert.kind == "backup_paths_missing:files" and str(nowhere) in alert.message
        assert workspace.catalog.open_conditions("schedule_failed:") == []


def test_invalid_settings_stop_the_runner_before_it_starts(tmp_path, isolated_env, capsys):
    env_file = write_env_file(tmp_path, BACKUP_DAILY_TIME="every night")
    assert main(["--env-file", str(env_file), "--run-scheduled"]) == ExitCode.INVALID_SETTINGS
    error = capsys.readouterr().err
    assert "BACKUP_DAILY_TIME" in error and "5-field cron expression" in error
    assert not (tmp_path / "repo" / ".scheduler.lock").exists()
