"""The files, secrets and Redis restore wizards, driving the real engines."""

import pytest

from jarvis_tui.app import make_app
from jarvis_tui.screens.restore_files import FilesRestoreWizard
from jarvis_tui.screens.restore_redis import RedisRestoreWizard
from jarvis_tui.screens.restore_secrets import SecretsRestoreWizard
from tests.console_fixtures import choose_restore, confirm_and_run, paste_into, screen_words, settle
from tests.support.files_env import make_files_env, tree_of
from tests.support.redis_seed import RedisCase, assert_as_backed_up, backed_up_then_changed


@pytest.fixture
def files_env(tmp_path, isolated_env):
    env = make_files_env(tmp_path / "env")
    (env.data / "music").mkdir()
    (env.data / "music" / "träumerei.mp3").write_bytes(bytes(range(256)) * 400)
    (env.data / "notes.txt").write_text("Grüße\n" * 50)
    (env.data / "empty").mkdir()
    return env


async def test_files_wizard_restores_into_a_target_folder(files_env, tmp_path):
    assert files_env.cli("backup", "files") == 0
    target = tmp_path / "restored"
    app = make_app(files_env.env_file, poll_seconds=None, host_scheduler=False)
    async with app.run_test(size=(100, 32)) as pilot:
        wizard = await choose_restore(pilot, 2, FilesRestoreWizard)
        await pilot.press("enter")
        await settle(pilot)
        await paste_into(pilot, "#files-folder-path", str(target))
        await pilot.press("ctrl+n")  # -> options: keep "never overwrite"
        await paste_into(pilot, "#files-strip", str(files_env.data).lstrip("/"))
        await pilot.press("ctrl+n")  # -> dry run
        await settle(pilot)
        dry_run = screen_words(app)
        assert "nothing was changed" in dry_run and "would create" in dry_run
        assert not target.exists()
        await pilot.press("ctrl+n")  # -> confirm: overwriting nothing, no typed name
        await pilot.press("ctrl+n")  # -> run
        await settle(pilot)
        await pilot.press("ctrl+n")  # -> result
        assert f"Restore of {target} succeeded" in screen_words(app)
        assert wizard.outcome == "succeeded"
    assert tree_of(target) == tree_of(files_env.data)


async def test_files_wizard_into_original_places_needs_the_typed_name(files_env):
    assert files_env.cli("backup", "files") == 0
    (files_env.data / "notes.txt").write_text("changed after the backup\n")
    app = make_app(files_env.env_file, poll_seconds=None, host_scheduler=False)
    async with app.run_test(size=(100, 32)) as pilot:
        await choose_restore(pilot, 2, FilesRestoreWizard)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.click("#files-original")
        await pilot.press("ctrl+n")
        await pilot.click("#files-overwrite-always")
        await pilot.press("ctrl+n")
        await settle(pilot)
        assert "overwrite" in screen_words(app)
        await pilot.press("ctrl+n")
        assert "Type the original locations to confirm" in screen_words(app)
        await pilot.press("escape")  # leave without typing: nothing happens
        await settle(pilot)
    assert (files_env.data / "notes.txt").read_text() == "changed after the backup\n"


async def test_secrets_wizard_writes_another_file(files_env, tmp_path):
    secret_file = tmp_path / "app.env"
    secret_file.write_text("API_TOKEN=tok-123\nDB_PASSWORD=hunter2\n")
    files_env.set(BACKUP_SECRET_FILES=str(secret_file))
    assert files_env.cli("backup", "secrets") == 0
    restored = tmp_path / "app.env.restored"
    app = make_app(files_env.env_file, poll_seconds=None, host_scheduler=False)
    async with app.run_test(size=(100, 32)) as pilot:
        await choose_restore(pilot, 3, SecretsRestoreWizard)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.click("#secrets-other")
        await paste_into(pilot, "#secrets-path", str(restored))
        await pilot.press("ctrl+n")  # -> dry run
        await settle(pilot)
        shown = screen_words(app)
        assert "API_TOKEN" in shown and "tok-123" not in shown and "hunter2" not in shown
        await pilot.press("ctrl+n", "ctrl+n")  # confirm, run
        await settle(pilot)
        await pilot.press("ctrl+n")
        assert f"Restore of {restored} succeeded" in screen_words(app)
    assert restored.read_text() == secret_file.read_text()
    assert restored.stat().st_mode & 0o777 == 0o600


