"""The PostgreSQL wizard's "a moment in time" (issue #16), against a throwaway cluster
archiving through our wal-push: the window is `pitr timeline`'s, a target outside it is
refused on its step, the dry run names the base backup and the WAL segments, the folder's
name is typed to confirm, and a server started on the restored folder holds exactly the
rows up to the moment."""

import re
import socket
from dataclasses import dataclass
from pathlib import Path

import pytest

from engines.catalog import Catalog
from jarvis_tui.app import make_app
from jarvis_tui.screens.restore_postgres import PostgresRestoreWizard
from tests.console_fixtures import (
    choose_restore,
    confirm_and_run,
    paste_into,
    screen_text,
    settle,
    shows,
    wait_until,
    widget_words,
)
from tests.test_pitr_archive import Archive, archive, archive_command  # noqa: F401
from tests.test_pitr_restore import TABLE, _rows_after_recovery, _table_and_base_backup


@dataclass(frozen=True)
class Written:
    """What the rows' history needs for `_rows_after_recovery`: the archive."""

    archive: Archive
    base_set: str
    moments: dict[int, str]  # row n -> the server's clock just after it committed
    system_id: str
    base_stop_lsn: str  # where the window starts


@pytest.fixture(scope="module")
def written(archive: Archive) -> Written:  # noqa: F811
    base_set = _table_and_base_backup(archive, TABLE)
    pg = archive.pg
    moments = {}
    for n in (1, 2, 3):
        pg.execute(f"INSERT INTO {TABLE} VALUES ({n})")
        ((moments[n],),) = pg.execute("SELECT clock_timestamp()::text")
        pg.execute("SELECT pg_switch_wal()")
    checked = archive.cli("pitr", "check")  # the last switched segment arrived, so all did
    assert checked.returncode == 0, checked.stderr
    ((system_id,),) = pg.execute("SELECT system_identifier::text FROM pg_control_system()")
    catalog = Catalog.open(archive.root / "catalog.db")
    try:
        (base,) = catalog.artifacts_of(base_set)
    finally:
        catalog.close()
    return Written(archive, base_set, moments, system_id, base.metadata["stop_lsn"])


async def _window_read(pilot) -> PostgresRestoreWizard:
    """The PostgreSQL wizard, opened from the restore screen, once its window is read."""
    wizard = await choose_restore(pilot, 0, PostgresRestoreWizard)
    await wait_until(pilot, lambda: wizard.window is not None)
    await settle(pilot)
    return wizard


async def _moment_step(pilot, app) -> PostgresRestoreWizard:
    """The PostgreSQL wizard, once its window is read, on its Moment step."""
    wizard = await _window_read(pilot)
    await pilot.click("#pick-moment")
    await settle(pilot)
    assert wizard.plan.moment and wizard.steps[wizard.index].TITLE == "Moment"
    return wizard


async def _moment_into(pilot, app, moment: str, folder: Path) -> PostgresRestoreWizard:
    """The wizard on its Data folder step, `moment` chosen and `folder` typed."""
    wizard = await _moment_step(pilot, app)
    await paste_into(pilot, "#moment-value", moment)
    await pilot.press("ctrl+n")
    await paste_into(pilot, "#moment-folder", str(folder))
    return wizard


async def test_without_a_base_backup_the_choice_says_why(archive: Archive, isolated_env):  # noqa: F811
    """Runs before `written` makes the module's base backup: WAL is archived, no base."""
    app = make_app(archive.env_file, poll_seconds=None, host_scheduler=False)
    async with app.run_test(size=(100, 32)) as pilot:
        wizard = await _window_read(pilot)
        note = widget_words(app, "#pick-moment-note")
        assert "Unavailable: WAL is archived, but there is no base backup yet" in note, note
        assert "jarvis-tui backup postgres --mode base" in note
        assert app.screen.query_one("#pick-moment").disabled
        await pilot.click("#pick-moment")
        assert not wizard.plan.moment and wizard.index == 0


