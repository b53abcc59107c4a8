"""Chunk ids under a versioned derivation: new snapshots name their chunks with the
`CHUNK_ID_KEY_V2` key and say so in their manifest; a snapshot made before (v1, the
HKDF `info` shared with v1 containers) still verifies, restores and drills, and an
incremental backup never reuses chunk lists named under another derivation.

The v1 snapshot is written by the real `backup files` with the writer's derivation
set back to v1, as the release before this one wrote it.
"""

import json
import os

import pytest

from engines.errors import IntegrityError
from engines.pipeline.artifacts import read_artifact_whole
from engines.pipeline.crypto import MasterKey
from engines.store import backup as backup_module
from engines.store.keys import CHUNK_IDS_V1, CHUNK_IDS_V2, _label, store_keys
from engines.store.snapshots import Manifest, load_manifest, parse_manifest
from jarvis_tui.exit_codes import ExitCode
from tests.support.files_env import KEY, FilesEnv, make_files_env, random_text, tree_of

MASTER = MasterKey.from_hex(KEY)


@pytest.fixture
def env(tmp_path, isolated_env) -> FilesEnv:
    return make_files_env(tmp_path / "files")


def _populate(data) -> None:
    (data / "docs").mkdir()
    (data / "docs/notes.txt").write_bytes(random_text(30_000, seed=3))
    (data / "docs/big.bin").write_bytes(random_text(3 * 1024 * 1024, seed=5))
    (data / "small.txt").write_text("one chunk\n")
    (data / "link").symlink_to("docs/notes.txt")


def _latest(env: FilesEnv) -> tuple[Manifest, dict]:
    with env.workspace() as workspace:
        backup_set = workspace.catalog.get_backup_set("latest", "files")
        artifact = workspace.catalog.artifacts_of(backup_set.id)[0]
        path = workspace.repository.path_for(artifact.relpath)
        document = json.loads(read_artifact_whole(path, workspace.keyring()))
        return load_manifest(path, workspace.keyring()), document


def _small_file_id(manifest: Manifest) -> bytes:
    (entry,) = [e for e in manifest.entries if e.path.endswith("small.txt")]
    (chunk_id,) = entry.chunk_ids()
    return chunk_id


def _backup_v1(env: FilesEnv, monkeypatch) -> None:
    with monkeypatch.context() as patch:
        patch.setattr(backup_module, "CHUNK_ID_VERSION", CHUNK_IDS_V1)
        assert env.cli("backup", "files") == ExitCode.OK


def _verifies_and_restores(env: FilesEnv, name: str) -> None:
    verified = env.cli_process("verify", "latest", "--read-data")
    assert verified.returncode == ExitCode.OK, verified.stdout + verified.stderr
    target = env.root / name
    restored = env.cli_process("restore", "files", "latest", "--target-dir", str(target))
    assert restored.returncode == ExitCode.OK, restored.stdout + restored.stderr
    assert tree_of(target / str(env.data).lstrip("/")) == tree_of(env.data)


def test_chunk_ids_differ_between_derivations_and_v2_is_no_v1_container_key():
    data = b"the same plaintext"
    v1, v2 = store_keys(MASTER, CHUNK_IDS_V1), store_keys(MASTER, CHUNK_IDS_V2)
    assert v1.chunk_id(data) != v2.chunk_id(data)
    assert store_keys(MASTER).chunk_id(data) == v2.chunk_id(data)  # v2 is what new ones use
    # A forged v1 container header naming the chunk-id salt derives v1's HMAC key, never v2's.
    assert MASTER.derive_artifact_key(_label("chunk id")) == v1.chunk_id_key
    assert v2.chunk_id_key != v1.chunk_id_key
    assert MASTER.derive_artifact_key(_label("gear table")) != v2.gear_seed
    assert v1.gear_seed == v2.gear_seed  # boundaries use the one current table


def test_a_manifest_naming_an_unknown_derivation_is_refused():
    document = json.loads(Manifest(["a"], [], KEY[:16]).to_bytes())
    document["chunk_id_version"] = 3
    with pytest.raises(IntegrityError, match="chunk-id derivation 3"):
        parse_manifest(json.dumps(document).encode(), "snapshot")
    del document["chunk_id_version"]  # written before versions existed: v1
    assert parse_manifest(json.dumps(document).encode(), "s").chunk_id_version == CHUNK_IDS_V1


def test_a_new_snapshot_records_v2_and_verifies(env):
    _populate(env.data)
    assert env.cli("backup", "files") == ExitCode.OK
    manifest, document = _latest(env)
    assert document["chunk_id_version"] == CHUNK_IDS_V2 == manifest.chunk_id_version
    assert _small_file_id(manifest) == store_keys(MASTER, CHUNK_IDS_V2).chunk_id(b"one chunk\n")
    _verifies_and_restores(env, "restored")


def test_a_v1_snapshot_still_verifies_restores_and_drills(env, monkeypatch):
    _populate(env.data)
    _backup_v1(env, monkeypatch)
    manifest, document = _latest(env)
    assert document["chunk_id_version"] == CHUNK_IDS_V1 == manifest.chunk_id_version
    assert _small_file_id(manifest) == store_keys(MASTER, CHUNK_IDS_V1).chunk_id(b"one chunk\n")
    _verifies_and_restores(env, "restored")
    drilled = env.cli_process("drill")
    assert drilled.returncode == ExitCode.OK, drilled.stdout + drilled.stderr
    assert "every chunk re-hashed" in drilled.stdout + drilled.stderr


def test_an_incremental_over_a_v1_parent_reads_every_file_and_verifies(env, monkeypatch):
    _populate(env.data)
    _backup_v1(env, monkeypatch)
    assert env.cli("backup", "files", "--incremental") == ExitCode.OK
    manifest, document = _latest(env)
    assert document["summary"]["files_read"] == 3  # nothing reused from the v1 parent
    assert manifest.chunk_id_version == CHUNK_IDS_V2
    assert _small_file_id(manifest) == store_keys(MASTER, CHUNK_IDS_V2).chunk_id(b"one chunk\n")
    _verifies_and_restores(env, "restored")
    # The next incremental has a v2 parent: only the file touched since is read.
    os.utime(env.data / "small.txt", ns=(1_600_000_000_000_000_000,) * 2)
    assert env.cli("backup", "files", "--incremental") == ExitCode.OK
    assert _latest(env)[1]["summary"]["files_read"] == 1
