"""What the command line could do and the console could not: back up with options, restore
configuration, export a files snapshot as a tarball, compare two snapshots, rotate the key.
Each drives the console (Textual pilot) against a real repository; the schema-only backup
against a real PostgreSQL."""

import tarfile

import pytest
from rich.text import Text
from textual.widgets import OptionList

from jarvis_tui.app import make_app
from jarvis_tui.screens.backup_chooser import BackupChooser
from jarvis_tui.screens.export import ExportScreen
from jarvis_tui.screens.restore_config import ConfigRestoreWizard
from jarvis_tui.screens.snapshot_diff import SnapshotDiffScreen
from tests.console_fixtures import (
    choose_restore,
    paste_into,
    screen_words,
    settle,
    shows,
    wait_until,
    widget_words,
)
from tests.support.files_env import KEY, FilesEnv, make_files_env
from tests.support.pg_seed import PgCase

NOTES = "Grüße\n" * 50


@pytest.fixture
def files_env(tmp_path, isolated_env) -> FilesEnv:
    env = make_files_env(tmp_path / "env")
    (env.data / "notes.txt").write_text(NOTES)
    (env.data / "music").mkdir()
    (env.data / "music" / "a.mp3").write_bytes(bytes(range(256)) * 400)
    config = env.root / "app-config"
    (config / "nested").mkdir(parents=True)
    (config / "app.yaml").write_text("debug: false\n")
    (config / "nested" / "db.yaml").write_text("pool: 5\n")
    env.set(BACKUP_CONFIG_PATHS=str(config))
    return env


def console(env_file):
    return make_app(env_file, poll_seconds=None, host_scheduler=False)


async def back_up(pilot, kind: str, *clicks: str) -> None:
    """b, the choices clicked, then the source chosen; until the backup's process ended."""
    await pilot.press("b")
    await settle(pilot)
    chooser = pilot.app.screen
    assert isinstance(chooser, BackupChooser)
    for selector in clicks:
        await pilot.click(selector)
    sources = chooser.query_one("#sources", OptionList)
    sources.focus()
    sources.highlighted = sources.get_option_index(kind)
    await pilot.press("enter")
    await settle(pilot)


async def open_catalog(pilot) -> None:
    await pilot.press("2")
    await settle(pilot)
    await pilot.pause(0.3)  # the detail panel follows the cursor after a pause
    await settle(pilot)


async def test_a_schema_only_backup_from_the_console(postgres_server, tmp_path, isolated_env):
    case = PgCase(postgres_server, tmp_path)
    try:
        async with console(case.env_file).run_test(size=(100, 32)) as pilot:
            await back_up(pilot, "postgres", "#backup-pg-schema")
        with case.workspace() as workspace:
            (backup_set,) = workspace.catalog.list_backup_sets()
            modes = {a.mode for a in workspace.catalog.artifacts_of(backup_set.id)}
            (job,) = workspace.catalog.list_jobs()
    finally:
        case.cleanup()
    assert backup_set.status == "complete" and "schema" in modes and "full" not in modes
    assert job.description == "backup postgres (schema)"


async def test_the_files_backup_reads_only_what_changed(files_env):
    async with console(files_env.env_file).run_test(size=(100, 32)) as pilot:
        await back_up(pilot, "files")
        (files_env.data / "notes.txt").write_text("changed after the first backup\n")
        await back_up(pilot, "files")
    with files_env.workspace() as workspace:
        summaries = [
            workspace.catalog.artifacts_of(s.id)[0].metadata["snapshot"]
            for s in workspace.catalog.list_backup_sets()
        ]
        jobs = [job.description for job in workspace.catalog.list_jobs()]
    first = next(s for s in summaries if s["parent"] is None)
    second = next(s for s in summaries if s["parent"] is not None)
    assert first["files_read"] == 2
    assert second["incremental"] and second["files_read"] == 1  # the changed file only
    assert second["new_chunks"] == 1
    assert jobs == ["backup files (incremental)"] * 2


async def test_the_config_wizard_restores_into_a_new_folder(files_env, tmp_path):
    assert files_env.cli("backup", "config") == 0
    config = files_env.root / "app-config"
    target = tmp_path / "restored-config"
    async with console(files_env.env_file).run_test(size=(100, 32)) as pilot:
        wizard = await choose_restore(pilot, 4, ConfigRestoreWizard)
        await pilot.press("enter")  # the newest backup
        await settle(pilot)
        await paste_into(pilot, "#config-folder-path", str(target))
        await pilot.press("ctrl+n")  # -> dry run
        await settle(pilot)
        shown = screen_words(pilot.app)
        assert "nothing was changed" in shown
        assert shows(pilot.app, f"would create the target folder {target}")
        assert "would create 4, replace 0" in shown  # summary first, then each entry
        assert not target.exists()
        await pilot.press("ctrl+n")  # -> confirm: a new folder needs no typed name
        assert "Type" not in screen_words(pilot.app)
        await pilot.press("ctrl+n")  # -> run
        await settle(pilot)
        await pilot.press("ctrl+n")  # -> result
        assert shows(pilot.app, f"Restore of {target} succeeded")
        assert wizard.outcome == "succeeded"
    restored = target / str(config).lstrip("/")
    assert (restored / "app.yaml").read_text() == "debug: false\n"
    assert (restored / "nested" / "db.yaml").read_text() == "pool: 5\n"


