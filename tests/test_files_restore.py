"""`restore files`: never outside the target, overwrite policies, dry runs, full disks."""

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engines.errors import IntegrityError
from engines.pipeline.artifacts import write_artifact
from engines.pipeline.crypto import Keyring, MasterKey
from engines.store.layout import SNAPSHOT_NAME
from engines.store.snapshots import DIR, FILE, FORMAT, SYMLINK, Entry, Manifest, parse_manifest
from jarvis_tui.exit_codes import ExitCode
from tests.support.file_systems import needs_root, tmpfs
from tests.support.files_env import (
    KEY,
    REPO_ROOT,
    FilesEnv,
    child_env,
    make_files_env,
    random_text,
    sealed_backup,
    tree_of,
)


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


def _entry(path: str, kind: str = FILE, target: str = "") -> Entry:
    return Entry(path, kind, 0o755 if kind == DIR else 0o644, 0, 0, 10**18, target=target)


FILLERS = [_entry(f"x/fill/{number:03}.txt") for number in range(340)]  # empty files
OUTSIDE = "/tmp/jarvis-test-outside"


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        pytest.param(
            [_entry("x", DIR), *FILLERS, _entry("x/link/escape.txt"),
             _entry("x/link", SYMLINK, OUTSIDE)],
            "below the symlink",
            id="file-before-its-symlink",
        ),
        pytest.param(
            [_entry("x/link/a/b/deep.txt"), *FILLERS, _entry("x/link/a", DIR),
             _entry("x/link", SYMLINK, OUTSIDE)],
            "below the symlink",
            id="deep-entries-then-symlink-last",
        ),
        pytest.param(
            [*FILLERS, _entry("x/link", SYMLINK, "/"), _entry("x/link/etc", DIR)],
            "below the symlink",
            id="symlink-first",
        ),
        pytest.param(
            [*FILLERS, _entry("x/plain/inside.txt"), _entry("x/plain")],
            "below the file",
            id="entry-below-a-file",
        ),
    ],
)  # fmt: skip
def test_a_hostile_manifest_in_any_order_is_refused_before_the_first_write(env, entries, expected):
    manifest = Manifest(["x"], entries, "")
    set_id = sealed_backup(env, "files", "full", SNAPSHOT_NAME, manifest.to_bytes())
    target = env.root / "target"
    target.mkdir()
    result = env.cli_process("restore", "files", set_id, "--target-dir", str(target))
    assert result.returncode == ExitCode.INTEGRITY, result.stderr
    assert expected in result.stderr and "Traceback" not in result.stderr
    assert list(target.iterdir()) == []


@st.composite
def _tree_in_any_order(draw) -> tuple[list[Entry], str | None]:
    """Entries of a random tree in a random order, and a folder that has entries below it."""
    names = st.sampled_from(["a", "b", "c", "d"])
    folders = draw(st.lists(st.lists(names, min_size=1, max_size=4), min_size=1, max_size=12))
    paths = sorted({"/".join(f[:depth]) for f in folders for depth in range(1, len(f) + 1)})
    inner = [p for p in paths if any(q.startswith(p + "/") for q in paths)]
    entries = [_entry(path, DIR) if path in inner else _entry(path + "/f.txt") for path in paths]
    return draw(st.permutations(entries)), draw(st.sampled_from(inner)) if inner else None


@settings(max_examples=80, deadline=None, derandomize=True)
@given(_tree_in_any_order())
def test_the_manifest_check_does_not_depend_on_the_order_of_entries(case):
    entries, folder = case
    parse_manifest(Manifest(["a"], entries, "").to_bytes(), "snapshot")  # a plain tree passes
    if folder is None:
        return
    hostile = [_entry(folder, SYMLINK, "/") if e.path == folder else e for e in entries]
    with pytest.raises(IntegrityError, match="below the symlink"):
        parse_manifest(Manifest(["a"], hostile, "").to_bytes(), "snapshot")


def test_a_symlink_already_in_the_target_is_never_followed(env, capsys):
    target = _backed_up(env)
    outside = env.root / "outside"
    outside.mkdir()
    inside = target / str(env.data).lstrip("/")
    inside.mkdir(parents=True)
    (inside / "docs").symlink_to(outside)
    result = env.cli_process(
        "restore", "files", "latest", "--target-dir", str(target), "--overwrite", "always"
    )
    assert list(outside.iterdir()) == []
    assert (inside / "top.txt").read_text() == "top\n"
    # Skipped for safety: the restore is incomplete, so it fails and names what it skipped.
    assert result.returncode == ExitCode.FAILED, result.stderr
    assert "not a folder is in the way" in result.stderr
    assert f"{inside}/docs" in result.stderr
    assert "for safety" in result.stderr
    dry = env.cli_process("restore", "files", "latest", "--target-dir", str(target), "--dry-run")
    assert dry.returncode == ExitCode.FAILED and "for safety" in dry.stderr + dry.stdout


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