async def test_an_empty_repository_says_archiving_is_off(console_env):
    app = console_env.app()
    async with app.run_test(size=(80, 24)) as pilot:
        await _window_read(pilot)
        note = widget_words(app, "#pick-moment-note")
        assert "Unavailable: WAL archiving is off (no WAL in the archive)" in note, note
        assert "jarvis-tui pitr setup --apply" in note and "pitr check" in note
        assert "not in this build" not in screen_text(app)


async def test_the_window_is_shown_and_a_target_outside_it_is_refused(
    written: Written, isolated_env, tmp_path
):
    app = make_app(written.archive.env_file, poll_seconds=None, host_scheduler=False)
    async with app.run_test(size=(80, 24)) as pilot:
        wizard = await _moment_step(pilot, app)
        footer = screen_text(app).splitlines()[-1]  # typing in a field: no one-key bindings
        assert "^n Next" in footer and "esc Leave wizard" in footer and "^p palette" in footer
        window = widget_words(app, "#moment-window")
        assert f"cluster {written.system_id}, timeline 1:" in window, window
        assert f"(LSN {written.base_stop_lsn} to " in window
        assert f"base backup {written.base_set}" in window
        problems = {}
        for typed, words in (
            ("2000-01-01 00:00:00+00", "The moment 2000-01-01 00:00:00+00:00 is outside the "
             "recoverable window: "),
            ("2999-01-01 00:00:00+00", "is outside the recoverable window"),
            ("2026-11-27 14:03", "give its time zone"),
            ("yesterday", "not a time"),
        ):  # fmt: skip
            await paste_into(pilot, "#moment-value", typed)
            await pilot.press("ctrl+n")
            problems[typed] = problem = widget_words(app, "#wizard-problem")
            assert words in problem, problem
            assert wizard.steps[wizard.index].TITLE == "Moment"
        named = problems["2000-01-01 00:00:00+00"].split("window: ")[1]  # it names the window
        assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\S* to \d{4}-", named), named
        await pilot.click("#moment-lsn")
        await paste_into(pilot, "#moment-value", "3000148")
        await pilot.press("ctrl+n")
        assert "not a WAL position" in widget_words(app, "#wizard-problem")
        await pilot.click("#moment-time")
        await paste_into(pilot, "#moment-value", written.moments[2])
        await pilot.press("ctrl+n")
        assert wizard.steps[wizard.index].TITLE == "Data folder"
        full = tmp_path / "full"
        full.mkdir()
        (full / "PG_VERSION").write_text("16\n")
        await paste_into(pilot, "#moment-folder", str(full))
        await pilot.press("ctrl+n")
        assert shows(app, f"{full} is not empty: name a new (or empty) data folder.")
        await pilot.press("ctrl+b", "ctrl+b")  # back to the backups: their way again
        await settle(pilot)
        assert wizard.index == 0 and not wizard.plan.moment
        assert "2 Target" in screen_text(app).splitlines()[1]