async def test_replacing_the_original_configuration_takes_the_typed_name(files_env):
    assert files_env.cli("backup", "config") == 0
    app_yaml = files_env.root / "app-config" / "app.yaml"
    app_yaml.write_text("debug: true\n")
    async with console(files_env.env_file).run_test(size=(100, 32)) as pilot:
        wizard = await choose_restore(pilot, 4, ConfigRestoreWizard)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.click("#config-original")
        await pilot.press("ctrl+n")  # not ticked: the dry run foresees the refusal
        await settle(pilot)
        shown = screen_words(pilot.app)
        assert "Some files there differ from the backup: go back" in shown
        assert "--force" not in shown and wizard.query_one("#next").disabled
        await pilot.press("ctrl+b")
        await pilot.click("#config-replace")
        await pilot.press("ctrl+n")
        await settle(pilot)
        await pilot.press("ctrl+n")  # -> confirm
        assert "Type the original locations to confirm" in screen_words(pilot.app)
        await pilot.press("ctrl+n")
        assert "Type the original locations exactly" in screen_words(pilot.app)
        await pilot.press("escape")
        await settle(pilot)
    assert app_yaml.read_text() == "debug: true\n"  # nothing replaced without the name


async def test_export_writes_a_tarball_and_refuses_a_second_export(files_env, tmp_path):
    assert files_env.cli("backup", "files") == 0
    folder = tmp_path / "exported"
    async with console(files_env.env_file).run_test(size=(120, 40), notifications=True) as pilot:
        await open_catalog(pilot)
        await pilot.press("e")
        await settle(pilot)
        await paste_into(pilot, "#export-folder", str(folder))
        await pilot.press("enter")
        await settle(pilot)
        assert "Exported" in screen_words(pilot.app)
        (tarball,) = folder.iterdir()
        written = tarball.read_bytes()
        await pilot.press("e")
        await settle(pilot)
        await paste_into(pilot, "#export-folder", str(folder))
        await pilot.press("enter")
        await settle(pilot)
        dialog = pilot.app.screen
        assert isinstance(dialog, ExportScreen)  # refused up front, in one line
        problem = str(dialog.query_one("#export-problem").render())
        assert f"{folder} already holds files" in problem and f"instance {folder}-2" in problem
    assert tarball.name.endswith("_files.tar.gz")
    assert list(folder.iterdir()) == [tarball] and tarball.read_bytes() == written
    with tarfile.open(tarball) as tar:
        notes = next(m for m in tar.getmembers() if m.name.endswith("notes.txt"))
        assert tar.extractfile(notes).read() == NOTES.encode()
        assert any(m.name.endswith("music/a.mp3") for m in tar.getmembers())


async def test_diff_shows_the_changed_and_added_files(files_env):
    assert files_env.cli("backup", "files") == 0
    (files_env.data / "notes.txt").write_text("changed\n")
    (files_env.data / "new.txt").write_text("new\n")
    # A name picked by whoever writes into the folder: ESC ]2; retitled the terminal.
    (files_env.data / "new\x1b]2;owned\x07.txt").write_text("new\n")
    assert files_env.cli("backup", "files") == 0
    async with console(files_env.env_file).run_test(size=(120, 40)) as pilot:
        await open_catalog(pilot)  # the newest snapshot is selected
        await pilot.press("d")
        await settle(pilot)
        screen = pilot.app.screen
        assert isinstance(screen, SnapshotDiffScreen)
        await pilot.press("enter")  # its predecessor, highlighted first
        await settle(pilot)
        assert "2 added, 0 removed, 1 changed" in screen_words(pilot.app)
        result = str(screen.query_one("#diff-result").render())
    assert "+ " in result and "/new.txt" in result
    assert "/new\\x1b]2;owned\\x07.txt" in result and "\x1b" not in result
    assert "/notes.txt  (content" in result


async def test_a_job_log_line_naming_an_evil_file_is_shown_escaped():
    """Job log lines name files; ESC in a name went to the terminal (Textual passes it on)."""
    from textual.app import App

    from jarvis_tui.widgets.wrapping_log import WrappingLog

    class OneLog(App):
        def compose(self):
            yield WrappingLog(id="job-log")

    app = OneLog()
    async with app.run_test(size=(100, 10)) as pilot:
        log = app.query_one(WrappingLog)
        log.write("cannot read evil\x1b]2;owned\x07.txt\nnext line")
        log.write(Text("changed while read: x\x1b[2J.txt", style="yellow"))
        await pilot.pause()
        lines = [strip.text.rstrip() for strip in log.lines]
    assert lines == [
        "cannot read evil\\x1b]2;owned\\x07.txt",
        "next line",
        "changed while read: x\\x1b[2J.txt",
    ]


