"""The Redis wizard restores from a full backup after `catalog rebuild`, as the CLI does."""

from jarvis_tui.app import make_app
from jarvis_tui.restorable import restorable_sets
from jarvis_tui.screens.catalog import CatalogScreen
from jarvis_tui.screens.restore_redis import RedisRestoreWizard
from jarvis_tui.widgets.backup_table import BackupTable
from tests.console_fixtures import confirm_and_run, screen_words, settle
from tests.support.redis_seed import RedisCase, assert_as_backed_up, backed_up_then_changed


async def test_redis_wizard_restores_a_full_backup_after_catalog_rebuild(
    redis_server, tmp_path, isolated_env
):
    case = RedisCase(tmp_path, redis_server)
    (tmp_path / "uploads").mkdir()
    (tmp_path / "uploads" / "track.txt").write_text("Träumerei\n")
    (tmp_path / "app.env").write_text("APP_TOKEN=not-a-real-one\n")
    case.point_at(
        redis_server,
        BACKUP_FILE_PATHS=str(tmp_path / "uploads"),
        BACKUP_SECRET_FILES=str(tmp_path / "app.env"),
    )
    backed_up_then_changed(redis_server, case, "backup", "full")
    (tmp_path / "catalog.sqlite3").unlink()
    assert case.cli("catalog", "rebuild") == 0
    with case.workspace() as workspace:
        full = workspace.catalog.get_backup_set("latest")
        modes = [a.mode for a in workspace.catalog.artifacts_of(full.id) if a.source == "redis"]
        offered = restorable_sets(workspace.catalog, "redis")
    assert full.kind == "full" and modes[0] == "json"  # the rebuilt order: JSON first
    assert [(s.backup_set.id, s.reference) for s in offered] == [(full.id, full.id)]
    address = f"{redis_server.host}:{redis_server.port}"
    app = make_app(case.env_file, poll_seconds=None, host_scheduler=False)
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.press("2")
        await settle(pilot)
        assert isinstance(app.screen, CatalogScreen)
        assert app.screen.query_one(BackupTable).current.id == full.id
        await pilot.pause(0.4)  # the selected set's details load once the cursor rests
        await settle(pilot)
        await pilot.press("r")
        await settle(pilot)
        wizard = app.screen
        assert isinstance(wizard, RedisRestoreWizard)
        await pilot.press("ctrl+n")  # the set picked in the Catalog
        await settle(pilot)
        assert wizard.reference == full.id
        await pilot.press("ctrl+n")  # the running server
        await pilot.click("#redis-flush")
        await pilot.press("ctrl+n")  # from the RDB snapshot: the dry run
        await settle(pilot)
        assert "nothing was changed" in screen_words(app)
        assert "no RDB snapshot" not in screen_words(app)
        await pilot.press("ctrl+n")
        await confirm_and_run(pilot, address)
        assert f"Restore of {address} succeeded" in screen_words(app)
    assert_as_backed_up(redis_server)
    redis_server.flush()
