"""`backup secrets` / `restore secrets` and `backup config` / `restore config`."""

import io
import os
import signal
import stat
import subprocess
import tarfile

import pytest

from engines.pipeline.artifacts import write_artifact
from engines.pipeline.crypto import Keyring, MasterKey
from engines.plumbing.fsutil import TEMP_MARKER
from engines.plumbing.processes import process_start_token
from jarvis_tui.exit_codes import ExitCode
from tests.support.files_env import KEY, FilesEnv, make_files_env, sealed_backup

SECRET_VALUE = "sk-live-0123456789-very-secret"


@pytest.fixture
def env(tmp_path, isolated_env) -> FilesEnv:
    files_env = make_files_env(tmp_path / "files")
    dotenv = isolated_env.cwd / ".env"
    dotenv.write_text(f"API_TOKEN={SECRET_VALUE}\nDB_PASSWORD='p4ss word'\nPLAIN=1\n")
    return files_env


def _everything_written(env: FilesEnv) -> bytes:
    found = b""
    for path in env.root.rglob("*"):
        if path.is_file() and "data" not in path.parts:
            found += path.read_bytes()
    return found


def test_secrets_round_trip_with_force_backup_copy_and_private_mode(env, isolated_env, capsys):
    assert env.cli("backup", "secrets") == ExitCode.OK
    assert "3 variables" in capsys.readouterr().out
    assert len(list((env.repo / "secrets").glob("*.enc"))) == 1
    assert SECRET_VALUE.encode() not in _everything_written(env)  # repository, catalog, logs

    target = env.root / "restored.env"
    assert env.cli("restore", "secrets", "latest", "--to", str(target)) == ExitCode.OK
    assert target.read_text() == (isolated_env.cwd / ".env").read_text()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600

    target.write_text("API_TOKEN=rotated\nNEW_ONE=x\n")
    capsys.readouterr()
    assert env.cli("restore", "secrets", "latest", "--to", str(target)) == ExitCode.FAILED
    assert "--force" in capsys.readouterr().err
    assert target.read_text() == "API_TOKEN=rotated\nNEW_ONE=x\n"

    assert env.cli("restore", "secrets", "latest", "--to", str(target), "--force") == ExitCode.OK
    assert SECRET_VALUE in target.read_text()
    backup_copy = env.root / "restored.env.bak"
    assert backup_copy.read_text() == "API_TOKEN=rotated\nNEW_ONE=x\n"
    assert stat.S_IMODE(backup_copy.stat().st_mode) == 0o600
    assert SECRET_VALUE not in capsys.readouterr().out


def test_restore_secrets_removes_the_plaintext_temporary_a_killed_one_left(env, capsys):
    """A restore killed while writing leaves `.NAME.tmp-PID-START-*` (plaintext) beside the
    target; the next restore removes it, and never one of a process still writing."""
    assert env.cli("backup", "secrets") == ExitCode.OK
    target = env.root / "restored.env"
    killed = subprocess.Popen(["sleep", "60"])
    start = process_start_token(killed.pid)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    left = env.root / f".restored.env{TEMP_MARKER}{killed.pid}-{start}-0a0b0c0d"
    left.write_text(f"API_TOKEN={SECRET_VALUE}\n")
    live = env.root / f".restored.env{TEMP_MARKER}{os.getpid()}-{process_start_token()}-0e"
    live.write_text("being written")
    capsys.readouterr()

    assert env.cli("restore", "secrets", "latest", "--to", str(target)) == ExitCode.OK
    assert f"removed {left.name}" in capsys.readouterr().out
    assert not left.exists() and live.exists()
    assert SECRET_VALUE in target.read_text()