async def test_k_with_a_key_rotates_it_and_seals_the_backups_again(files_env):
    assert files_env.cli("backup", "config") == 0
    async with console(files_env.env_file).run_test(size=(100, 32), notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("k")
        await wait_until(pilot, lambda: bool(pilot.app.screen.query("#key-rotation")))
        shown = widget_words(pilot.app, "#key-rotation")
        assert "Rotate the encryption key" in shown and "still decrypts" in shown
        await pilot.click("#rotate")
        await settle(pilot)
        assert "sealed again under key" in screen_words(pilot.app)
    settings = files_env.env_file.read_text()
    assert f"BACKUP_ENCRYPTION_KEY_PREVIOUS={KEY}\n" in settings
    assert f"BACKUP_ENCRYPTION_KEY={KEY}\n" not in settings
    with files_env.workspace() as workspace:
        current = workspace.keyring().current.key_id
        (backup_set,) = workspace.catalog.list_backup_sets()
        key_ids = {a.key_id for a in workspace.catalog.artifacts_of(backup_set.id)}
        (job,) = [j for j in workspace.catalog.list_jobs() if j.kind == "rekey"]
    assert key_ids == {current} and job.status == "succeeded"
    assert files_env.cli("verify", "latest") == 0


async def test_the_palette_names_each_new_action_with_its_key(files_env):
    from jarvis_tui.palette import console_commands

    async with console(files_env.env_file).run_test(size=(120, 40)) as pilot:
        await open_catalog(pilot)
        keys = {c.name: c.key for c in console_commands(pilot.app, pilot.app.screen)}
    assert keys["Compare the selected snapshot with another"] == "d"
    assert keys["Export the selected backup"] == "e"
    assert keys["Restore configuration"] == "R"
    assert keys["Rotate the encryption key"] == "k"  # a key is set: no "new key" entry
    assert "Generate a new encryption key" not in keys
    assert "Back up postgres now, schema only" in keys
    assert "Back up files now, reading every file" in keys


async def test_a_rotation_the_settings_cannot_take_is_one_line_and_changes_nothing(
    files_env, monkeypatch
):
    monkeypatch.setenv("BACKUP_ENCRYPTION_KEY", KEY)  # the environment wins over the file
    before = files_env.env_file.read_text()
    async with console(files_env.env_file).run_test(size=(100, 32)) as pilot:
        await settle(pilot)
        await pilot.press("k")
        await settle(pilot)
        await pilot.click("#rotate")
        await settle(pilot)
        problem = str(pilot.app.screen.query_one("#rotation-problem").render())
    assert problem.startswith("The key was not rotated: BACKUP_ENCRYPTION_KEY is set in the")
    assert "\n" not in problem.strip() and "invalid settings" not in problem
    assert files_env.env_file.read_text() == before


HOLD_REPOSITORY = """
import sys, time
from pathlib import Path
from engines.repository.lock import RepositoryLock
with RepositoryLock(Path(sys.argv[1]), "backup files"):
    print("held", flush=True)
    time.sleep(120)
"""


async def test_a_rotation_during_a_backup_is_finished_without_another_new_key(files_env):
    """k while a backup holds the repository (another process): the new key is stored, the
    sealing job cannot start; the console said 'Rotate again (k)', which made a third key
    each time. Now k offers Seal again only: the same key, every backup sealed under it."""
    import subprocess
    import sys

    assert files_env.cli("backup", "config") == 0
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_REPOSITORY, str(files_env.repo)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        app = console(files_env.env_file)
        async with app.run_test(size=(100, 32), notifications=True) as pilot:
            await settle(pilot)
            await pilot.press("k")
            await settle(pilot)
            assert not pilot.app.screen.query("#reseal")  # no earlier rotation to finish
            await pilot.click("#rotate")
            await settle(pilot)
            said = pilot.app.message_history.messages[-1].text
            assert f"locked by pid {holder.pid}" in said and "Seal again only" in said
            rotated = files_env.env_file.read_text()
            holder.kill()
            holder.wait()
            await pilot.press("k")
            await settle(pilot)
            await pilot.click("#reseal")
            await settle(pilot)
            assert "sealed again under key" in screen_words(pilot.app)
    finally:
        holder.kill()
        holder.wait()
    assert files_env.env_file.read_text() == rotated  # no third key
    assert f"BACKUP_ENCRYPTION_KEY_PREVIOUS={KEY}\n" in rotated
    with files_env.workspace() as workspace:
        current = workspace.keyring().current.key_id
        (backup_set,) = workspace.catalog.list_backup_sets()
        key_ids = {a.key_id for a in workspace.catalog.artifacts_of(backup_set.id)}
    assert key_ids == {current}
    assert files_env.cli("verify", "latest") == 0
