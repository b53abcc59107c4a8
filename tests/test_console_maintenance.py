"""Maintenance in the console (m): retention preview and cleanup, verify reading all data,
health, catalog rebuild, and the palette naming each with its key. Real jobs, each in its
own process as the console runs them, on repositories from tests/console_fixtures.py."""

import json

import pytest
from textual.widgets import DataTable

from jarvis_tui.cli import main
from jarvis_tui.screens.health import HealthScreen
from jarvis_tui.screens.maintenance import MaintenanceMenu
from jarvis_tui.screens.retention import RetentionScreen
from jarvis_tui.system_health import FAILED, OK, WARNING
from tests.console_fixtures import (
    FIXED_NOW,
    FrozenCatalogClock,
    screen_text,
    screen_words,
    seed_catalog,
    settle,
    wait_until,
)


@pytest.fixture
def retention_console(console_env):
    """The seeded week of backups, with a retention that keeps three days and one week."""
    # The catalog's clock is frozen while seeding only: a CLI command module imported later
    # in the test must not keep the frozen one for the tests after it.
    with pytest.MonkeyPatch.context() as patch, console_env.catalog() as catalog:
        seed_catalog(catalog, FrozenCatalogClock(patch, FIXED_NOW))
    env_file = console_env.cwd / console_env.env_file
    env_file.write_text(
        env_file.read_text()
        + "BACKUP_RETENTION_DAILY=3\nBACKUP_RETENTION_WEEKLY=1\nBACKUP_RETENTION_MONTHLY=0\n"
    )
    return console_env


@pytest.fixture
def files_console(console_env):
    """A real files backup of the fixture's data/uploads, made by the CLI."""
    uploads = console_env.cwd / "data" / "uploads"
    (uploads / "song.mp3").write_bytes(bytes(range(256)) * 600)
    (uploads / "notes.txt").write_text("Grüße\n" * 200)
    assert main(["--env-file", str(console_env.env_file), "backup", "files"]) == 0
    return console_env


def cli_dry_run(env, capsys) -> dict[str, tuple[bool, tuple[str, ...]]]:
    capsys.readouterr()
    main(["--env-file", str(env.env_file), "cleanup", "--dry-run", "--json"])
    shown = json.loads(capsys.readouterr().out)
    return {s["id"]: (s["keep"], tuple(s["reasons"])) for s in shown["sets"]}


async def open_maintenance(pilot, key: str) -> None:
    await pilot.press("m")
    await settle(pilot)
    assert isinstance(pilot.app.screen, MaintenanceMenu)
    await pilot.press(key)
    await settle(pilot)


async def confirm(pilot) -> None:
    await pilot.click("#yes")
    await settle(pilot)


async def test_retention_preview_matches_the_dry_run_and_cleanup_removes_those(
    retention_console, capsys
):
    expected = cli_dry_run(retention_console, capsys)
    doomed = {set_id for set_id, (keep, _) in expected.items() if not keep}
    assert doomed and len(doomed) < len(expected)
    app = retention_console.app()
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await open_maintenance(pilot, "c")
        screen = app.screen
        assert isinstance(screen, RetentionScreen) and screen.plan is not None
        planned = {row.set_id: (row.keep, row.reasons) for row in screen.plan.rows}
        assert planned == expected  # the CLI's dry run, set by set, reason by reason
        table = screen.query_one(DataTable)
        assert table.row_count == len(expected)
        words = screen_words(app)
        kept = len(expected) - len(doomed)
        assert f"{kept} kept, {len(doomed)} to delete" in words
        assert "Nothing has been deleted yet" in words
        for reason in ("daily, weekly", "newest secrets", "failed backup", "in no slot"):
            assert reason in words
        first = screen.plan.rows[0]  # the selected row, explained in full under the table
        assert f"{first.set_id} is kept: daily slot (the newest backup of its day)" in words
        assert "DELETE" in words and "keep" in words
        with retention_console.catalog() as catalog:
            assert {s.id for s in catalog.list_backup_sets()} >= doomed  # nothing deleted yet

        await pilot.press("c")
        await settle(pilot)
        assert f"Deletes the {len(doomed)} backup(s) marked DELETE" in screen_words(app)
        await confirm(pilot)
        await settle(pilot)  # the plan asked again once the cleanup changed the catalog
        assert "cleanup finished" in screen_words(app)
        assert isinstance(app.screen, RetentionScreen)
        assert f"{kept} kept, 0 to delete" in screen_words(app)
    with retention_console.catalog() as catalog:
        left = {s.id for s in catalog.list_backup_sets()}
        jobs = [job.description for job in catalog.list_jobs(limit=10)]
    assert left == set(expected) - doomed
    assert "cleanup" in jobs and "retention preview (nothing is deleted)" in jobs