def backed_up_secrets(files_env, tmp_path):
    secret_file = tmp_path / "app.env"
    secret_file.write_text("API_TOKEN=tok-123\nDB_PASSWORD=hunter2\n")
    files_env.set(BACKUP_SECRET_FILES=str(secret_file))
    assert files_env.cli("backup", "secrets") == 0
    return secret_file


async def test_secrets_wizard_stops_at_a_refusing_dry_run(files_env, tmp_path):
    """The file is there and "replace" is not ticked: Next is disabled, the reason is in
    the wizard's words (not `--force`), and ticking "replace" lets the wizard go on."""
    secret_file = backed_up_secrets(files_env, tmp_path)
    secret_file.write_text("API_TOKEN=changed\n")
    app = make_app(files_env.env_file, poll_seconds=None, host_scheduler=False)
    async with app.run_test(size=(120, 40)) as pilot:
        wizard = await choose_restore(pilot, 3, SecretsRestoreWizard)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("ctrl+n")  # target: where it was, no replace -> dry run
        await settle(pilot)
        shown = screen_words(app)
        assert "the engine would refuse this" in shown
        assert f"{secret_file} exists: go back (ctrl+b) and tick" in shown
        assert "--force" not in shown and "changed" not in shown
        assert wizard.query_one("#next").disabled
        dry_run_step = wizard.index
        await pilot.press("ctrl+n")
        assert wizard.index == dry_run_step
        await pilot.press("ctrl+b")
        await pilot.click("#secrets-force")
        await pilot.press("ctrl+n")
        await settle(pilot)
        assert "would replace" in screen_words(app)
        assert not wizard.query_one("#next").disabled
        await pilot.press("escape")
        await settle(pilot)
    assert secret_file.read_text() == "API_TOKEN=changed\n"


async def test_secrets_wizard_goes_back_to_its_choices_after_a_failed_run(files_env, tmp_path):
    """The file appears between the dry run and the run: the run fails, Back returns to
    the Target step (the wizard's options), and the new dry run stops at the refusal."""
    backed_up_secrets(files_env, tmp_path)
    restored = tmp_path / "app.env.restored"
    app = make_app(files_env.env_file, poll_seconds=None, host_scheduler=False)
    async with app.run_test(size=(120, 40)) as pilot:
        wizard = await choose_restore(pilot, 3, SecretsRestoreWizard)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.click("#secrets-other")
        await paste_into(pilot, "#secrets-path", str(restored))
        await pilot.press("ctrl+n")  # -> dry run: would create
        await settle(pilot)
        assert "would create" in screen_words(app)
        restored.write_text("WRITTEN_MEANWHILE=1\n")
        await pilot.press("ctrl+n", "ctrl+n")  # confirm, run
        await settle(pilot)
        assert wizard.outcome == "failed"
        assert "Back returns to the choices" in screen_words(app)
        await pilot.press("ctrl+n")  # -> result
        assert "Restore failed" in screen_words(app)
        assert not wizard.query_one("#back").disabled
        await pilot.press("ctrl+b")
        assert wizard.steps[wizard.index].TITLE == "Target"
        assert wizard.outcome is None
        await pilot.press("ctrl+n")
        await settle(pilot)
        assert f"{restored} exists: go back" in screen_words(app)
        assert wizard.query_one("#next").disabled
        await pilot.press("escape")
        await settle(pilot)
    assert restored.read_text() == "WRITTEN_MEANWHILE=1\n"


async def test_redis_wizard_flushes_only_after_the_typed_address(
    redis_server, tmp_path, isolated_env
):
    case = RedisCase(tmp_path, redis_server)
    backed_up_then_changed(redis_server, case, "backup", "redis")
    address = f"{redis_server.host}:{redis_server.port}"
    app = make_app(case.env_file, poll_seconds=None, host_scheduler=False)
    async with app.run_test(size=(100, 32)) as pilot:
        await choose_restore(pilot, 1, RedisRestoreWizard)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("ctrl+n")  # the running server
        await pilot.click("#redis-flush")
        await pilot.press("ctrl+n")
        await settle(pilot)
        assert "nothing was changed" in screen_words(app)
        assert redis_server.client().get("stray") == b"added later"
        await pilot.press("ctrl+n")
        assert f"Type {address} to confirm" in screen_words(app)
        await confirm_and_run(pilot, address)
        assert f"Restore of {address} succeeded" in screen_words(app)
    assert_as_backed_up(redis_server)
    redis_server.flush()
