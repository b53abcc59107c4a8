"""Pilot tests of every pane against a seeded catalog: what the operator sees and can do."""

from jarvis_tui.screens.catalog import CatalogScreen
from jarvis_tui.widgets.backup_table import BackupTable
from tests.console_fixtures import KEY, screen_text, screen_words, write_console_env


async def settle(pilot) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def test_dashboard_shows_freshness_schedules_places_and_alerts(seeded_console):
    app = seeded_console.app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        text = screen_text(app)
    assert "postgres_2026-05-01_020000" in text  # the newest good PostgreSQL backup
    assert "7 h 30 min" in text  # its age at the fixed clock
    assert "redis_2026-04-29_021000" in text and "2 d 7 h" in text  # older than 25 h
    assert "every day at 02:00" in text and "2026-05-02 02:00" in text  # the daily schedule
    assert "UNREACHABLE" in text and "127.0.0.1:1" in text  # the database does not answer
    assert "42.0 GiB free (42%)" in text
    assert "missing_backup:redis" in text


async def test_catalog_lists_newest_first_and_filters(seeded_console):
    app = seeded_console.app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2")
        await settle(pilot)
        table = app.screen.query_one(BackupTable)
        everything = len(table.rows)
        assert [s.created_at for s in table.rows] == sorted(
            (s.created_at for s in table.rows), reverse=True
        )
        await pilot.press("slash", *"redis", "enter")
        await settle(pilot)
        assert table.rows and all(s.kind == "redis" for s in table.rows)
        assert f"{len(table.rows)} of {everything} backups matching “redis”" in screen_text(app)
        await pilot.press("escape")
        await settle(pilot)
        assert len(table.rows) == everything
        await pilot.press("slash", *"no such thing", "enter")
        await settle(pilot)
        assert "No backup matches “no such thing”" in screen_text(app)


async def test_catalog_detail_shows_metadata_of_the_selected_set(seeded_console):
    app = seeded_console.app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2", "slash", *"postgres 2026-05-01", "enter")
        await settle(pilot)
        await pilot.pause(0.3)  # the detail panel waits for the cursor to rest
        await settle(pilot)
        text = screen_text(app)
    assert "postgres/postgres_2026-05-01_020000_jarvis.dump.gz.enc" in text
    assert "app.users 300" in text and "public.orders 900" in text
    assert "key 3f9a1c2e" in text and "stored: local stored" in text
    assert "postgres/postgres_2026-05-01_020000_globals.sql.gz.enc" in text


async def test_catalog_of_ten_thousand_sets_stays_virtual(console_env):
    from datetime import UTC, datetime, timedelta

    with console_env.catalog() as catalog:
        start = datetime(2025, 1, 1, tzinfo=UTC)
        for number in range(1_500):
            catalog.create_backup_set(
                "files", tier="daily", created_at=start + timedelta(hours=number)
            )
    app = console_env.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await settle(pilot)
        table = app.screen.query_one(BackupTable)
        assert len(table.rows) == 1_500
        await pilot.press("end")
        assert table.current.id == "files_2025-01-01_000000"
        await pilot.press("slash", *"2025-02-01", "enter")
        await settle(pilot)
        assert len(table.rows) == 24
        assert "24 of 1,500 backups" in screen_text(app)


async def test_empty_catalog_is_calm(console_env):
    app = console_env.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert "none yet: press b" in screen_text(app)
        await pilot.press("2")
        await settle(pilot)
        assert "No backups yet. Press b to back up now." in screen_text(app)
        await pilot.press("3")
        await settle(pilot)
        assert "No jobs yet" in screen_text(app)


async def test_unusable_catalog_is_shown_not_raised(console_env):
    (console_env.cwd / "catalog.sqlite3").mkdir()  # a folder where the catalog file should be
    app = console_env.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert "Catalog unavailable" in screen_text(app)
        await pilot.press("2")
        await settle(pilot)
        assert "Catalog unavailable" in screen_text(app)
        assert app.is_running


async def test_invalid_settings_are_shown_where_they_are(console_env):
    write_console_env(
        console_env.cwd, BACKUP_ENCRYPTION_KEY="abc123", BACKUP_DAILY_TIME="every night"
    )
    app = console_env.app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert "Settings need attention: 2 problem(s)" in screen_text(app)
        await pilot.press("5")
        await settle(pilot)
        text = screen_text(app)
    assert "✗ expected 64 hex characters, got 6" in text
    assert 'expected a 5-field cron expression like "0 2 * * *"' in text
    assert "abc123" not in text


async def test_settings_mask_every_secret(console_env):
    write_console_env(console_env.cwd, POSTGRES_PASSWORD="pg-Hunter2-secret")
    app = console_env.app()
    async with app.run_test(size=(120, 80)) as pilot:
        await pilot.press("5")
        await settle(pilot)
        text = screen_text(app)
    assert "BACKUP_ENCRYPTION_KEY" in text and "POSTGRES_PASSWORD" in text
    assert KEY not in text and "pg-Hunter2-secret" not in text
    assert "****" in text


async def test_jobs_pane_shows_progress_and_the_log_of_another_hosts_job(seeded_console):
    app = seeded_console.app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        await settle(pilot)
        text = screen_text(app)
        await pilot.press("down")  # the failed backup: its error and its own log
        await settle(pilot)
        failed = screen_text(app)
    assert "Job 2 backup postgres · failed" in failed and "disk full" in failed
    assert "reading data/uploads" not in failed
    assert "backup files (scheduled daily)" in text
    assert "40%" in text and "pid 4242 on backup-host" in text
    assert "reading data/uploads" in text  # the running job's log, read from the catalog


