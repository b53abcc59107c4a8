"""The PostgreSQL restore wizard and the catalog's actions, against a real throwaway server."""

from jarvis_tui.app import make_app
from jarvis_tui.screens.restore_postgres import PostgresRestoreWizard
from tests.console_fixtures import choose_restore, confirm_and_run, paste_into, screen_words, settle
from tests.support.pg_seed import unique_name


async def test_wizard_restores_into_a_new_database(pg_case):
    target = unique_name("jarvis_restored")
    app = make_app(pg_case.env_file, poll_seconds=None, host_scheduler=False)
    async with app.run_test(size=(100, 32)) as pilot:
        wizard = await choose_restore(pilot, 0, PostgresRestoreWizard)
        await pilot.press("enter")  # the newest backup is highlighted
        await settle(pilot)
        assert wizard.reference.startswith("postgres_")
        await paste_into(pilot, "#pg-new-name", target)
        await pilot.press("ctrl+n")  # target -> options
        await pilot.press("ctrl+n")  # options -> dry run
        await settle(pilot)
        dry_run = screen_words(app)
        assert "nothing was changed" in dry_run
        assert "would restore 3 table(s) with 1200 rows" in dry_run
        assert "does not exist" in dry_run
        assert target not in pg_case.databases()  # the dry run changed nothing
        await pilot.press("ctrl+n")  # -> confirm: a new database needs no typed name
        assert "Nothing existing is replaced" in screen_words(app)
        await pilot.press("ctrl+n")  # -> run
        await settle(pilot)
        assert "The restore succeeded" in screen_words(app)
        assert "check passed: 3 tables, 1200 rows" in screen_words(app)  # the live log
        await pilot.press("ctrl+n")  # -> result
        result = screen_words(app)
        assert f"Restore of {target} succeeded" in result
        assert f"created database {target} from the backup" in result
        assert "What to do next" in result
        await pilot.press("ctrl+n")  # close
        assert wizard.outcome == "succeeded"
    assert pg_case.fingerprint(target) == pg_case.fingerprint()
    with pg_case.workspace() as workspace:
        restore = workspace.catalog.list_jobs()[0]
    assert restore.kind == "restore" and restore.status == "succeeded"


async def test_replacing_a_database_takes_the_typed_name(pg_case):
    source = pg_case.source
    before = pg_case.fingerprint()
    app = make_app(pg_case.env_file, poll_seconds=None, host_scheduler=False)
    async with app.run_test(size=(100, 32)) as pilot:
        wizard = await choose_restore(pilot, 0, PostgresRestoreWizard)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.click("#pg-same")
        await pilot.press("ctrl+n", "ctrl+n")  # options untouched: no drop existing
        await settle(pilot)
        assert "the engine would refuse this" in screen_words(app)
        await pilot.press("ctrl+n")
        assert "would refuse this restore" in screen_words(app)  # Next is held back
        await pilot.press("ctrl+b")  # back to the options
        await pilot.click("#pg-drop")
        await pilot.press("ctrl+n")
        await settle(pilot)
        assert "swap it in" in screen_words(app)
        await pilot.press("ctrl+n")  # -> confirm: destructive, so the name must be typed
        assert f"Type {source} to confirm" in screen_words(app)
        await pilot.press(*"jarvis_wrong", "ctrl+n")
        assert f"Type {source} exactly to confirm" in screen_words(app)
        assert wizard.index == 4 and not wizard.running
        await confirm_and_run(pilot, source)
        result = screen_words(app)
        assert f"Restore of {source} succeeded" in result
        assert "previous database kept as" in result
    assert pg_case.fingerprint() == before
    assert any(name.startswith(f"{source}_pre_restore_") for name in pg_case.databases())


async def test_catalog_verifies_and_exports_a_real_backup(pg_case, tmp_path):
    app = make_app(pg_case.env_file, poll_seconds=None, host_scheduler=False)
    folder = tmp_path / "exported"
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await pilot.press("2")
        await settle(pilot)
        await pilot.press("v")
        await settle(pilot)
        assert "every artifact authenticated" in screen_words(app)
        await pilot.pause(0.3)
        await settle(pilot)
        assert "verified ok" in screen_words(app)
        await pilot.press("e")
        await settle(pilot)
        await paste_into(pilot, "#export-folder", str(folder))
        await pilot.press("enter")
        await settle(pilot)
        assert "Exported" in screen_words(app)
    exported = sorted(p.name for p in folder.iterdir())
    assert len(exported) == 2 and all(name.endswith(".gz") for name in exported)


async def test_unreachable_server_fails_the_dry_run_calmly(pg_case, postgres_server):
    app = make_app(pg_case.env_file, poll_seconds=None, host_scheduler=False)
    text = pg_case.env_file.read_text().replace(
        f"POSTGRES_PORT={postgres_server.port}", "POSTGRES_PORT=1"
    )
    pg_case.env_file.write_text(text)
    app = make_app(pg_case.env_file, poll_seconds=None, host_scheduler=False)
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(pilot)
        assert "UNREACHABLE" in screen_words(app)
        await choose_restore(pilot, 0, PostgresRestoreWizard)
        await pilot.press("enter", "ctrl+n", "ctrl+n")
        await settle(pilot)
        shown = screen_words(app)
        assert "The dry run failed; nothing was changed." in shown
        assert "connection refused" in shown
        await pilot.press("ctrl+n")
        assert "The dry run failed: go back" in screen_words(app)
        assert app.is_running


async def test_backup_now_from_the_dashboard(pg_case):
    app = make_app(pg_case.env_file, poll_seconds=None, host_scheduler=False)
    async with app.run_test(size=(100, 32), notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("b")
        await settle(pilot)
        shown = screen_words(app)
        assert "Everything (the guide's backup:full)" in shown
        assert "redis: Redis is not configured" in shown  # offered, with the reason it cannot
        await pilot.press("down", "enter")  # postgres
        await settle(pilot)
        await settle(pilot)
        assert "Backup finished" in screen_words(app)
        assert "postgres_" in screen_words(app)  # the dashboard shows the new backup
    with pg_case.workspace() as workspace:
        sets = workspace.catalog.list_backup_sets(kind="postgres")
    assert len(sets) == 2 and sets[0].status == "complete" and sets[0].tier == "manual"
