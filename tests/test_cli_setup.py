import json
import stat

import pytest

from engines.dotenv import read_env_file
from jarvis_tui.cli import main
from jarvis_tui.exit_codes import ExitCode

KEY = "0123456789abcdef" * 4


@pytest.fixture
def env_file(tmp_path, isolated_env):
    path = tmp_path / "jarvis.env"
    path.write_text(
        f"BACKUP_DIR={tmp_path / 'repo'}\n"
        f"BACKUP_CATALOG_PATH={tmp_path / 'catalog.sqlite3'}\n"
        f"BACKUP_LOG_DIR={tmp_path / 'logs'}\n"
        f"BACKUP_ENCRYPTION_KEY={KEY}\n"
        "POSTGRES_PASSWORD=pg-password-value\n"
        'BACKUP_DAILY_TIME="30 1 * * *"  # half past one\n'
    )
    return path


def test_keygen_prints_a_fresh_key(capsys, isolated_env):
    assert main(["keygen"]) == ExitCode.OK
    first = capsys.readouterr()
    assert main(["keygen"]) == ExitCode.OK
    second = capsys.readouterr()
    key = first.out.strip()
    assert len(key) == 64 and int(key, 16) >= 0
    assert key != second.out.strip()
    assert "off this host" in first.err or "other than this host" in first.err


def test_keygen_append_then_refuse_then_rotate(tmp_path, capsys, isolated_env):
    env = tmp_path / "app.env"
    env.write_text("OTHER=1\n")
    assert main(["keygen", "--append-to", str(env)]) == ExitCode.OK
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    first_key = read_env_file(env)["BACKUP_ENCRYPTION_KEY"]
    assert first_key not in capsys.readouterr().out

    assert main(["keygen", "--append-to", str(env)]) == ExitCode.FAILED
    assert "--rotate" in capsys.readouterr().err
    assert read_env_file(env)["BACKUP_ENCRYPTION_KEY"] == first_key

    assert main(["keygen", "--rotate", "--append-to", str(env)]) == ExitCode.OK
    values = read_env_file(env)
    assert values["BACKUP_ENCRYPTION_KEY"] != first_key
    assert values["BACKUP_ENCRYPTION_KEY_PREVIOUS"] == first_key
    assert values["OTHER"] == "1"


def test_keygen_rotate_needs_a_file(capsys, isolated_env):
    assert main(["keygen", "--rotate"]) == ExitCode.USAGE
    assert "--append-to" in capsys.readouterr().err


def test_config_show_masks_secrets(env_file, capsys):
    assert main(["--env-file", str(env_file), "config", "show"]) == ExitCode.OK
    out = capsys.readouterr().out
    assert KEY not in out and "pg-password-value" not in out
    assert "30 1 * * *" in out
    assert main(["--env-file", str(env_file), "config", "show", "--json"]) == ExitCode.OK
    shown = json.loads(capsys.readouterr().out)
    assert shown["settings"]["BACKUP_ENCRYPTION_KEY"]["value"] == "****"
    assert shown["settings"]["BACKUP_DAILY_TIME"]["from"] == str(env_file)


def test_config_check_reports_every_problem(tmp_path, capsys, isolated_env):
    bad = tmp_path / "bad.env"
    bad.write_text("BACKUP_ENCRYPTION_KEY=abc\nBACKUP_RETENTION_DAILY=seven\n")
    assert main(["--env-file", str(bad), "config", "check"]) == ExitCode.INVALID_SETTINGS
    err = capsys.readouterr().err
    assert "BACKUP_ENCRYPTION_KEY: expected 64 hex characters, got 3" in err
    assert "BACKUP_RETENTION_DAILY" in err
    assert "2 problem(s)" in err


def test_config_check_accepts_valid_settings(env_file, capsys):
    assert main(["--env-file", str(env_file), "config", "check"]) == ExitCode.OK


def test_commands_refuse_invalid_settings(tmp_path, capsys, isolated_env):
    bad = tmp_path / "bad.env"
    bad.write_text(f"BACKUP_DIR={tmp_path / 'repo'}\nBACKUP_WEEKLY_TIME=sometimes\n")
    assert main(["--env-file", str(bad), "list"]) == ExitCode.INVALID_SETTINGS
    assert "BACKUP_WEEKLY_TIME" in capsys.readouterr().err
    assert not (tmp_path / "repo").exists()


def test_init_creates_private_layout(env_file, tmp_path, capsys):
    assert main(["--env-file", str(env_file), "init"]) == ExitCode.OK
    repo = tmp_path / "repo"
    assert stat.S_IMODE(repo.stat().st_mode) == 0o700
    assert [path.name for path in repo.iterdir()] == [".repository-id"]
    assert stat.S_IMODE((tmp_path / "catalog.sqlite3").stat().st_mode) == 0o600
    assert main(["--env-file", str(env_file), "init"]) == ExitCode.OK


def test_init_warns_without_key(tmp_path, capsys, isolated_env):
    env = tmp_path / "nokey.env"
    env.write_text(f"BACKUP_DIR={tmp_path / 'repo'}\nBACKUP_CATALOG_PATH={tmp_path / 'c.db'}\n")
    assert main(["--env-file", str(env), "init"]) == ExitCode.OK
    assert "keygen" in capsys.readouterr().err


def test_list_on_empty_catalog(env_file, capsys):
    assert main(["--env-file", str(env_file), "list"]) == ExitCode.OK
    assert "no backups yet" in capsys.readouterr().out
    assert main(["--env-file", str(env_file), "list", "--json"]) == ExitCode.OK
    assert json.loads(capsys.readouterr().out) == []


def test_verify_unknown_backup_is_not_found(env_file, capsys):
    assert main(["--env-file", str(env_file), "verify", "nope_2020-01-01_000000"]) == (
        ExitCode.NOT_FOUND
    )
    assert "jarvis-tui list" in capsys.readouterr().err


@pytest.mark.parametrize("reference", ["/nonexistent/backup.dump.gz.enc", "../x/y.enc"])
def test_verify_of_a_missing_file_is_not_found(env_file, capsys, reference):
    assert main(["--env-file", str(env_file), "verify", reference]) == ExitCode.NOT_FOUND
    err = capsys.readouterr().err
    assert reference in err and "no such artifact file" in err