async def test_verify_reading_all_data_passes_then_names_a_damaged_pack(files_console):
    with files_console.catalog() as catalog:
        (backup_set,) = catalog.list_backup_sets()
    app = files_console.app()
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await pilot.press("2")
        await settle(pilot)
        await pilot.press("V")
        await settle(pilot)
        assert f"{backup_set.id}: every artifact authenticated" in screen_words(app)
        packs = sorted((files_console.cwd / "repo" / "files" / "packs").glob("*/*.pack"))
        damaged = bytearray(packs[0].read_bytes())
        damaged[len(damaged) // 2] ^= 0xFF
        packs[0].write_bytes(bytes(damaged))
        await pilot.press("V")
        await settle(pilot)
        assert f"{backup_set.id} FAILED verification" in screen_words(app)
    with files_console.catalog() as catalog:
        job = catalog.list_jobs(limit=1)[0]
    assert job.description == f"verify {backup_set.id}, reading every chunk"


async def test_health_screen_shows_the_checks_of_health_with_states_and_hints(
    retention_console, capsys
):
    env_file = retention_console.cwd / retention_console.env_file
    schedules = ("DAILY", "WEEKLY", "MONTHLY", "CLEANUP", "VERIFY_RESTORE")
    env_file.write_text(
        env_file.read_text() + "".join(f"BACKUP_{name}_ENABLED=false\n" for name in schedules)
    )
    capsys.readouterr()
    main(["--env-file", str(retention_console.env_file), "health", "--json"])
    cli = {c["name"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    main(["--env-file", str(retention_console.env_file), "health"])
    assert "scheduler            WARN" in capsys.readouterr().out
    app = retention_console.app()
    async with app.run_test(size=(100, 40)) as pilot:
        await open_maintenance(pilot, "h")
        screen = app.screen
        assert isinstance(screen, HealthScreen)
        states = {row.name: row.state for row in screen.rows}
        assert states.keys() == cli.keys()  # the same checks as `jarvis-tui health`
        for name, check in cli.items():
            if not name.endswith("backup age"):  # ages: the console reads its fixed clock
                assert states[name] == (
                    FAILED if not check["ok"] else WARNING if check.get("warning") else OK
                )
        assert states["repository writable"] == OK
        assert states["postgres reachable"] == FAILED  # the fixture's closed port
        assert states["scheduler"] == WARNING  # no schedule is enabled
        words = screen_words(app)
        assert "check(s) failed, 1 warning(s)" in words
        assert "✗ FAILED" in words and "✓ ok" in words and "! warning" in words
        assert "start the postgres server or correct its connection in Settings (5)" in words
        assert "no backup runs by itself" in words


async def test_catalog_rebuild_brings_back_a_catalog_deleted_while_the_console_runs(
    files_console,
):
    with files_console.catalog() as catalog:
        (backup_set,) = catalog.list_backup_sets()
    env_file = files_console.cwd / files_console.env_file
    schedules = ("DAILY", "WEEKLY", "MONTHLY", "CLEANUP", "VERIFY_RESTORE")
    env_file.write_text(  # the console holds the schedules, and none fires during the test
        env_file.read_text() + "".join(f"BACKUP_{name}_ENABLED=false\n" for name in schedules)
    )
    app = files_console.app(host_scheduler=True)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await wait_until(pilot, lambda: app.scheduler.scheduler is not None)
        await pilot.press("2")
        await settle(pilot)
        assert backup_set.id in screen_text(app)
        for path in files_console.cwd.glob("catalog.sqlite3*"):
            path.unlink()  # the console still reads the deleted file it has open
        await open_maintenance(pilot, "g")
        assert "Rebuild the catalog?" in screen_words(app)
        await confirm(pilot)
        await settle(pilot)
        assert "rebuild the catalog finished" in screen_words(app)
        assert backup_set.id in screen_text(app)  # the Catalog pane reloaded
        app.poll_jobs()
        await settle(pilot)
        # Read from the new file: it holds the rebuild's job and no longer the backup's.
        assert [job.description for job in app.jobs] == ["rebuild the catalog"]

        def scheduler_reads_the_new_file() -> bool:
            scheduler = app.scheduler.scheduler
            if scheduler is None or scheduler.workspace is None:
                return False
            jobs = scheduler.workspace.catalog.list_jobs(limit=5)
            return [job.description for job in jobs] == ["rebuild the catalog"]

        await wait_until(pilot, scheduler_reads_the_new_file)
    with files_console.catalog() as catalog:
        assert [s.id for s in catalog.list_backup_sets()] == [backup_set.id]


async def test_palette_lists_the_maintenance_commands_with_their_keys(retention_console):
    from jarvis_tui.palette import console_commands

    app = retention_console.app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2")
        await settle(pilot)
        keys = {command.name: command.key for command in console_commands(app, app.screen)}
        assert keys["Maintenance…"] == "m"
        assert keys["Retention and cleanup…"] == "m c"
        assert keys["Health checks"] == "m h"
        assert keys["Verify every backup"] == "m a"
        assert keys["Verify every backup, reading all data"] == "m A"
        assert keys["Restore drill"] == "m d"
        assert keys["Prune the files store…"] == "m p"
        assert keys["Rebuild the catalog…"] == "m g"
        assert keys["Verify the selected backup, reading all data"] == "V"
        await pilot.press("ctrl+p", *"retention")
        await settle(pilot)
        await pilot.pause(0.3)
        assert "Retention and cleanup…  m c" in screen_text(app)


async def test_verify_all_drill_and_prune_run_as_jobs(files_console):
    app = files_console.app()
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await open_maintenance(pilot, "d")
        assert "restore drill finished" in screen_words(app)
        await open_maintenance(pilot, "p")
        assert "Prune the files store?" in screen_words(app)
        await confirm(pilot)
        assert "prune the files store finished" in screen_words(app)
        pack = next((files_console.cwd / "repo" / "files" / "packs").glob("*/*.pack"))
        damaged = bytearray(pack.read_bytes())
        damaged[len(damaged) // 2] ^= 0xFF
        pack.write_bytes(bytes(damaged))
        await open_maintenance(pilot, "A")
        words = screen_words(app)
        assert "verify every backup, reading every chunk: problems" in words
        assert "1 artifact(s) checked, 1 failed" in words
    with files_console.catalog() as catalog:
        jobs = {job.description: job.status for job in catalog.list_jobs(limit=10)}
    assert jobs["restore drill"] == "succeeded"
    assert jobs["prune the files store"] == "succeeded"
    assert "verify every backup, reading every chunk" in jobs


async def test_catalog_rebuild_moves_an_unreadable_catalog_aside(files_console):
    with files_console.catalog() as catalog:
        (backup_set,) = catalog.list_backup_sets()
    for path in files_console.cwd.glob("catalog.sqlite3*"):
        path.unlink()
    files_console.catalog_path.write_bytes(b"not a database, " * 512)
    # One moved aside earlier in the same second (the console's clock is fixed): kept.
    earlier = files_console.cwd / "catalog.sqlite3.unreadable-20260501T093000"
    earlier.write_bytes(b"moved aside before")
    app = files_console.app()
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await pilot.press("2")
        await settle(pilot)
        assert "m, g rebuilds the catalog" in screen_words(app)
        await open_maintenance(pilot, "g")
        await confirm(pilot)
        await settle(pilot)
        words = screen_words(app)
        assert "The unreadable catalog was moved aside" in words
        assert "rebuild the catalog finished" in words
        assert backup_set.id in screen_text(app)
    assert earlier.read_bytes() == b"moved aside before"
    aside = files_console.cwd / "catalog.sqlite3.unreadable-20260501T093000-2"
    assert aside.read_bytes() == b"not a database, " * 512  # kept as it was
    with files_console.catalog() as catalog:
        assert [s.id for s in catalog.list_backup_sets()] == [backup_set.id]


async def test_cleanup_deletes_only_what_the_preview_showed_as_delete(retention_console):
    """A backup that lands between the preview and c (the CLI in another process) takes the
    day's slot of the set shown as kept: the cleanup must not delete that set, which the
    operator never saw marked DELETE; the next preview shows it."""
    app = retention_console.app()
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await open_maintenance(pilot, "c")
        screen = app.screen
        assert isinstance(screen, RetentionScreen) and screen.plan is not None
        shown_doomed = {row.set_id for row in screen.plan.doomed}
        newest_pg = max(
            (r for r in screen.plan.rows if r.set_id.startswith("postgres") and r.keep),
            key=lambda r: r.set_id,
        )
        with retention_console.catalog() as catalog:  # another process's backup lands
            landed = catalog.create_backup_set("postgres", tier="manual", created_at=FIXED_NOW)
            stored = catalog.add_artifact(landed.id, "postgres", "full", "postgres/new.enc")
            catalog.complete_artifact(
                stored.id,
                checksum="ab" * 32,
                stored_size=10,
                plain_size=40,
                key_id="3f9a1c2e",
                codec="gzip",
                metadata={"set_id": landed.id},
            )
            catalog.finish_backup_set(landed.id, "complete")
        await pilot.press("c")
        await settle(pilot)
        await confirm(pilot)
        await settle(pilot)
        assert "cleanup finished" in screen_words(app)
        assert newest_pg.set_id in {row.set_id for row in app.screen.plan.doomed}  # re-shown
        with retention_console.catalog() as catalog:
            left = {s.id for s in catalog.list_backup_sets()}
    assert newest_pg.set_id in left  # shown as kept: never deleted by this cleanup
    assert landed.id in left and not (shown_doomed & left)