def test_secrets_dry_run_shows_names_and_differences_never_values(env, capsys):
    assert env.cli("backup", "secrets") == ExitCode.OK
    target = env.root / "current.env"
    target.write_text("API_TOKEN=another-value-entirely\nPLAIN=1\nEXTRA=zzz\n")
    capsys.readouterr()
    # Without --force the restore would refuse the existing file: so does its dry run.
    dry_run = env.cli("restore", "secrets", "latest", "--to", str(target), "--dry-run")
    assert dry_run == ExitCode.FAILED
    out = capsys.readouterr().out
    assert "the restore would be refused" in out and "add --force" in out
    assert "differ" in out and "API_TOKEN" in out
    assert "added" in out and "DB_PASSWORD" in out
    assert "removed" in out and "EXTRA" in out
    for value in (SECRET_VALUE, "another-value-entirely", "zzz", "p4ss"):
        assert value not in out
    assert target.read_text() == "API_TOKEN=another-value-entirely\nPLAIN=1\nEXTRA=zzz\n"


def test_a_missing_secret_file_is_a_clear_error(env, isolated_env, capsys):
    (isolated_env.cwd / ".env").unlink()
    assert env.cli("backup", "secrets") == ExitCode.NOT_FOUND
    err = capsys.readouterr().err
    assert "BACKUP_SECRET_FILES" in err and ".env" in err and "does not exist" in err
    assert not list((env.repo / "secrets").glob("*.enc"))


def _config_tree(env: FilesEnv):
    config = env.root / "app-config"
    (config / "nested").mkdir(parents=True)
    (config / "app.yaml").write_text("debug: false\n")
    (config / "nested/db.yaml").write_text("pool: 5\n")
    env.set(BACKUP_CONFIG_PATHS=str(config))
    return config


def test_config_round_trip_refuses_differences_without_force(env, capsys):
    config = _config_tree(env)
    assert env.cli("backup", "config") == ExitCode.OK
    target = env.root / "target"
    target.mkdir()
    assert env.cli("restore", "config", "latest", "--target-dir", str(target)) == ExitCode.OK
    restored = target / str(config).lstrip("/")
    assert (restored / "nested/db.yaml").read_text() == "pool: 5\n"

    (config / "app.yaml").write_text("debug: true\n")
    assert env.cli("restore", "config", "latest") == ExitCode.FAILED
    assert "--force" in capsys.readouterr().err
    assert (config / "app.yaml").read_text() == "debug: true\n"
    # The dry run foresees the refusal and exits as the restore would.
    assert env.cli("restore", "config", "latest", "--dry-run") == ExitCode.FAILED
    assert "would refuse" in capsys.readouterr().out
    assert env.cli("restore", "config", "latest", "--dry-run", "--force") == ExitCode.OK
    assert "replace   " in capsys.readouterr().out
    assert env.cli("restore", "config", "latest", "--force") == ExitCode.OK
    assert (config / "app.yaml").read_text() == "debug: false\n"
    assert (config / "app.yaml.bak").read_text() == "debug: true\n"


def test_config_entries_skipped_for_safety_are_named_and_fail_the_restore(env):
    config = _config_tree(env)
    assert env.cli("backup", "config") == ExitCode.OK
    target = env.root / "target"
    restored = target / str(config).lstrip("/")
    restored.mkdir(parents=True)
    outside = env.root / "outside"
    outside.mkdir()
    (restored / "nested").symlink_to(outside)  # a symlink where the backup has a folder
    (restored / "app.yaml").mkdir()  # a folder where the backup has a file
    result = env.cli_process("restore", "config", "latest", "--target-dir", str(target))
    assert result.returncode == ExitCode.FAILED, result.stderr
    assert "for safety" in result.stderr and "Traceback" not in result.stderr
    assert "nested/db.yaml" in result.stderr and "app.yaml" in result.stderr
    assert list(outside.iterdir()) == [] and (restored / "app.yaml").is_dir()


