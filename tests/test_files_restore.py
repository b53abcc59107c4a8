"""`restore files`: never outside the target, overwrite policies, dry runs, full disks."""

import contextlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from engines.artifacts import write_artifact
from engines.crypto import Keyring, MasterKey
from engines.store.snapshots import FORMAT
from jarvis_tui.exit_codes import ExitCode
from tests.files_env import KEY, FilesEnv, make_files_env, random_text, tree_of


@pytest.fixture
def env(tmp_path, isolated_env) -> FilesEnv:
    return make_files_env(tmp_path / "files")


def _backed_up(env: FilesEnv) -> Path:
    (env.data / "docs").mkdir()
    (env.data / "docs/a.txt").write_text("alpha\n")
    (env.data / "docs/b.txt").write_text("beta\n")
    (env.data / "top.txt").write_text("top\n")
    assert env.cli("backup", "files") == ExitCode.OK
    return env.root / "target"


def _hostile_snapshot(env: FilesEnv, entries: list[dict]) -> Path:
    """A well-sealed manifest (made with the right key) whose paths try to escape."""
    document = {"format": FORMAT, "roots": ["x"], "key_id": "", "summary": {}, "entries": entries}
    path = env.root / "evil_snapshot.json.gz.enc"
    keyring = Keyring(MasterKey.from_hex(KEY))
    write_artifact([json.dumps(document).encode()], path, keyring, {"source": "files"})
    return path


def _file(path: str) -> list:
    return [path, "f", 0o644, 0, 0, 0, 0, 0, 0, "", 0]  # the manifest's compact entry form


def _dir(path: str) -> list:
    return [path, "d", 0o755, 0, 0, 0]


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ([_file("../escape.txt")], "contains '..'"),
        ([_dir("x"), _file("x/../../escape.txt")], "contains '..'"),
        ([_file("/etc/escape.txt")], "is absolute"),
        ([_file("x//y")], "empty or '.' segment"),
        (
            [["x", "l", 0o777, 0, 0, 0, "/"], _file("x/tmp/escape.txt")],
            "below the symlink",
        ),
        ([_file("x"), _file("x")], "twice"),
    ],
)
def test_hostile_manifests_are_refused_before_anything_is_written(env, capsys, entries, expected):
    evil = _hostile_snapshot(env, entries)
    target = env.root / "target"
    target.mkdir()
    code = env.cli("restore", "files", str(evil), "--target-dir", str(target))
    assert code == ExitCode.INTEGRITY
    assert expected in capsys.readouterr().err
    assert list(target.iterdir()) == []
    assert not (env.root / "escape.txt").exists()


def test_a_symlink_already_in_the_target_is_never_followed(env, capsys):
    target = _backed_up(env)
    outside = env.root / "outside"
    outside.mkdir()
    inside = target / str(env.data).lstrip("/")
    inside.mkdir(parents=True)
    (inside / "docs").symlink_to(outside)
    code = env.cli(
        "restore", "files", "latest", "--target-dir", str(target), "--overwrite", "always"
    )
    assert code == ExitCode.OK
    assert list(outside.iterdir()) == []
    assert (inside / "top.txt").read_text() == "top\n"
    err = capsys.readouterr().err
    assert "not a folder is in the way" in err


def test_overwrite_policies_and_the_dry_run_listing(env, capsys):
    target = _backed_up(env)
    assert env.cli("restore", "files", "latest", "--target-dir", str(target)) == ExitCode.OK
    restored = target / str(env.data).lstrip("/")
    (restored / "docs/a.txt").write_text("edited after the backup\n")  # newer on disk
    os.utime(restored / "docs/b.txt", ns=(1, 1))  # older on disk
    (restored / "top.txt").unlink()
    capsys.readouterr()

    assert env.cli("restore", "files", "latest", "--target-dir", str(target), "--dry-run") == 0
    out = capsys.readouterr().out
    assert "create    " in out and "top.txt" in out
    assert "overwrite " in out and "docs/b.txt" in out
    assert "newer on disk" in out
    assert (restored / "docs/b.txt").stat().st_mtime_ns == 1  # a dry run changes nothing
    assert not (restored / "top.txt").exists()

    assert env.cli("restore", "files", "latest", "--target-dir", str(target)) == ExitCode.OK
    assert (restored / "docs/a.txt").read_text() == "edited after the backup\n"
    assert (restored / "docs/b.txt").read_text() == "beta\n"
    assert (restored / "top.txt").read_text() == "top\n"

    code = env.cli(
        "restore", "files", "latest", "--target-dir", str(target), "--overwrite", "never"
    )
    assert code == ExitCode.OK
    assert (restored / "docs/a.txt").read_text() == "edited after the backup\n"
    code = env.cli(
        "restore", "files", "latest", "--target-dir", str(target), "--overwrite", "always"
    )
    assert code == ExitCode.OK
    assert (restored / "docs/a.txt").read_text() == "alpha\n"


