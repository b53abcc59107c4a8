"""Keys typed after "/" in the Catalog go into the filter, however fast they come."""

from textual import events

from jarvis_tui.screens.catalog import CatalogScreen
from jarvis_tui.screens.wizard import RestoreWizard
from jarvis_tui.widgets.backup_table import BackupTable
from tests.console_fixtures import settle


async def burst(pilot, *keys: str) -> None:
    """Keys as a terminal delivers a fast typist's burst: all queued before any is handled.

    `pilot.press` waits for the app to go idle after each key, which no typist does.
    """
    for key in keys:
        character = "/" if key == "slash" else key
        pilot.app._driver.send_message(events.Key(key, character))
    await settle(pilot)


async def test_keys_typed_right_after_slash_go_into_the_filter(seeded_console):
    app = seeded_console.app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2")
        await settle(pilot)
        assert isinstance(app.screen, CatalogScreen)
        assert isinstance(app.focused, BackupTable)
        await burst(pilot, "slash", *"redis")
        assert isinstance(app.screen, CatalogScreen)  # no wizard opened by r, e or s
        assert not any(isinstance(s, RestoreWizard) for s in app.screen_stack)
        filter_input = app.screen.query_one("#catalog-filter")
        assert filter_input.value == "redis"
        assert app.focused is filter_input
        table = app.screen.query_one(BackupTable)
        assert table.rows and all(s.kind == "redis" for s in table.rows)
        await burst(pilot, "slash", *"04")  # "/" in the filter is text, not the binding
        assert filter_input.value == "redis/04"