def test_config_restore_removes_temporaries_a_killed_restore_left(env):
    config = _config_tree(env)
    assert env.cli("backup", "config") == ExitCode.OK
    target = env.root / "target"
    restored = target / str(config).lstrip("/")
    (restored / "nested").mkdir(parents=True)
    dead = _ended_pid()
    leftover = restored / "nested" / f".db.yaml.jarvis-restore-{dead}-12345-0badcafe-0"
    leftover.write_text("half written")
    result = env.cli_process("restore", "config", "latest", "--target-dir", str(target))
    assert result.returncode == ExitCode.OK, result.stderr
    assert not leftover.exists()
    assert (restored / "nested/db.yaml").read_text() == "pool: 5\n"


def _ended_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_a_missing_config_path_is_a_clear_error(env, capsys):
    env.set(BACKUP_CONFIG_PATHS=str(env.root / "no-such-config"))
    assert env.cli("backup", "config") == ExitCode.NOT_FOUND
    assert "BACKUP_CONFIG_PATHS" in capsys.readouterr().err


def test_a_hostile_config_tarball_is_refused(env, capsys):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("../../escaped.yaml")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"evil"))
    evil = env.root / "evil_config.tar.gz.enc"
    write_artifact(
        [buffer.getvalue()], evil, Keyring(MasterKey.from_hex(KEY)), {"source": "config"}
    )
    target = env.root / "target"
    target.mkdir()
    assert (
        env.cli("restore", "config", str(evil), "--target-dir", str(target)) == ExitCode.INTEGRITY
    )
    assert "contains '..'" in capsys.readouterr().err
    assert list(target.iterdir()) == []
    assert not (env.root / "escaped.yaml").exists()


