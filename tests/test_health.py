"""Watchdog, health and status: an injected clock for the 25-hour rule, real servers to reach."""

import json
import re
from datetime import UTC, timedelta

import pytest

from engines.catalog.times import parse_iso, utc_now
from engines.monitoring.health import check_scheduler
from engines.monitoring.watchdog import configured_sources
from engines.pipeline.crypto import MasterKey
from engines.scheduling.moments import moment_words
from engines.scheduling.scheduler import Scheduler
from engines.scheduling.schedules import scheduler_holder
from engines.workspace import Workspace
from jarvis_tui.cli import main
from jarvis_tui.exit_codes import ExitCode
from tests.scheduling_support import (
    KEY,
    T0,
    Clock,
    add_set,
    make_settings,
    quick_verbs,
    write_env_file,
)

DEAD_DATABASE_URL = "postgresql://jarvis@127.0.0.1:1/jarvis"


def open_missing(catalog) -> list[str]:
    return sorted(alert.kind for alert in catalog.open_conditions("missing_backup:"))


def test_the_watchdog_fires_after_25_hours_and_clears(tmp_path, isolated_env, webhook_receiver):
    settings = make_settings(
        tmp_path,
        DATABASE_URL=DEAD_DATABASE_URL,  # configured; the watchdog never connects
        SLACK_WEBHOOK_URL=webhook_receiver.url("/slack"),
        BACKUP_MIN_FREE_PERCENT="0",
    )
    sources = configured_sources(settings)
    assert "postgres" in sources
    with Workspace.open(settings) as workspace:
        add_set(workspace, T0, sources=sources)
    clock = Clock(T0 + timedelta(hours=24, minutes=59))
    scheduler = Scheduler(settings, clock=clock)
    assert scheduler.start(timers=False)
    try:
        catalog = scheduler.workspace.catalog
        assert scheduler.watch() == []
        assert open_missing(catalog) == [] and webhook_receiver.requests == []

        clock.set(T0 + timedelta(hours=25, minutes=1))
        problems = scheduler.watch()
        assert len(problems) == len(sources)
        assert open_missing(catalog) == sorted(f"missing_backup:{s}" for s in sources)
        texts = [r.json()["text"] for r in webhook_receiver.wait_for_requests(len(sources))]
        assert any(
            "last good postgres backup full_2025-01-01_000000 is 25.0 h old" in t for t in texts
        )

        clock.set(T0 + timedelta(hours=26))
        scheduler.watch()
        assert len(webhook_receiver.requests) == len(sources)  # no repeat before the reminder

        add_set(scheduler.workspace, clock(), sources=sources)
        assert scheduler.watch() == []
        assert open_missing(catalog) == []
        recoveries = webhook_receiver.wait_for_requests(2 * len(sources))[len(sources) :]
        assert all("backed up again" in r.json()["text"] for r in recoveries)
    finally:
        scheduler.stop(0)


def test_low_disk_space_opens_and_clears(tmp_path, isolated_env):
    clock = Clock(T0)
    full = Scheduler(make_settings(tmp_path, BACKUP_MIN_FREE_PERCENT="99"), clock=clock)
    assert full.start(timers=False)
    try:
        assert any("% free" in problem for problem in full.watch())
        [alert] = full.workspace.catalog.open_conditions("low_disk_space")
        assert "below BACKUP_MIN_FREE_PERCENT=99" in alert.message
    finally:
        full.stop(0)
    roomy = Scheduler(make_settings(tmp_path, BACKUP_MIN_FREE_PERCENT="0"), clock=clock)
    assert roomy.start(timers=False)
    try:
        roomy.watch()
        assert roomy.workspace.catalog.open_conditions("low_disk_space") == []
    finally:
        roomy.stop(0)


@pytest.fixture
def healthy_setup(tmp_path, isolated_env, postgres_server, redis_server):
    variables = {
        "DATABASE_URL": postgres_server.url("postgres"),
        "REDIS_URL": redis_server.url(5),
        "BACKUP_MIN_FREE_PERCENT": "0",
    }
    settings = make_settings(tmp_path, **variables)
    with Workspace.open(settings) as workspace:
        workspace.repository.ensure_repository_id()
        add_set(workspace, utc_now() - timedelta(hours=1), sources=configured_sources(settings))
    scheduler = Scheduler(settings, purpose="console")
    assert scheduler.start(timers=False)
    yield variables
    scheduler.stop(0)


