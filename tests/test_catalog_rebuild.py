"""`catalog rebuild` against a real repository, the CLI in processes of its own."""

import json
from pathlib import Path

import pytest

from engines.pipeline.artifacts import sidecar_path_for
from jarvis_tui.exit_codes import ExitCode
from tests.support.files_env import FilesEnv, make_secrets_env


@pytest.fixture
def env(tmp_path, isolated_env) -> FilesEnv:
    return make_secrets_env(tmp_path / "files")


def fresh_catalog(env: FilesEnv) -> None:
    """As on a new host: no catalog at all."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{env.root / 'catalog.sqlite3'}{suffix}").unlink(missing_ok=True)


def listed(env: FilesEnv) -> dict[str, dict]:
    listing = env.cli_process("list", "--json")
    assert listing.returncode == ExitCode.OK, listing.stderr
    return {s["id"]: s for s in json.loads(listing.stdout)}


@pytest.mark.parametrize("catalog", ["kept", "fresh"])
def test_a_forged_sidecar_is_reported_and_never_names_a_restore_target(env, catalog):
    assert env.cli_process("backup", "secrets").returncode == ExitCode.OK
    [set_id] = listed(env)
    [artifact] = (env.repo / "secrets").glob("*.enc")
    victim = env.root / "victim.txt"
    victim.write_text("precious\n")
    sidecar = sidecar_path_for(artifact)
    forged = json.loads(sidecar.read_text())
    forged["original_path"] = str(victim)  # edited without the key
    sidecar.write_text(json.dumps(forged))
    if catalog == "fresh":
        fresh_catalog(env)

    rebuild = env.cli_process("catalog", "rebuild")
    assert rebuild.returncode == ExitCode.INTEGRITY, rebuild.stderr
    assert "sidecar ignored" in rebuild.stderr and "original_path" in rebuild.stderr
    assert "imported 1 artifact(s)" in rebuild.stdout

    (env.root / "app.env").write_text("API_TOKEN=changed\n")
    restore = env.cli_process("restore", "secrets", set_id, "--force")
    assert restore.returncode == ExitCode.OK, restore.stderr
    assert victim.read_text() == "precious\n"
    assert (env.root / "app.env").read_text() == "API_TOKEN=first\n"


def test_a_partial_set_stays_partial_on_a_fresh_catalog(env):
    env.set(BACKUP_CONFIG_PATHS=str(env.root / "no-such-folder"))
    full = env.cli_process("backup", "full")
    assert full.returncode != ExitCode.OK
    [(set_id, before)] = listed(env).items()
    assert before["status"] == "partial"

    for _ in range(2):  # the catalog as it was, then none at all
        rebuild = env.cli_process("catalog", "rebuild")
        assert rebuild.returncode == ExitCode.OK, rebuild.stderr
        after = listed(env)[set_id]
        assert after["status"] == "partial"
        assert sorted(a["source"] for a in after["artifacts"]) == ["files", "secrets"]
        fresh_catalog(env)


def test_a_failed_set_stays_failed_and_rows_of_vanished_files_go(env):
    for _ in range(2):
        assert env.cli_process("backup", "secrets").returncode == ExitCode.OK
    failed_id, gone_id = sorted(listed(env))
    with env.workspace() as workspace:  # the first one failed, say its read-back
        [artifact] = workspace.catalog.artifacts_of(failed_id)
        workspace.catalog.fail_artifact(artifact.id, "read-back failed")
        workspace.catalog.finish_backup_set(failed_id, "failed", "read-back failed")
        [vanished] = workspace.catalog.artifacts_of(gone_id)
    path = env.repo / vanished.relpath
    path.unlink()
    sidecar_path_for(path).unlink()

    rebuild = env.cli_process("catalog", "rebuild")
    assert rebuild.returncode == ExitCode.OK, rebuild.stderr
    assert f"dropped: {vanished.relpath}" in rebuild.stdout
    after = listed(env)
    assert list(after) == [failed_id]
    assert after[failed_id]["status"] == "failed"
    assert [a["status"] for a in after[failed_id]["artifacts"]] == ["failed"]
    restore = env.cli_process("restore", "secrets", "latest", "--to", str(env.root / "x.env"))
    assert restore.returncode == ExitCode.NOT_FOUND


def test_an_artifact_named_by_path_takes_its_restore_target_from_sealed_metadata(env):
    assert env.cli_process("backup", "secrets").returncode == ExitCode.OK
    [artifact] = (env.repo / "secrets").glob("*.enc")
    victim = env.root / "victim.txt"
    victim.write_text("precious\n")
    sidecar = sidecar_path_for(artifact)
    forged = json.loads(sidecar.read_text())
    forged["original_path"] = str(victim)
    sidecar.write_text(json.dumps(forged))
    fresh_catalog(env)  # the catalog does not know the file: only the file itself speaks

    (env.root / "app.env").write_text("API_TOKEN=changed\n")
    restore = env.cli_process("restore", "secrets", str(artifact), "--force")
    assert restore.returncode == ExitCode.OK, restore.stderr
    assert victim.read_text() == "precious\n"
    assert (env.root / "app.env").read_text() == "API_TOKEN=first\n"


def test_a_rebuild_from_an_empty_or_missing_folder_changes_nothing(env):
    assert env.cli_process("backup", "secrets").returncode == ExitCode.OK
    before = listed(env)
    empty = env.root / "unmounted"
    empty.mkdir()
    for folder in (empty, env.root / "missing"):
        env.set(BACKUP_DIR=str(folder))
        rebuild = env.cli_process("catalog", "rebuild")
        assert rebuild.returncode == ExitCode.NOT_FOUND
        assert str(folder) in rebuild.stderr and "not changed" in rebuild.stderr
        assert listed(env) == before
    assert not (env.root / "missing").exists()
