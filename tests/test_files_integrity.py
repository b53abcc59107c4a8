"""The files store's integrity against damaged, swapped and replayed objects, and key rotation.

Each scenario runs the real CLI in its own process for the step under test.
"""

import os
import shutil
from pathlib import Path

import pytest

from engines.store.packs import FOOTER, HEADER_SIZE
from jarvis_tui.exit_codes import ExitCode
from tests.support.files_env import FilesEnv, make_files_env, random_text


@pytest.fixture
def env(tmp_path, isolated_env) -> FilesEnv:
    return make_files_env(tmp_path / "files")


def _stored_objects(env: FilesEnv) -> dict[str, bytes]:
    """Every pack and index file, by path: what a refused prune must leave as it was."""
    found = {}
    for folder in ("packs", "index"):
        for path in sorted((env.repo / "files" / folder).rglob("*")):
            if path.is_file():
                found[str(path.relative_to(env.repo))] = path.read_bytes()
    return found


def _snapshot_ids(env: FilesEnv) -> list[str]:
    with env.workspace() as workspace:
        return [s.id for s in workspace.catalog.list_backup_sets(kind="files")]


def _files_lost(env: FilesEnv, snapshot: str, originals: dict[str, bytes]) -> int:
    """How many of the snapshot's files do not come back byte for byte."""
    target = env.root / f"restored-{snapshot}"
    shutil.rmtree(target, ignore_errors=True)
    env.cli("restore", "files", snapshot, "--target-dir", str(target))
    restored = target / str(env.data).lstrip("/")
    lost = 0
    for name, content in originals.items():
        path = restored / name
        if not path.is_file() or path.read_bytes() != content:
            lost += 1
    return lost