async def test_alerts_pane_shows_delivery_per_channel(seeded_console):
    app = seeded_console.app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("4")
        await settle(pilot)
        text = screen_text(app)
    assert "no successful redis backup for 55 h" in text
    assert "email: failed: connection refused" in text and "slack: sent (200)" in text
    assert "postgres backup failed: disk full" in text


async def test_test_alert_reaches_a_real_webhook(console_env, webhook_receiver):
    write_console_env(console_env.cwd, SLACK_WEBHOOK_URL=webhook_receiver.url("/hooks/slack"))
    app = console_env.app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("4", "t")
        await settle(pilot)
        await settle(pilot)
        assert "slack: sent" in screen_text(app)
    assert len(webhook_receiver.requests) == 1
    assert b"Test alert from jarvis-tui" in webhook_receiver.requests[0].body


async def test_help_lists_the_keys_of_the_pane(seeded_console):
    app = seeded_console.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2", "question_mark")
        await settle(pilot)
        text = screen_text(app)
        assert "Keys · Catalog" in text and "Verify" in text and "command palette" in text
        assert "/ Filter" in screen_words(app) and "slash" not in text
        await pilot.press("escape")
        assert isinstance(app.screen, CatalogScreen)


async def test_help_names_a_wizard_by_its_title_not_its_class(seeded_console):
    app = seeded_console.app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("R")
        await settle(pilot)
        await pilot.press("enter")  # the first choice: PostgreSQL database
        await settle(pilot)
        await pilot.press("f1")
        await settle(pilot)
        text = screen_text(app)
    assert "Keys · Restore PostgreSQL" in text
    assert "Wizard" not in text and "slash" not in text


async def test_palette_offers_every_action(seeded_console):
    from jarvis_tui.palette import console_commands

    app = seeded_console.app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2")
        await settle(pilot)
        names = {command.name for command in console_commands(app, app.screen)}
        for expected in (
            "Back up postgres now",
            "Back up full now",
            "Restore PostgreSQL",
            "Restore the complete system",
            "Verify the selected backup",
            "Export the selected backup",
            "Delete the selected backup",
            "Sync every backup to S3",
            "Send a test alert",
            "Go to Jobs",
        ):
            assert expected in names
        await pilot.press("ctrl+p", *"restore postgres")
        await settle(pilot)
        await pilot.pause(0.3)
        assert "Restore PostgreSQL" in screen_text(app)


async def test_delete_takes_the_typed_id_and_warns_about_the_newest_backup(seeded_console):
    app = seeded_console.app()
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await pilot.press("2", "slash", *"postgres_2026-05-01_020000", "enter")
        await settle(pilot)
        await pilot.press("x")
        await settle(pilot)
        shown = screen_words(app)
        assert "Delete postgres_2026-05-01_020000?" in shown
        assert "newest good backup of postgres" in shown
        await pilot.press(*"postgres_2026-05-01", "enter")  # not the whole id: nothing happens
        shown = screen_words(app)
        assert "Delete postgres_2026-05-01_020000?" in shown
        assert "'postgres_2026-05-01' not found" in shown and "nothing was done" in shown
        await pilot.press(*"_020000", "enter")
        await settle(pilot)
        await settle(pilot)
        assert "postgres_2026-05-01_020000 deleted" in screen_words(app)
        assert "0 of 26 backups" in screen_words(app)
    with seeded_console.catalog() as catalog:
        ids = {s.id for s in catalog.list_backup_sets()}
        assert "postgres_2026-05-01_020000" not in ids and "files_2026-05-01_022000" in ids
        assert catalog.list_jobs()[0].description == "delete postgres_2026-05-01_020000"


async def test_walkthrough_runs_marks_and_skips_the_guides_steps(seeded_console):
    from jarvis_tui.screens.restore_postgres import PostgresRestoreWizard
    from jarvis_tui.screens.system_restore import SystemRestoreScreen

    app = seeded_console.app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("R", "end", "enter")  # the last choice: the complete system
        await settle(pilot)
        assert isinstance(app.screen, SystemRestoreScreen)
        shown = screen_words(app)
        for step in ("Stop all services", "Restore PostgreSQL", "Verify restoration"):
            assert step in shown
        await pilot.press("d", "s")  # stopped by hand; no S3 download
        shown = screen_words(app)
        assert "1 Stop all services done" in shown and "skipped" in shown
        await pilot.press("enter")
        await settle(pilot)
        wizard = app.screen
        assert isinstance(wizard, PostgresRestoreWizard)
        assert wizard.plan.drop_existing and not wizard.plan.new_database  # the guide's way
        await pilot.press("escape")
        await settle(pilot)
        assert "3 Restore PostgreSQL to do" in screen_words(app)
        await pilot.press(*["down"] * 5, "enter")  # 8: verify restoration
        await settle(pilot)
        shown = screen_words(app)
        assert "8 Verify restoration failed" in shown
        assert "✗ postgres reachable: cannot connect" in shown
        await pilot.press("escape", "R", "end", "enter")
        await settle(pilot)
        assert "1 Stop all services done" in screen_words(app)  # kept for the session
