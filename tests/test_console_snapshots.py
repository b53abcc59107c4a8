"""Snapshots of every pane, dialog and wizard step at 80x24 and 120x40 (under snapshots/).

The catalog is seeded at fixed moments, the console reads a fixed clock, the
time zone is UTC and the working folder is always the same one, so the SVGs
change only when the console does. Regenerate on purpose with
`pytest tests/test_console_snapshots.py --snapshot-update` and look at them.
"""

import os

import pytest

from tests.console_fixtures import FIXED_NOW, TopLevelSVGExtension

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]
PANES = ("1", "2", "3", "4", "5")


async def settle(pilot) -> None:
    for _ in range(2):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


def press_and_settle(*keys: str):
    async def run_before(pilot) -> None:
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)
            if key == "2":
                await pilot.pause(0.3)  # the detail panel follows the cursor after a pause
                await settle(pilot)

    return run_before


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("pane", PANES, ids=("dashboard", "catalog", "jobs", "alerts", "settings"))
def test_pane(snap_compare, snapshot_console, pane, size):
    assert snap_compare(
        snapshot_console.app(), terminal_size=size, run_before=press_and_settle(pane)
    )


@pytest.mark.parametrize(
    "keys",
    [("2", "question_mark"), ("b",), ("R",), ("2", "x"), ("m",), ("m", "c")],
    ids=(
        "help",
        "backup-chooser",
        "restore-chooser",
        "delete-confirmation",
        "maintenance",
        "retention",
    ),
)
def test_dialog(snap_compare, snapshot_console, keys):
    assert snap_compare(
        snapshot_console.app(), terminal_size=(80, 24), run_before=press_and_settle(*keys)
    )


@pytest.mark.parametrize("size", SIZES)
def test_complete_system_walkthrough(snap_compare, snapshot_console, size):
    keys = ("R", "end", "enter", "d", "s")  # the last choice: the complete system
    assert snap_compare(
        snapshot_console.app(), terminal_size=size, run_before=press_and_settle(*keys)
    )


class StepShots:
    """Several screenshots in one run of the app, each compared like `snap_compare` does."""

    def __init__(self, snapshot, size: tuple[int, int]):
        self.snapshot = snapshot.use_extension(TopLevelSVGExtension)
        self.size = size
        self.failed: list[str] = []

    async def take(self, pilot, name: str) -> None:
        await settle(pilot)
        await pilot.wait_for_scheduled_animations()
        await pilot.pause()
        svg = pilot.app.export_screenshot(title=pilot.app.title, simplify=True)
        if self.snapshot(name=name) != svg:
            self.failed.append(name)


@pytest.mark.parametrize("size", SIZES)
async def test_postgres_wizard_steps(snapshot, snapshot_console, size, monkeypatch):
    """From the seeded catalog: pick, target, options, and the dry run failing calmly."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})  # "parallel jobs: 2"
    shots = StepShots(snapshot, size)
    app = snapshot_console.app()
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        await pilot.press("R", "enter")
        await shots.take(pilot, "1-backup")
        await pilot.press("enter")
        await shots.take(pilot, "2-target")
        await pilot.press("ctrl+n")
        await shots.take(pilot, "3-options")
        await pilot.press("ctrl+n")
        await shots.take(pilot, "4-dry-run-failed")
    assert not shots.failed, f"snapshots differ: {shots.failed}"


@pytest.mark.parametrize("size", SIZES)
async def test_secrets_wizard_steps(snapshot, snapshot_console, size, monkeypatch):
    """A real secrets backup restored to another file: every step, dry run to result."""
    from jarvis_tui.cli import main
    from tests.console_fixtures import write_console_env

    secret_file = snapshot_console.cwd / "app.env"
    secret_file.write_text("API_TOKEN=tok-123\nDB_PASSWORD=hunter2\n")
    write_console_env(snapshot_console.cwd, BACKUP_SECRET_FILES=str(secret_file))
    assert main(["--env-file", str(snapshot_console.env_file), "backup", "secrets"]) == 0
    shots = StepShots(snapshot, size)
    app = snapshot_console.app()
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        await pilot.press("R", "down", "down", "down", "enter")
        await shots.take(pilot, "1-backup")
        await pilot.press("enter")
        await pilot.click("#secrets-other")
        await shots.take(pilot, "2-target")
        await pilot.press("ctrl+n")
        await shots.take(pilot, "3-dry-run")
        await pilot.press("ctrl+n")
        await shots.take(pilot, "4-confirm")
        await pilot.press("ctrl+n")
        await shots.take(pilot, "5-run")
        await pilot.press("ctrl+n")
        await shots.take(pilot, "6-result")
    assert not shots.failed, f"snapshots differ: {shots.failed}"
    assert (snapshot_console.cwd / "app.env.restored").read_text() == secret_file.read_text()
    with snapshot_console.catalog() as catalog:  # stamped by the fixed clock, so the ids hold
        assert catalog.get_backup_set("latest", "secrets").created_at == FIXED_NOW