def _two_snapshots(env: FilesEnv, count: int) -> tuple[dict[str, bytes], dict[str, bytes], Path]:
    """Two backups of `count` small files each, the second sharing half of the first's;
    their files, and the pack the first one wrote."""
    first = {f"f{i:03}.txt": random_text(2_000 + 97 * i, i) for i in range(count)}
    for name, content in first.items():
        (env.data / name).write_bytes(content)
    assert env.cli("backup", "files") == ExitCode.OK
    (first_pack,) = env.packs()
    second = dict(list(first.items())[count // 2 :])
    for name in list(first)[: count // 2]:
        (env.data / name).unlink()
    for i in range(count, count + count // 2):
        second[f"f{i:03}.txt"] = random_text(2_000 + 97 * i, i)
        (env.data / f"f{i:03}.txt").write_bytes(second[f"f{i:03}.txt"])
    assert env.cli("backup", "files") == ExitCode.OK
    return first, second, first_pack


def _damage(pack: Path, how: str) -> None:
    data = bytearray(pack.read_bytes())
    if how == "appended byte":
        data += b"\0"
    elif how == "trailer bit":
        data[len(data) - FOOTER.size - 20] ^= 0x01
    else:  # a bit inside the first blob
        data[HEADER_SIZE + 30] ^= 0x10
    pack.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["appended byte", "trailer bit", "blob bit"])
def test_damaged_pack_fails_verify_prune_refuses_and_repair_salvages(env, how):
    """The issue's trial at small scale: damage, then prune, then every file restored."""
    first, second, shared_pack = _two_snapshots(env, 60)  # the second uses half of its pack
    older, newer = sorted(_snapshot_ids(env))
    _damage(shared_pack, how)
    damaged_bytes = shared_pack.read_bytes()

    assert env.cli("verify", older, "--read-data") == ExitCode.INTEGRITY

    before = _stored_objects(env)
    pruned = env.cli_process("prune")
    assert pruned.returncode == ExitCode.INTEGRITY, pruned.stdout + pruned.stderr
    assert "nothing was deleted" in pruned.stderr and "jarvis-tui repair" in pruned.stderr
    assert _stored_objects(env) == before

    kept = [(older, first), (newer, second)]
    if how == "trailer bit":  # the weekly cleanup runs prune, which refuses there too
        kept = kept[1:]  # retention keeps one snapshot a day: it deletes the older one
        cleaned = env.cli_process("cleanup")
        # Damage is exit 4, as prune's own, after the retention it did is reported.
        assert cleaned.returncode == ExitCode.INTEGRITY, cleaned.stdout + cleaned.stderr
        assert "prune refused" in cleaned.stderr and "jarvis-tui repair" in cleaned.stderr
        assert older in cleaned.stdout and "1 set(s) deleted" in cleaned.stdout
        assert "Traceback" not in cleaned.stderr
    else:
        dry = env.cli_process("repair", "--dry-run")
        assert "would salvage" in dry.stdout, dry.stdout + dry.stderr
    assert _stored_objects(env) == before

    repaired = env.cli_process("repair")
    assert shared_pack.stem in repaired.stderr, repaired.stdout + repaired.stderr
    aside = env.repo / "files/damaged" / shared_pack.name
    assert aside.read_bytes() == damaged_bytes and not shared_pack.exists()  # moved aside
    assert oct(aside.stat().st_mode & 0o777) == "0o600"
    if how == "blob bit":
        # One chunk no longer authenticates: its file is named, and the next backup,
        # which finds the file unchanged on disk, stores that chunk again.
        assert repaired.returncode == ExitCode.INTEGRITY, repaired.stdout + repaired.stderr
        assert "still affected" in repaired.stdout and "f0" in repaired.stdout
        for name, content in first.items():
            (env.data / name).write_bytes(content)
        assert env.cli("backup", "files") == ExitCode.OK
    else:
        assert repaired.returncode == ExitCode.OK, repaired.stdout + repaired.stderr
        assert "0 lost" in repaired.stdout

    assert env.cli("prune") == ExitCode.OK
    for snapshot, _ in kept:
        assert env.cli("verify", snapshot, "--read-data") == ExitCode.OK
    assert sum(_files_lost(env, snapshot, files) for snapshot, files in kept) == 0


def test_a_trailer_swapped_between_two_packs_of_one_run_is_detected(env):
    (env.data / "big.bin").write_bytes(os.urandom(9 * 1024 * 1024))  # two packs in one run
    for i in range(20):
        (env.data / f"t{i}.txt").write_bytes(random_text(5_000, i))
    assert env.cli("backup", "files") == ExitCode.OK
    originals = {p.name: p.read_bytes() for p in env.data.iterdir()}
    first, second = env.packs()
    a, b = first.read_bytes(), second.read_bytes()
    a_trailer = int.from_bytes(a[-FOOTER.size :], "big") + FOOTER.size
    b_trailer = int.from_bytes(b[-FOOTER.size :], "big") + FOOTER.size
    first.write_bytes(a[:-a_trailer] + b[-b_trailer:])
    second.write_bytes(b[:-b_trailer] + a[-a_trailer:])

    verified = env.cli_process("verify", "latest", "--read-data")
    assert verified.returncode == ExitCode.INTEGRITY, verified.stdout + verified.stderr
    assert "trailer" in verified.stdout
    before = _stored_objects(env)
    pruned = env.cli_process("prune")
    assert pruned.returncode == ExitCode.INTEGRITY, pruned.stdout + pruned.stderr
    assert _stored_objects(env) == before  # no live pack deleted

    repaired = env.cli_process("repair")
    assert repaired.returncode == ExitCode.OK, repaired.stdout + repaired.stderr
    assert env.cli("prune") == ExitCode.OK
    assert _files_lost(env, "latest", originals) == 0


def test_a_replayed_pre_prune_index_does_not_make_an_unrestorable_backup(env):
    kept = random_text(40_000, 1)
    (env.data / "kept.txt").write_bytes(kept)
    gone = os.urandom(200_000)
    (env.data / "gone.bin").write_bytes(gone)
    assert env.cli("backup", "files") == ExitCode.OK
    old_indexes = {p.name: p.read_bytes() for p in (env.repo / "files/index").glob("*.idx")}
    (env.data / "gone.bin").unlink()
    assert env.cli("backup", "files") == ExitCode.OK
    with env.workspace() as workspace:
        oldest = workspace.catalog.list_backup_sets(kind="files")[-1]
        manifest = env.repo / workspace.catalog.artifacts_of(oldest.id)[0].relpath
    manifest.unlink()  # what retention does to a set
    manifest.with_name(manifest.name + ".metadata.json").unlink()
    assert env.cli("prune") == ExitCode.OK  # deletes gone.bin's pack

    for name, content in old_indexes.items():  # an attacker, or a stale copy, puts them back
        (env.repo / "files/index" / name).write_bytes(content)
    (env.data / "gone.bin").write_bytes(gone)
    backed_up = env.cli_process("backup", "files")
    assert backed_up.returncode == ExitCode.OK, backed_up.stdout + backed_up.stderr
    assert "new data 0 B" not in backed_up.stdout
    assert env.cli("verify", "latest", "--read-data") == ExitCode.OK
    assert _files_lost(env, "latest", {"kept.txt": kept, "gone.bin": gone}) == 0


def test_key_rotation_keeps_files_backups_working(env):
    (env.data / "old.txt").write_bytes(random_text(300_000, 3))
    assert env.cli("backup", "files") == ExitCode.OK
    old_files = {"old.txt": (env.data / "old.txt").read_bytes()}
    (old_snapshot,) = _snapshot_ids(env)

    assert env.cli("keygen", "--rotate", "--append-to", str(env.env_file)) == ExitCode.OK
    (env.data / "new.txt").write_bytes(random_text(100_000, 4))
    backed_up = env.cli_process("backup", "files", "--incremental")
    assert backed_up.returncode == ExitCode.OK, backed_up.stdout + backed_up.stderr
    all_files = {**old_files, "new.txt": (env.data / "new.txt").read_bytes()}
    assert env.cli("verify", old_snapshot, "--read-data") == ExitCode.OK
    assert _files_lost(env, old_snapshot, old_files) == 0

    # Without the old key new backups go on, and what needs it names the variable to set.
    rotated_env = env.env_file.read_text()
    env.env_file.write_text(
        "".join(line + "\n" for line in rotated_env.splitlines() if "_PREVIOUS" not in line)
    )
    (env.data / "newer.txt").write_bytes(random_text(50_000, 5))
    all_files["newer.txt"] = (env.data / "newer.txt").read_bytes()
    backed_up = env.cli_process("backup", "files", "--incremental")
    assert backed_up.returncode == ExitCode.OK, backed_up.stdout + backed_up.stderr
    assert _files_lost(env, "latest", all_files) == 0
    for command in (
        ("restore", "files", old_snapshot, "--target-dir", str(env.root / "without-old-key")),
        ("prune",),
    ):
        refused = env.cli_process(*command)
        assert refused.returncode == ExitCode.KEY_MISSING, refused.stdout + refused.stderr
        assert "BACKUP_ENCRYPTION_KEY_PREVIOUS" in refused.stderr

    env.env_file.write_text(rotated_env)
    assert env.cli("prune") == ExitCode.OK
    assert _files_lost(env, old_snapshot, old_files) == 0
    assert _files_lost(env, "latest", all_files) == 0


def test_a_lost_pack_is_stored_again_by_the_next_backup(env):
    content = os.urandom(200_000)
    (env.data / "a.bin").write_bytes(content)
    assert env.cli("backup", "files") == ExitCode.OK
    (lost_pack,) = env.packs()
    lost_pack.unlink()

    backed_up = env.cli_process("backup", "files", "--incremental")
    assert backed_up.returncode == ExitCode.OK, backed_up.stdout + backed_up.stderr
    assert "new data 0 B" not in backed_up.stdout
    assert env.cli("verify", "latest", "--read-data") == ExitCode.OK
    assert _files_lost(env, "latest", {"a.bin": content}) == 0


def test_a_snapshot_named_by_key_or_file_is_checked_without_its_catalog_row(env):
    content = os.urandom(50_000)
    (env.data / "a.bin").write_bytes(content)
    assert env.cli("backup", "files") == ExitCode.OK
    (manifest,) = env.snapshots()
    key = f"files/{manifest.name}"
    for name in ("catalog.sqlite3", "catalog.sqlite3-wal", "catalog.sqlite3-shm"):
        (env.root / name).unlink(missing_ok=True)  # the catalog lost: only the repository

    assert env.cli("verify", key, "--read-data") == ExitCode.OK
    target = env.root / "restored"
    assert env.cli("restore", "files", key, "--target-dir", str(target)) == ExitCode.OK
    assert (target / str(env.data).lstrip("/") / "a.bin").read_bytes() == content
    (pack,) = env.packs()
    pack.unlink()
    assert env.cli("verify", key) == ExitCode.INTEGRITY  # its chunks are checked too
    assert env.cli("verify", str(manifest)) == ExitCode.INTEGRITY