def _tarball(members: list[tuple[str, str]]) -> bytes:
    """A tarball of (name, kind) members in exactly this order: kind file, dir or a link
    target."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind in members:
            info = tarfile.TarInfo(name)
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif kind == "file":
                info.size = 4
                tar.addfile(info, io.BytesIO(b"data"))
            else:
                info.type, info.linkname = tarfile.SYMTYPE, kind
                tar.addfile(info)
    return buffer.getvalue()


FILLERS = [(f"etc/app/{number:03}.yaml", "file") for number in range(100)]


@pytest.mark.parametrize(
    ("members", "expected"),
    [
        pytest.param(
            [*FILLERS, ("etc/link/escaped.yaml", "file"), ("etc/link", "/")],
            "below the symlink",
            id="member-before-its-symlink",
        ),
        pytest.param(
            [("etc/link/a/b/deep.yaml", "file"), *FILLERS, ("etc/link/a", "dir"),
             ("etc/link", "/tmp")],
            "below the symlink",
            id="deep-members-then-symlink-last",
        ),
        pytest.param(
            [*FILLERS, ("etc/plain/inside.yaml", "file"), ("etc/plain", "file")],
            "below the file",
            id="member-below-a-file",
        ),
    ],
)  # fmt: skip
def test_a_hostile_config_tarball_in_any_order_is_refused_before_the_first_write(
    env, members, expected
):
    set_id = sealed_backup(env, "config", "tar", "config.tar", _tarball(members))
    target = env.root / "target"
    target.mkdir()
    result = env.cli_process("restore", "config", set_id, "--target-dir", str(target))
    assert result.returncode == ExitCode.INTEGRITY, result.stderr
    assert expected in result.stderr and "Traceback" not in result.stderr
    assert list(target.iterdir()) == []


def test_secrets_to_a_folder_without_write_permission_fail_cleanly(env):
    assert env.cli("backup", "secrets") == ExitCode.OK
    locked = env.root / "locked"
    locked.mkdir(mode=0o500)
    try:
        result = env.cli_process(
            "restore", "secrets", "latest", "--to", str(locked / ".env"), drop_privileges=True
        )
    finally:
        locked.chmod(0o700)
    assert result.returncode == ExitCode.FAILED, result.stderr
    assert "cannot write" in result.stderr and "Traceback" not in result.stderr
    assert SECRET_VALUE not in result.stderr + result.stdout
    assert list(locked.iterdir()) == []


def test_secrets_restore_from_a_full_backup(env, isolated_env, capsys):
    assert env.cli("backup", "full") in (ExitCode.OK, ExitCode.FAILED)  # some sources absent
    capsys.readouterr()
    target = env.root / "from-full.env"
    assert env.cli("restore", "secrets", "latest", "--to", str(target)) == ExitCode.OK
    assert SECRET_VALUE in target.read_text()


def test_config_restore_never_overwrites_a_bak_already_there(env, capsys):
    """The previous file is kept as NAME.bak, but an operator's own NAME.bak (or one the
    backup itself restores) is never written over: the previous goes to NAME.bak.2."""
    config = _config_tree(env)
    (config / "db.yaml").write_text("pool: 9\n")
    (config / "db.yaml.bak").write_text("pool: 1 (the backup's own .bak)\n")
    assert env.cli("backup", "config") == ExitCode.OK
    (config / "app.yaml").write_text("debug: true\n")
    (config / "app.yaml.bak").write_text("the operator's own copy\n")
    (config / "db.yaml").write_text("pool: 42\n")
    (config / "db.yaml.bak").unlink()  # the backup brings it back, after db.yaml
    capsys.readouterr()
    assert env.cli("restore", "config", "latest", "--force") == ExitCode.OK
    out = capsys.readouterr().out
    assert (config / "app.yaml").read_text() == "debug: false\n"
    assert (config / "app.yaml.bak").read_text() == "the operator's own copy\n"
    assert (config / "app.yaml.bak.2").read_text() == "debug: true\n"
    assert "app.yaml (the previous kept as app.yaml.bak.2)" in out
    assert (config / "db.yaml.bak").read_text() == "pool: 1 (the backup's own .bak)\n"
    assert (config / "db.yaml.bak.2").read_text() == "pool: 42\n"


def test_config_restore_with_symlinks_keeps_every_previous_and_never_follows(env, capsys):
    """A symlink as backed up was counted as differing (an unchanged config was refused); a
    file of the backup over an on-disk symlink failed half way (the dry run said replace);
    a symlink of the backup over an on-disk file lost that file, no NAME.bak kept."""
    config = _config_tree(env)
    (config / "current.yaml").symlink_to("app.yaml")
    (config / "live.yaml").symlink_to("nested/db.yaml")
    assert env.cli("backup", "config") == ExitCode.OK
    assert env.cli("restore", "config", "latest") == ExitCode.OK  # nothing differs
    outside = env.root / "passwd"
    outside.write_text("root:x:0:0\n")
    (config / "app.yaml").unlink()
    (config / "app.yaml").symlink_to(outside)  # planted where the backup has a file
    (config / "live.yaml").unlink()
    (config / "live.yaml").write_text("the operator's file\n")  # where it has a symlink
    capsys.readouterr()
    assert env.cli("restore", "config", "latest", "--force") == ExitCode.OK
    assert outside.read_text() == "root:x:0:0\n"
    assert (config / "app.yaml").read_text() == "debug: false\n"
    assert os.readlink(config / "app.yaml.bak") == str(outside)
    assert os.readlink(config / "live.yaml") == "nested/db.yaml"
    assert (config / "live.yaml.bak").read_text() == "the operator's file\n"


def test_a_restore_into_the_repository_is_refused(env, capsys):
    """The repository's every file is copied off-site by a sync: secrets, configuration or
    files restored into it would be uploaded in the clear."""
    _config_tree(env)
    assert env.cli("backup", "secrets") == ExitCode.OK
    assert env.cli("backup", "config") == ExitCode.OK
    assert env.cli("backup", "files") == ExitCode.OK
    before = sorted(env.repo.rglob("*"))
    for command in (
        ("restore", "secrets", "latest", "--to", str(env.repo / "plain.env")),
        ("restore", "config", "latest", "--target-dir", str(env.repo / "config")),
        ("restore", "files", "latest", "--target-dir", str(env.repo / "files-restored")),
    ):
        capsys.readouterr()
        assert env.cli(*command) != ExitCode.OK, command
        assert "inside the repository" in capsys.readouterr().err, command
    assert sorted(env.repo.rglob("*")) == before