def test_strip_prefix_without_a_target_folder_is_refused_writing_nothing(env, capsys):
    _backed_up(env)
    docs = env.data / "docs"
    before = sorted(p for p in env.data.rglob("*"))
    code = env.cli(
        "restore", "files", "latest", "--strip-prefix", str(docs), "--overwrite", "never"
    )
    assert code == ExitCode.FAILED
    err = capsys.readouterr().err
    assert f"--strip-prefix {docs} needs --target-dir" in err
    assert sorted(p for p in env.data.rglob("*")) == before


@needs_root
def test_a_disk_that_fills_stops_cleanly_and_says_how_far_it_got(env, capsys):
    for number in range(6):
        (env.data / f"part{number}.bin").write_bytes(random_text(400_000, number))
    assert env.cli("backup", "files") == ExitCode.OK
    capsys.readouterr()
    with tmpfs(env.root / "small", "1m") as small:
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


def _two_snapshots_in_two_packs(env: FilesEnv) -> tuple[Path, Path]:
    """`old.txt` in the first backup's pack, `new.txt` in the second's; (old pack, target)."""
    (env.data / "docs").mkdir()
    (env.data / "docs/old.txt").write_text("from the first backup\n")
    assert env.cli("backup", "files") == ExitCode.OK
    (first_pack,) = env.packs()
    (env.data / "new.txt").write_text("from the second backup\n")
    assert env.cli("backup", "files", "--incremental") == ExitCode.OK
    assert len(env.packs()) == 2
    return first_pack, env.root / "target"


@pytest.mark.parametrize(
    ("how", "code"),
    [("removed", ExitCode.INTEGRITY), ("unreadable", ExitCode.FAILED), ("truncated", 4)],
)
def test_a_pack_that_cannot_be_read_is_found_before_the_first_write(env, how, code):
    old_pack, target = _two_snapshots_in_two_packs(env)
    if how == "removed":
        old_pack.unlink()
    elif how == "unreadable":
        old_pack.chmod(0)
    else:
        old_pack.write_bytes(old_pack.read_bytes()[:60])  # into its first blob
    restore = ("restore", "files", "latest", "--target-dir", str(target))
    refused = env.cli_process(*restore, drop_privileges=True)
    assert refused.returncode == code, refused.stderr
    assert "docs/old.txt" in refused.stderr and "--skip-missing" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not target.exists()  # not even the target folder


def test_skip_missing_restores_the_rest_and_fails_naming_what_it_left_out(env, capsys):
    old_pack, target = _two_snapshots_in_two_packs(env)
    old_pack.unlink()
    capsys.readouterr()
    restore = ("restore", "files", "latest", "--target-dir", str(target))
    assert env.cli(*restore, "--dry-run") == ExitCode.FAILED
    out = capsys.readouterr().out
    assert "docs/old.txt" in out and "would be refused" in out
    partial = env.cli_process(*restore, "--skip-missing")
    assert partial.returncode == ExitCode.FAILED, partial.stderr
    assert "docs/old.txt" in partial.stderr and "data cannot be read" in partial.stderr
    restored = target / str(env.data).lstrip("/")
    assert (restored / "new.txt").read_text() == "from the second backup\n"
    assert not (restored / "docs/old.txt").exists()
    assert not [p for p in target.rglob("*") if "jarvis-restore" in p.name]


def test_temporaries_of_a_killed_restore_are_removed_by_the_next_one(env):
    for number in range(4):
        (env.data / f"big{number}.bin").write_bytes(os.urandom(24 * 1024 * 1024))
    assert env.cli_process("backup", "files").returncode == ExitCode.OK
    target = env.root / "target"
    restored = target / str(env.data).lstrip("/")
    argv = [*env.cli_argv(), "restore", "files", "latest", "--target-dir", str(target)]

    def temporaries() -> list[Path]:
        found = restored.iterdir() if restored.is_dir() else ()
        return [path for path in found if "jarvis-restore" in path.name]

    for _attempt in range(10):  # until the kill lands while a file is being written
        shutil.rmtree(target, ignore_errors=True)
        process = subprocess.Popen(argv, env=child_env(), cwd=REPO_ROOT, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < deadline and not temporaries():
            time.sleep(0.001)
        process.kill()
        process.communicate()
        if temporaries():
            break
    assert temporaries(), "the restore was never caught writing a file"

    again = env.cli_process("restore", "files", "latest", "--target-dir", str(target))
    assert again.returncode == ExitCode.OK, again.stderr
    assert "temporar" in again.stdout + again.stderr
    assert not [p for p in target.rglob("*") if "jarvis-restore" in p.name]
    for number in range(4):
        name = f"big{number}.bin"
        assert (restored / name).read_bytes() == (env.data / name).read_bytes()
