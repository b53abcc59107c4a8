"""Reloading the settings (`r` in Settings): a file with errors changes nothing and lists
every problem at once, as `config check` does; a file that moves the backups applies
only once the operator confirms it; any other change applies at once."""

from pathlib import Path

from engines.config import load_settings
from engines.scheduling.schedules import scheduler_holder
from engines.settings_check import moved_destinations
from jarvis_tui.cli import main
from jarvis_tui.exit_codes import ExitCode
from jarvis_tui.screens.confirm import ConfirmScreen
from jarvis_tui.screens.reload_refused import ReloadRefusedScreen
from tests.console_fixtures import (
    KEY,
    screen_text,
    screen_words,
    settle,
    wait_until,
    write_console_env,
)

# An unclosed quote, two bad values and a folder that does not exist.
TYPOS = {
    "BACKUP_DIR": '"other-repo',
    "BACKUP_RETENTION_DAILY": "seven",
    "BACKUP_COMPRESSION": "lzma",
    "BACKUP_FILE_PATHS": "data/uploads,data/gone",
}
PROBLEMS = (
    "BACKUP_DIR: a quote is not closed",
    "BACKUP_RETENTION_DAILY: expected a whole number from 0 to 3650, got 'seven'",
    "BACKUP_COMPRESSION: expected one of gzip, zstd, got 'lzma'",
    "BACKUP_FILE_PATHS: data/gone does not exist",
)


def dialog_words(app) -> str:
    """The words inside the open dialog, wrapped lines joined (the panes behind left out)."""
    region = app.screen.query_one(".dialog").content_region
    lines = screen_text(app).splitlines()[region.y : region.bottom]
    return " ".join(" ".join(line[region.x : region.right] for line in lines).split())


async def reload(pilot) -> None:
    await pilot.press("5", "r")
    await settle(pilot)


async def test_a_typo_keeps_the_repository_and_key_and_lists_every_problem(console_env):
    app = console_env.app()
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await settle(pilot)
        before = app.settings
        write_console_env(console_env.cwd, **TYPOS)
        await reload(pilot)
        assert isinstance(app.screen, ReloadRefusedScreen)
        words = dialog_words(app)
        assert "Settings not reloaded: 4 problem(s) in jarvis.env" in words
        assert "keep the settings they had (repository repo, catalog catalog.sqlite3)" in words
        for problem in PROBLEMS:
            assert problem in words
        assert KEY not in words
        assert app.settings is before and app.access.settings is before
        assert app.settings.repository_dir == Path("repo")
        assert app.settings.backup_encryption_key.reveal() == KEY
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, ReloadRefusedScreen)
        assert "All settings are valid" in screen_words(app)  # still the kept settings


def test_config_check_lists_the_same_problems(console_env, capsys):
    write_console_env(console_env.cwd, **TYPOS)
    code = main(["--env-file", str(console_env.env_file), "config", "check"])
    err = capsys.readouterr().err
    assert code == ExitCode.INVALID_SETTINGS
    for problem in PROBLEMS:
        assert problem in err
    assert "3 problem(s) found" in err  # the missing folder is a warning


async def test_a_new_repository_moves_the_scheduler_only_once_confirmed(console_env):
    cwd = console_env.cwd
    old = load_settings(env_file=cwd / console_env.env_file)
    (cwd / "repo2").mkdir(mode=0o700)
    app = console_env.app(host_scheduler=True)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await wait_until(pilot, lambda: (scheduler_holder(old) or {}).get("purpose"))
        write_console_env(cwd, BACKUP_DIR="repo2", BACKUP_CATALOG_PATH="catalog2.sqlite3")
        new = load_settings(env_file=cwd / console_env.env_file)
        await reload(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        words = dialog_words(app)
        assert "repository: repo → repo2" in words
        assert "catalog: catalog.sqlite3 → catalog2.sqlite3" in words
        assert "its scheduler runs the schedules there" in words
        await pilot.click("#no")  # Back
        await settle(pilot)
        assert "Settings not reloaded: the console kept its settings." in screen_words(app)
        assert app.settings.repository_dir == Path("repo")
        assert scheduler_holder(old)["purpose"] == "scheduler (console)"
        assert scheduler_holder(new) is None
        await reload(pilot)
        await pilot.click("#yes")
        await wait_until(pilot, lambda: scheduler_holder(new) is not None)
        assert app.settings.repository_dir == Path("repo2")
        assert app.access.settings is app.settings
        assert scheduler_holder(new)["purpose"] == "scheduler (console)"
        assert scheduler_holder(old) is None


async def test_a_harmless_change_reloads_at_once(console_env):
    app = console_env.app()
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await settle(pilot)
        write_console_env(console_env.cwd, BACKUP_RETENTION_DAILY="9")
        await reload(pilot)
        assert not isinstance(app.screen, ConfirmScreen | ReloadRefusedScreen)
        assert app.settings.backup_retention_daily == 9
        assert app.settings.repository_dir == Path("repo")
        assert "Settings reloaded" in screen_words(app)


def test_taking_the_key_away_is_a_move_a_new_key_is_not(console_env):
    env_file = console_env.cwd / console_env.env_file
    current = load_settings(env_file=env_file)
    write_console_env(console_env.cwd, BACKUP_ENCRYPTION_KEY=None)
    keyless = load_settings(env_file=env_file)
    write_console_env(console_env.cwd, BACKUP_ENCRYPTION_KEY="f" * 64)
    rotated = load_settings(env_file=env_file)
    assert moved_destinations(current, keyless) == [
        ("encryption key", "set", "not set (every backup is refused)")
    ]
    assert moved_destinations(current, rotated) == []


async def test_a_reload_lets_the_running_scheduled_backup_finish(console_env):
    """`r` after a harmless edit cancelled the nightly backup running at that moment; now
    the job finishes under the settings it started with and the schedules take the new
    settings once it has ended."""
    import asyncio
    import os
    import signal
    from datetime import timedelta

    from engines.catalog.times import utc_now
    from tests.test_console_detached_jobs import hold_the_new_job, job_processes_below, reap

    every_minute = {"BACKUP_DAILY_TIME": "* * * * *"}
    write_console_env(console_env.cwd, **every_minute)
    with console_env.catalog() as catalog:  # the last run 10 min ago: one is due at start
        catalog.record_schedule_run("daily", utc_now() - timedelta(minutes=10), "succeeded")
    app = console_env.app(host_scheduler=True)
    job_pid = 0
    known = frozenset(job_processes_below(os.getpid()))
    try:
        async with app.run_test(size=(120, 40), notifications=True) as pilot:
            job_pid = await asyncio.to_thread(hold_the_new_job, os.getpid(), known)
            await wait_until(pilot, lambda: app.scheduler.current_job is not None)
            job_id, label = app.scheduler.current_job
            write_console_env(console_env.cwd, BACKUP_RETENTION_DAILY="9", **every_minute)
            await pilot.press("5", "r")
            await wait_until(pilot, lambda: app.settings.backup_retention_daily == 9)
            said = [message.text for message in app.message_history.messages]
            assert f"Settings reloaded; the schedules take them up once {label} has ended" in said
            os.kill(job_pid, signal.SIGCONT)
            await wait_until(pilot, lambda: app.scheduler.current_job is None)
            # Then the schedules are taken again, under the new settings.
            host = app.scheduler
            await wait_until(pilot, lambda: getattr(host.scheduler, "settings", 0) is app.settings)
            with console_env.catalog() as catalog:
                job = catalog.get_job(job_id)
            assert job.finished and job.status != "cancelled" and not job.cancel_requested
    finally:
        if job_pid:
            reap(job_pid)
