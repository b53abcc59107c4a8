"""Interrupted backups, prune, verify --read-data, export and diff of files snapshots."""

import os
import signal
import subprocess
import sys
import time

import pytest

from jarvis_tui.exit_codes import ExitCode
from tests.support.files_env import (
    REPO_ROOT,
    FilesEnv,
    child_env,
    make_files_env,
    random_text,
    tree_of,
)

# A real backup process that stops at one stage so the test can SIGKILL it exactly there.
BACKUP_UNTIL = """
import sys, time
from pathlib import Path
import engines.store.backup as backup
marker, stage, env_file = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
def pause(*args, **kwargs):
    marker.write_text(stage)
    time.sleep(120)
setattr(backup, stage, pause)
from jarvis_tui.cli import main
sys.exit(main(["--env-file", env_file, "backup", "files"]))
"""


@pytest.fixture
def env(tmp_path, isolated_env) -> FilesEnv:
    return make_files_env(tmp_path / "files")


def _kill_backup_at(env: FilesEnv, stage: str) -> None:
    marker = env.root / "reached"
    child = subprocess.Popen(
        [sys.executable, "-c", BACKUP_UNTIL, str(marker), stage, str(env.env_file)],
        cwd=REPO_ROOT,
        env=child_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert child.poll() is None, "the backup ended before reaching its stage"
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    marker.unlink()


@pytest.mark.parametrize("stage", ["write_index", "store_artifact"])
def test_sigkill_mid_backup_leaves_only_unreferenced_data_that_prune_removes(env, capsys, stage):
    (env.data / "first.txt").write_bytes(random_text(200_000, 1))
    assert env.cli("backup", "files") == ExitCode.OK
    packs_before = env.packs()
    (env.data / "second.bin").write_bytes(os.urandom(3_000_000))

    _kill_backup_at(env, stage)
    assert len(env.packs()) > len(packs_before)  # the killed run had written its packs
    assert len(env.snapshots()) == 1
    assert env.cli("verify", "latest", "--read-data") == ExitCode.OK
    target = env.root / "target"
    assert env.cli("restore", "files", "latest", "--target-dir", str(target)) == ExitCode.OK
    capsys.readouterr()

    assert env.cli("prune", "--dry-run") == ExitCode.OK
    assert "would delete 1" in capsys.readouterr().out
    assert env.cli("prune") == ExitCode.OK
    assert env.packs() == packs_before
    assert len(list((env.repo / "files/index").glob("*.idx"))) == 1
    assert not [p for p in env.repo.rglob("*") if ".tmp-" in p.name]
    assert env.cli("verify", "latest", "--read-data") == ExitCode.OK
    assert env.cli("backup", "files", "--incremental") == ExitCode.OK


def test_prune_after_retention_frees_data_and_repacks(env, capsys):
    (env.data / "kept.txt").write_bytes(random_text(900_000, 1))
    (env.data / "dropped.txt").write_bytes(random_text(900_000, 2))
    assert env.cli("backup", "files") == ExitCode.OK
    (env.data / "dropped.txt").unlink()
    (env.data / "later.bin").write_bytes(os.urandom(500_000))
    assert env.cli("backup", "files") == ExitCode.OK
    old_packs = env.packs()
    old_size = sum(p.stat().st_size for p in old_packs)
    with env.workspace() as workspace:
        oldest = workspace.catalog.list_backup_sets(kind="files")[-1]
        first = env.repo / workspace.catalog.artifacts_of(oldest.id)[0].relpath
    # What retention does to a set: its manifest and sidecar go.
    first.unlink()
    first.with_name(first.name + ".metadata.json").unlink()
    capsys.readouterr()
    assert env.cli("prune") == ExitCode.OK
    out = capsys.readouterr().out
    assert "repacked 1" in out
    assert env.packs() != old_packs
    assert sum(p.stat().st_size for p in env.packs()) < old_size
    assert env.cli("verify", "latest", "--read-data") == ExitCode.OK
    target = env.root / "target"
    assert env.cli("restore", "files", "latest", "--target-dir", str(target)) == ExitCode.OK
    restored = target / str(env.data).lstrip("/")
    assert tree_of(restored) == tree_of(env.data)


def test_verify_read_data_finds_a_flipped_bit_and_a_missing_pack(env, capsys):
    (env.data / "a.bin").write_bytes(os.urandom(300_000))
    assert env.cli("backup", "files") == ExitCode.OK
    assert env.cli("verify", "latest") == ExitCode.OK
    pack = env.packs()[0]
    original = pack.read_bytes()
    damaged = bytearray(original)
    damaged[1000] ^= 0x40
    pack.write_bytes(bytes(damaged))
    assert env.cli("verify", "latest") == ExitCode.OK  # structure alone cannot see it
    capsys.readouterr()
    assert env.cli("verify", "latest", "--read-data") == ExitCode.INTEGRITY
    assert "failed authentication" in capsys.readouterr().out
    pack.unlink()
    assert env.cli("verify", "latest") == ExitCode.INTEGRITY
    assert "is missing" in capsys.readouterr().out
    with env.workspace() as workspace:
        backup_set = workspace.catalog.get_backup_set("latest", "files")
    assert backup_set.verified_state == "failed"


def test_export_gives_a_tarball_tar_can_extract(env, capsys):
    (env.data / "sub").mkdir()
    (env.data / "sub/file.txt").write_bytes(random_text(1_500_000))
    (env.data / "empty").mkdir()
    (env.data / "link").symlink_to("sub/file.txt")
    assert env.cli("backup", "files") == ExitCode.OK
    out = env.root / "export.tar.gz"
    assert env.cli("export", "files", "latest", "--tar", str(out)) == ExitCode.OK
    extracted = env.root / "extracted"
    extracted.mkdir()
    subprocess.run(["tar", "-xzf", str(out), "-C", str(extracted)], check=True)
    assert tree_of(extracted / str(env.data).lstrip("/")).keys() == tree_of(env.data).keys()
    assert (extracted / str(env.data).lstrip("/") / "sub/file.txt").read_bytes() == (
        env.data / "sub/file.txt"
    ).read_bytes()
    capsys.readouterr()
    assert env.cli("export", "files", "latest", "--tar", str(out)) == ExitCode.FAILED
    assert "already exists" in capsys.readouterr().err


def test_diff_lists_added_removed_and_changed_paths(env, capsys):
    (env.data / "same.txt").write_text("same")
    (env.data / "gone.txt").write_text("gone")
    (env.data / "edited.txt").write_text("before")
    assert env.cli("backup", "files") == ExitCode.OK
    (env.data / "gone.txt").unlink()
    (env.data / "edited.txt").write_text("after!")
    (env.data / "new.txt").write_text("new")
    os.chmod(env.data / "same.txt", 0o600)
    assert env.cli("backup", "files") == ExitCode.OK
    with env.workspace() as workspace:
        first, second = (s.id for s in reversed(workspace.catalog.list_backup_sets(kind="files")))
    capsys.readouterr()
    assert env.cli("diff", first, second) == ExitCode.OK
    out = capsys.readouterr().out
    assert f"+ {str(env.data / 'new.txt').lstrip('/')}" in out
    assert f"- {str(env.data / 'gone.txt').lstrip('/')}" in out
    assert "edited.txt  (content" in out
    assert "same.txt  (mode 644 -> 600)" in out
    assert "1 added, 1 removed" in out
