"""`keygen` writes `.env` atomically and keeps a `.bak`; `--rotate` refuses when the key in
effect comes from the environment; a `.env` saved with a byte-order mark is read."""

import errno
import stat
import subprocess
import sys

import pytest

from engines.dotenv import read_env_file
from jarvis_tui.exit_codes import ExitCode
from tests.support.file_systems import fill, needs_root, tmpfs
from tests.support.files_env import REPO_ROOT, child_env

OLD_KEY = "0123456789abcdef" * 4
EARLIER_KEY = "fedcba9876543210" * 4


def keygen(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "jarvis_tui.cli", "keygen", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=env or child_env(),
    )


def commented_env(size: int) -> str:
    """A well-commented `.env` of about `size` bytes holding the current and an earlier key."""
    lines = [
        f"BACKUP_ENCRYPTION_KEY={OLD_KEY}",
        f"BACKUP_ENCRYPTION_KEY_PREVIOUS={EARLIER_KEY}",
        'BACKUP_DAILY_TIME="0 2 * * *"  # 2 AM daily',
    ]
    while sum(len(line) + 1 for line in lines) < size:
        lines.append("# the operators' notes about this host and its backups, kept here")
    return "\n".join(lines) + "\n"


def test_rotation_replaces_the_file_whole_and_keeps_the_previous_one_as_bak(tmp_path, isolated_env):
    env = tmp_path / "app.env"
    env.write_text(commented_env(500))
    env.chmod(0o640)
    before = env.read_bytes()
    inode = env.stat().st_ino

    result = keygen("--rotate", "--append-to", str(env))
    assert result.returncode == ExitCode.OK, result.stderr
    values = read_env_file(env)
    assert values["BACKUP_ENCRYPTION_KEY"] not in (OLD_KEY, EARLIER_KEY)
    assert values["BACKUP_ENCRYPTION_KEY_PREVIOUS"] == f"{OLD_KEY},{EARLIER_KEY}"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    assert env.stat().st_ino != inode  # a new file renamed into place, not rewritten
    backup = env.with_name("app.env.bak")
    assert backup.read_bytes() == before
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name] == []


def test_rotate_refuses_when_the_key_in_effect_comes_from_the_environment(tmp_path, isolated_env):
    env = tmp_path / "app.env"
    env.write_text(commented_env(300))
    before = env.read_bytes()
    result = keygen(
        "--rotate",
        "--append-to",
        str(env),
        env={**child_env(), "BACKUP_ENCRYPTION_KEY": EARLIER_KEY},
    )
    assert result.returncode == ExitCode.INVALID_SETTINGS
    assert "BACKUP_ENCRYPTION_KEY" in result.stderr and "environment" in result.stderr
    assert EARLIER_KEY not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert env.read_bytes() == before
    assert not env.with_name("app.env.bak").exists()


def test_an_env_file_with_a_byte_order_mark_is_read(tmp_path, isolated_env):
    env = tmp_path / "bom.env"
    env.write_bytes(b"\xef\xbb\xbf" + commented_env(200).encode())
    assert read_env_file(env)["BACKUP_ENCRYPTION_KEY"] == OLD_KEY
    check = subprocess.run(
        [sys.executable, "-m", "jarvis_tui.cli", "--env-file", str(env), "config", "check"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=child_env(),
    )
    assert check.returncode == ExitCode.OK, check.stderr

    result = keygen("--rotate", "--append-to", str(env))
    assert result.returncode == ExitCode.OK, result.stderr
    values = read_env_file(env)
    assert values["BACKUP_ENCRYPTION_KEY_PREVIOUS"].split(",")[0] == OLD_KEY


@needs_root
def test_a_full_disk_during_rotation_leaves_the_env_file_intact(tmp_path, isolated_env):
    with tmpfs(tmp_path / "small", "64k") as small:
        env = small / ".env"
        # Just under one page: the rotated file needs a second one.
        env.write_text(commented_env(4000))
        before = env.read_bytes()
        fill(small)
        with pytest.raises(OSError) as full:
            (small / "probe").write_bytes(b"x" * 4096)
        assert full.value.errno == errno.ENOSPC
        (small / "probe").unlink()

        result = keygen("--rotate", "--append-to", str(env))
        assert result.returncode == ExitCode.NO_SPACE, result.stderr
        assert str(env) in result.stderr and "no space" in result.stderr
        assert "Traceback" not in result.stderr
        assert env.read_bytes() == before
        assert sorted(p.name for p in small.iterdir()) == [".env", "filler"]