async def test_a_moment_is_restored_after_the_dry_run_and_typed_confirmation(
    written: Written, isolated_env, tmp_path
):
    folder = tmp_path / "pgdata_moment"
    app = make_app(written.archive.env_file, poll_seconds=None, host_scheduler=False)
    async with app.run_test(size=(100, 50)) as pilot:
        wizard = await _moment_into(pilot, app, written.moments[1], folder)
        await pilot.press("ctrl+n")  # -> dry run
        await wait_until(pilot, lambda: wizard.dry_run_report is not None, timeout=60)
        await settle(pilot)
        dry_run = widget_words(app, "#dry-run-report")
        assert f"would lay out base backup postgres/{written.base_set}" in dry_run, dry_run
        assert "archived WAL segments 000000010" in dry_run and "all in the archive" in dry_run
        assert "would recover to the moment" in dry_run and "then promote" in dry_run
        assert not folder.exists()  # the dry run changed nothing
        await pilot.press("ctrl+n")  # -> confirm: the folder's name is typed
        assert shows(app, "This writes the whole cluster into a new data folder.")
        assert shows(app, f"Type {folder.name} to confirm")
        await paste_into(pilot, "#confirm-typed", "pgdata")
        await pilot.press("ctrl+n")
        assert shows(app, f"Type {folder.name} exactly to confirm")
        assert not wizard.running and not folder.exists()
        await confirm_and_run(pilot, folder.name)
        await wait_until(pilot, lambda: wizard.outcome is not None, timeout=120)
        await settle(pilot)
        if wizard.steps[wizard.index].TITLE != "Result":
            await pilot.press("ctrl+n")
        result = screen_text(app)
        assert wizard.outcome == "succeeded", result
        assert shows(app, f"Restore of {folder} succeeded.")
        assert shows(app, f"laid out base backup postgres/{written.base_set}")
        assert shows(app, f"pg_ctl -D {folder}")
        assert not shows(app, "recovers to the backup's end")  # no: to the moment
    assert _rows_after_recovery(written, folder) == [1]  # type: ignore[arg-type]
    catalog = Catalog.open(written.archive.root / "catalog.db")
    try:
        restore = catalog.list_jobs()[0]
    finally:
        catalog.close()
    assert (restore.kind, restore.status) == ("restore", "succeeded")
    assert restore.description.startswith("restore postgres latest to the moment ")


async def test_starting_the_server_is_offered_and_refusals_are_in_its_words(
    written: Written, isolated_env, tmp_path
):
    """The dry run checks everything --start needs before anything is written: here a port
    something listens on, or (run by root) a folder that would belong to root."""
    folder = tmp_path / "pgdata_started"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        app = make_app(written.archive.env_file, poll_seconds=None, host_scheduler=False)
        async with app.run_test(size=(100, 32)) as pilot:
            wizard = await _moment_into(pilot, app, written.moments[2], folder)
            await pilot.click("#moment-start")
            await paste_into(pilot, "#moment-port", "")
            await pilot.press("ctrl+n")
            assert "Port nothing: give a free port" in widget_words(app, "#wizard-problem")
            await paste_into(pilot, "#moment-port", str(port))
            await pilot.press("ctrl+n")  # -> dry run
            await wait_until(pilot, lambda: wizard.steps[3].state != "running", timeout=60)
            await settle(pilot)
            shown = widget_words(app, "#dry-run-report")
            assert shows(app, "The dry run failed; nothing was changed.")
            assert shown.startswith("Starting the restored server: ") and "--start" not in shown
            assert f"port {port} is taken" in shown or "root" in shown, shown
            assert wizard.plan.start and not folder.exists()


async def test_a_segment_missing_since_the_window_was_read_fails_the_dry_run_by_name(
    written: Written, isolated_env, tmp_path
):
    """The window said the moment is reachable; a segment then vanished from the archive.
    The dry run (the engine's chain check) names it, nothing is written and Next stays held."""
    segments = sorted(
        path
        for path in written.archive.repository.glob("wal/*/00000001/*.enc")
        if len(path.name.split(".")) == 3  # not a .backup file
    )
    missing = segments[-2]  # after the base backup's start, before the newest
    folder = tmp_path / "pgdata_gap"
    app = make_app(written.archive.env_file, poll_seconds=None, host_scheduler=False)
    async with app.run_test(size=(100, 32)) as pilot:
        wizard = await _moment_into(pilot, app, written.moments[1], folder)
        aside = tmp_path / "aside"
        missing.rename(aside)
        try:
            await pilot.press("ctrl+n")  # -> dry run
            await wait_until(pilot, lambda: wizard.steps[3].state != "running", timeout=60)
            await settle(pilot)
        finally:
            aside.rename(missing)
        shown = widget_words(app, "#dry-run-report")
        name = missing.name.split(".")[0]
        assert f"WAL segment {name} is not in the archive" in shown, shown
        assert shows(app, "The dry run failed; nothing was changed.")
        await pilot.press("ctrl+n")
        assert wizard.steps[wizard.index].TITLE == "Dry run"
        assert "The dry run failed: go back" in widget_words(app, "#wizard-problem")
    assert not folder.exists()