def test_restore_to_the_original_location(env, capsys):
    _backed_up(env)
    (env.data / "top.txt").unlink()
    (env.data / "docs/a.txt").write_text("changed\n")
    os.utime(env.data / "docs/a.txt", ns=(10**9, 10**9))  # older than the backup
    assert env.cli("restore", "files", "latest") == ExitCode.OK
    assert (env.data / "top.txt").read_text() == "top\n"
    assert (env.data / "docs/a.txt").read_text() == "alpha\n"
    assert not [p for p in env.data.rglob("*") if "jarvis-restore" in p.name]


def test_selected_paths_and_strip_prefix(env, capsys):
    target = _backed_up(env)
    docs = str(env.data / "docs")
    code = env.cli(
        "restore", "files", "latest", docs, "--target-dir", str(target), "--strip-prefix", docs
    )
    assert code == ExitCode.OK
    assert sorted(p.name for p in target.iterdir()) == ["a.txt", "b.txt"]
    capsys.readouterr()
    missing = str(env.data / "nope")
    assert env.cli("restore", "files", "latest", missing) == ExitCode.NOT_FOUND
    assert "not in this snapshot" in capsys.readouterr().err


@contextlib.contextmanager
def _tiny_file_system(folder: Path):
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.decode().strip()})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_a_disk_that_fills_stops_cleanly_and_says_how_far_it_got(env, capsys):
    for number in range(6):
        (env.data / f"part{number}.bin").write_bytes(random_text(400_000, number))
    assert env.cli("backup", "files") == ExitCode.OK
    capsys.readouterr()
    with _tiny_file_system(env.root / "small") as small:
        (small / "keep.txt").write_text("was here before")
        code = env.cli("restore", "files", "latest", "--target-dir", str(small))
        assert code == ExitCode.NO_SPACE
        err = capsys.readouterr().err
        assert "no space left" in err and "restored" in err and "run the restore again" in err
        assert (small / "keep.txt").read_text() == "was here before"
        restored = small / str(env.data).lstrip("/")
        for path in restored.iterdir():
            assert "jarvis-restore" not in path.name  # no half-written temporary is left
            assert path.read_bytes() == (env.data / path.name).read_bytes()


def test_a_target_without_write_permission_is_refused(env):
    target = _backed_up(env)
    target.mkdir(mode=0o500)
    result = env.cli_process(
        "restore", "files", "latest", "--target-dir", str(target), drop_privileges=True
    )
    target.chmod(0o700)
    assert result.returncode == ExitCode.FAILED, result.stderr
    assert "permission denied" in result.stderr and str(target) in result.stderr
    assert list(target.iterdir()) == []


def test_a_damaged_pack_fails_the_file_and_leaves_the_old_one(env, capsys):
    target = _backed_up(env)
    assert env.cli("restore", "files", "latest", "--target-dir", str(target)) == ExitCode.OK
    restored = target / str(env.data).lstrip("/")
    before = tree_of(restored)
    pack = env.packs()[0]
    damaged = bytearray(pack.read_bytes())
    damaged[80] ^= 0x01
    pack.write_bytes(bytes(damaged))
    capsys.readouterr()
    code = env.cli(
        "restore", "files", "latest", "--target-dir", str(target), "--overwrite", "always"
    )
    assert code == ExitCode.FAILED
    assert "failed authentication" in capsys.readouterr().err
    assert tree_of(restored).keys() == before.keys()
    for key, value in before.items():
        if value[0] == "file":
            assert tree_of(restored)[key][3] == value[3]
