"""The complete-system walkthrough's PostgreSQL step, against a real throwaway server:
prefilled the guide's way (the original database, replaced), it writes that database."""

from textual.widgets import RadioButton

from jarvis_tui.app import make_app
from jarvis_tui.screens.restore_postgres import PostgresRestoreWizard
from jarvis_tui.screens.system_restore import SystemRestoreScreen
from tests.console_fixtures import confirm_and_run, screen_words, settle


async def test_step_3_replaces_the_original_database(pg_case):
    source = pg_case.source
    backed_up = pg_case.fingerprint()
    pg_case.server.execute("DELETE FROM public.orders WHERE id > 100", dbname=source)
    assert pg_case.fingerprint() != backed_up
    app = make_app(pg_case.env_file, poll_seconds=None, host_scheduler=False)
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.press("R")
        await settle(pilot)
        await pilot.press("end", "enter")  # the last choice: the complete system
        await settle(pilot)
        walkthrough = app.screen
        assert isinstance(walkthrough, SystemRestoreScreen)
        await pilot.press("d", "s")  # stopped by hand; no S3 download
        await pilot.press("enter")  # step 3: the PostgreSQL wizard, prefilled
        await settle(pilot)
        wizard = app.screen
        assert isinstance(wizard, PostgresRestoreWizard)
        await pilot.press("enter")  # the newest backup
        await settle(pilot)
        buttons = wizard.query("#pg-target RadioButton").results(RadioButton)
        radios = {button.id: button.value for button in buttons}
        assert radios == {"pg-new": False, "pg-same": True}  # exactly one on: the original
        await pilot.press("ctrl+n")  # target -> options: drop existing ticked
        await settle(pilot)
        assert wizard.plan.new_database is False and wizard.plan.drop_existing
        await pilot.press("ctrl+n")  # -> dry run
        await settle(pilot)
        assert "swap it in" in screen_words(app)
        assert "_restored_" not in screen_words(app)
        await pilot.press("ctrl+n")  # -> confirm: the original is replaced, so typed
        await settle(pilot)
        await confirm_and_run(pilot, source)
        assert f"Restore of {source} succeeded" in screen_words(app)
        await pilot.press("ctrl+n")  # close: back on the walkthrough
        await settle(pilot)
        assert app.screen is walkthrough
        assert walkthrough.state_of(2) == f"succeeded: {source} replaced"
        assert pg_case.fingerprint() == backed_up  # the original database holds the backup
        assert f"succeeded: {source} replaced" in screen_words(app)
        await pilot.press("s", "s", "s", "d")  # Redis, files, secrets skipped; started
        await pilot.press("enter")  # step 8: health, and what step 3 wrote vs its backup
        await settle(pilot)
        assert "3 tables and 1200 rows match the backup" in screen_words(app)
        pg_case.server.execute("DELETE FROM public.orders WHERE id > 100", dbname=source)
        await pilot.press("enter")  # again, after the database changed behind the console
        await settle(pilot)
        shown = screen_words(app)
        assert "what was restored differs from the backup" in shown
        assert walkthrough.state_of(7) == "failed"
    assert not any("_restored_" in name for name in pg_case.databases())