def health(env_file, capsys) -> tuple[int, dict]:
    code = main(["--env-file", str(env_file), "health", "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_health_is_green_when_all_is_well_and_names_each_problem(tmp_path, healthy_setup, capsys):
    code, report = health(write_env_file(tmp_path, **healthy_setup), capsys)
    checks = {c["name"]: c for c in report["checks"]}
    assert code == ExitCode.OK and report["healthy"], report
    assert checks["postgres reachable"]["detail"].startswith('database "postgres" on 127.0.0.1')
    assert "Redis" in checks["redis reachable"]["detail"]
    assert "scheduler (console)" in checks["scheduler"]["detail"]
    assert {"repository writable", "free space", "encryption key", "postgres backup age"} <= set(
        checks
    )

    other_key = "fedcba9876543210" * 4
    broken = {
        **healthy_setup,
        "DATABASE_URL": DEAD_DATABASE_URL,
        "BACKUP_ENCRYPTION_KEY": other_key,
    }
    code, report = health(write_env_file(tmp_path, **broken), capsys)
    failed = {c["name"]: c["detail"] for c in report["checks"] if not c["ok"]}
    assert code == ExitCode.FAILED and not report["healthy"]
    assert set(failed) == {"postgres reachable", "encryption key"}
    assert "connection refused" in failed["postgres reachable"]
    assert MasterKey.from_hex(KEY).key_id in failed["encryption key"]
    assert other_key not in json.dumps(report)


def test_health_without_scheduler_backups_or_repository_fails_in_words(
    tmp_path, isolated_env, capsys
):
    env_file = write_env_file(tmp_path, DATABASE_URL=DEAD_DATABASE_URL)
    assert main(["--env-file", str(env_file), "health"]) == ExitCode.FAILED
    out = capsys.readouterr().out
    assert "repository writable  FAIL" in out and "jarvis-tui init" in out
    assert "no successful postgres backup in the catalog" in out
    assert "start `jarvis-tui --run-scheduled`" in out
    assert "problem(s): postgres reachable, repository writable" in out.strip().splitlines()[-1]


def test_health_says_since_when_the_scheduler_runs_in_words(tmp_path, isolated_env, capsys):
    variables = {"DATABASE_URL": DEAD_DATABASE_URL, "BACKUP_TIMEZONE": "UTC"}
    settings = make_settings(tmp_path, **variables)
    scheduler = Scheduler(settings, purpose="console", clock=Clock(T0))
    assert scheduler.start(timers=False)
    try:
        started = parse_iso(scheduler_holder(settings)["started_at"])
        later = started + timedelta(hours=2, minutes=5)
        [check] = check_scheduler(settings, later)
        assert check.ok
        assert check.detail.endswith(f"since {moment_words(started, later, UTC)}")
        assert check.detail.endswith("(2 h 5 min ago)")

        env_file = write_env_file(tmp_path, **variables)
        main(["--env-file", str(env_file), "health"])
        out = capsys.readouterr().out
    finally:
        scheduler.stop(0)
    line = next(line for line in out.splitlines() if line.startswith("scheduler "))
    assert re.search(r"since \d\d:\d\d \S+ \((less than a minute|\d+ min) ago\)$", line), line
    assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:", out)  # no raw ISO timestamp


def test_status_shows_schedules_in_words_results_and_the_holder(tmp_path, isolated_env, capsys):
    # No base backup after the quick full backup: it would meet the dead server.
    variables = {
        "DATABASE_URL": DEAD_DATABASE_URL,
        "BACKUP_TIMEZONE": "Europe/Berlin",
        "BACKUP_PITR_BASE_SCHEDULE": "off",
    }
    settings = make_settings(tmp_path, **variables)
    # The daily run after this moment lies two to three days back, whatever the hour now
    # (from two days back, it was only one day back when the tests ran just after 02:00).
    clock = Clock(utc_now() - timedelta(days=3))
    scheduler = Scheduler(settings, purpose="console", clock=clock, run_verb=quick_verbs)
    assert scheduler.start(timers=False)
    try:
        clock.set(scheduler.schedules[0].next_after(clock()))
        scheduler.tick()
        env_file = write_env_file(tmp_path, **variables)
        assert main(["--env-file", str(env_file), "status"]) == ExitCode.OK
        out = capsys.readouterr().out
        daily = next(line for line in out.splitlines() if line.startswith("daily"))
        assert "every day at 02:00" in daily and daily.rstrip().endswith("succeeded")
        assert "every Sunday at 03:00" in out and "on the 1st of every month at 04:00" in out
        assert "times in Europe/Berlin" in out
        postgres = next(line for line in out.splitlines() if line.startswith("postgres"))
        assert "full_" in postgres and "TOO OLD" in postgres  # two to three days ago
        assert "Scheduler: scheduler (console), pid" in out

        assert main(["--env-file", str(env_file), "status", "--json"]) == ExitCode.OK
        report = json.loads(capsys.readouterr().out)
        assert report["scheduler"]["purpose"] == "scheduler (console)"
        by_name = {s["name"]: s for s in report["schedules"]}
        assert by_name["daily"]["last_run"]["outcome"] == "succeeded"
        assert by_name["daily"]["next_run"][11:19] == "02:00:00"
        assert report["open_alerts"] == []
    finally:
        scheduler.stop(0)


def test_health_reaches_s3_and_names_a_missing_bucket(tmp_path, isolated_env, s3_server, capsys):
    bucket = s3_server.create_bucket("jarvis-backups")
    variables = {
        "S3_ENABLED": "true",
        "S3_BUCKET": bucket,
        "S3_ACCESS_KEY": s3_server.access_key,
        "S3_SECRET_KEY": s3_server.secret_key,
        "S3_ENDPOINT_URL": s3_server.endpoint_url,
    }
    code, report = health(write_env_file(tmp_path, **variables), capsys)
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["S3 reachable"] == {
        "name": "S3 reachable",
        "ok": True,
        "detail": f"bucket {bucket}",
    }

    missing = {**variables, "S3_BUCKET": "no-such-bucket"}
    code, report = health(write_env_file(tmp_path, **missing), capsys)
    checks = {c["name"]: c for c in report["checks"]}
    assert code == ExitCode.FAILED and not checks["S3 reachable"]["ok"]
    assert "bucket no-such-bucket" in checks["S3 reachable"]["detail"]
