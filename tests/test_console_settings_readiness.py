"""Settings that load but cannot back anything up (no key, a missing source folder) are
problems beside their variable in Settings and on the dashboard, as `config check` says."""

from jarvis_tui.cli import main
from jarvis_tui.exit_codes import ExitCode
from tests.console_fixtures import screen_words, settle, write_console_env


def _without_key_and_with_a_missing_folder(console_env) -> None:
    write_console_env(
        console_env.cwd, BACKUP_ENCRYPTION_KEY=None, BACKUP_FILE_PATHS="data/uploads,data/gone"
    )


async def test_settings_pane_shows_a_missing_key_and_folder_beside_their_variables(console_env):
    _without_key_and_with_a_missing_folder(console_env)
    app = console_env.app()
    async with app.run_test(size=(160, 100)) as pilot:
        await settle(pilot)
        await pilot.press("escape")  # the console offers a new key first; not now
        await pilot.press("5")
        await settle(pilot)
        words = screen_words(app)
    assert "All settings are valid" not in words
    assert "2 problem(s)" in words
    assert "BACKUP_ENCRYPTION_KEY ✗ not set, so every backup is refused" in words
    assert "BACKUP_FILE_PATHS ✗ data/gone does not exist; create it or remove it" in words


async def test_dashboard_lists_the_problems_instead_of_press_b(console_env):
    _without_key_and_with_a_missing_folder(console_env)
    app = console_env.app()
    async with app.run_test(size=(160, 100)) as pilot:
        await settle(pilot)
        await pilot.press("escape")  # the console offers a new key first; not now
        await settle(pilot)
        words = screen_words(app)
    assert "Settings need attention: 2 problem(s)" in words
    assert "BACKUP_ENCRYPTION_KEY: not set, so every backup is refused" in words
    assert "press k to generate one and store it in .env" in words  # the console's words
    assert "keygen" not in words
    assert "BACKUP_FILE_PATHS: data/gone does not exist" in words
    assert "press b" not in words
    assert "none yet: fix Settings (5)" in words


def test_config_check_lists_the_same_problems(console_env, capsys):
    _without_key_and_with_a_missing_folder(console_env)
    code = main(["--env-file", str(console_env.env_file), "config", "check"])
    err = capsys.readouterr().err
    assert code == ExitCode.OK  # loadable settings; the problems are warnings here
    assert "warning: BACKUP_ENCRYPTION_KEY: not set, so every backup is refused" in err
    assert "generate one with `jarvis-tui keygen --append-to .env`" in err
    assert "warning: BACKUP_FILE_PATHS: " in err and "data/gone does not exist" in err


async def test_existing_folders_and_a_key_leave_settings_valid(console_env):
    app = console_env.app()
    async with app.run_test(size=(160, 100)) as pilot:
        await pilot.press("5")
        await settle(pilot)
        words = screen_words(app)
    assert "All settings are valid" in words
