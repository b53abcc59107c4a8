"""Configured paths that do not exist (an unmounted disk, a typo): what exists is backed up,
the missing ones are named and alerted, and the command exits 1; in `backup full` the part
is done with warnings and the set is `partial`. Each step runs the real CLI in a process."""

import json
import tarfile

import pytest

from engines.pipeline.artifacts import open_artifact_plain
from jarvis_tui.exit_codes import ExitCode
from tests.support.files_env import FilesEnv, make_files_env


@pytest.fixture
def env(tmp_path, isolated_env) -> FilesEnv:
    return make_files_env(tmp_path / "files")


def _open_alerts(env: FilesEnv, prefix: str) -> list:
    with env.workspace() as workspace:
        return workspace.catalog.open_conditions(prefix)


def _config_members(env: FilesEnv, set_id: str) -> list[str]:
    with env.workspace() as workspace:
        [artifact] = workspace.catalog.artifacts_of(set_id)
        path = workspace.repository.path_for(artifact.relpath)
        with (
            open_artifact_plain(path, workspace.keyring()) as plain,
            tarfile.open(fileobj=plain, mode="r|") as tar,
        ):
            return [member.name for member in tar]


def test_backup_full_with_a_missing_folder_is_partial_exits_1_and_alerts(env):
    (env.data / "kept.txt").write_text("backed up although another folder is missing")
    config = env.root / "config"
    config.mkdir()
    (config / "app.yaml").write_text("workers: 4\n")
    secrets = env.root / "app.env"
    secrets.write_text("API_TOKEN=abc\n")
    nowhere = env.root / "nowhere"
    env.set(
        BACKUP_FILE_PATHS=f"{env.data},{nowhere}",
        BACKUP_CONFIG_PATHS=str(config),
        BACKUP_SECRET_FILES=str(secrets),
    )

    result = env.cli_process("backup", "full", "--json")
    assert result.returncode == ExitCode.FAILED, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    report = json.loads(result.stdout)
    assert report["status"] == "partial"
    parts = {part["source"]: part for part in report["parts"]}
    assert parts["files"]["state"] == "warning" and parts["files"]["artifacts"]
    assert str(nowhere) in parts["files"]["detail"]
    assert parts["config"]["state"] == parts["secrets"]["state"] == "ok"
    (alert,) = _open_alerts(env, "backup_paths_missing:")
    assert alert.kind == "backup_paths_missing:files" and str(nowhere) in alert.message
    assert _open_alerts(env, "backup_failure:") == []
    with env.workspace() as workspace:
        backup_set = workspace.catalog.get_backup_set(report["id"])
        assert backup_set.status == "partial" and str(nowhere) in backup_set.error
        assert "files: warning" in backup_set.note

    listing = env.cli_process("list")
    assert report["id"] in listing.stdout and "partial" in listing.stdout, listing.stdout
    shown = env.cli_process("backup", "full")  # the plain report names it too
    assert shown.returncode == ExitCode.FAILED and "warning" in shown.stdout, shown.stdout
    assert str(nowhere) in shown.stdout + shown.stderr

    nowhere.mkdir()  # found again: complete, exit 0, the alert cleared
    result = env.cli_process("backup", "full", "--json")
    assert result.returncode == ExitCode.OK, result.stdout + result.stderr
    assert json.loads(result.stdout)["status"] == "complete"
    assert _open_alerts(env, "backup_paths_missing:") == []


def test_a_missing_config_path_is_named_alerted_and_the_others_backed_up(env):
    config = env.root / "config"
    config.mkdir()
    (config / "app.yaml").write_text("workers: 4\n")
    gone = env.root / "gone.yaml"
    env.set(BACKUP_CONFIG_PATHS=f"{config},{gone}")

    result = env.cli_process("backup", "config")
    assert result.returncode == ExitCode.FAILED, result.stdout + result.stderr
    assert str(gone) in result.stderr and "does not exist" in result.stderr
    assert "Traceback" not in result.stderr
    with env.workspace() as workspace:
        [backup_set] = workspace.catalog.list_backup_sets(kind="config")
        [artifact] = workspace.catalog.artifacts_of(backup_set.id)
        assert artifact.metadata["missing"] == [str(gone)]
    assert str(config / "app.yaml").lstrip("/") in _config_members(env, backup_set.id)
    (alert,) = _open_alerts(env, "backup_paths_missing:")
    assert alert.kind == "backup_paths_missing:config" and alert.severity == "critical"
    assert str(gone) in alert.message and "BACKUP_CONFIG_PATHS" in alert.message

    # Every path missing: a clear failure naming each, nothing stored.
    elsewhere = env.root / "elsewhere"
    env.set(BACKUP_CONFIG_PATHS=f"{gone},{elsewhere}")
    result = env.cli_process("backup", "config")
    assert result.returncode == ExitCode.NOT_FOUND, result.stdout + result.stderr
    assert "BACKUP_CONFIG_PATHS" in result.stderr and "Traceback" not in result.stderr
    assert str(gone) in result.stderr and str(elsewhere) in result.stderr
    assert len(list((env.repo / "config").glob("*.enc"))) == 1

    gone.write_text("found again\n")  # every path there: exit 0 and the alert cleared
    env.set(BACKUP_CONFIG_PATHS=f"{config},{gone}")
    result = env.cli_process("backup", "config")
    assert result.returncode == ExitCode.OK, result.stdout + result.stderr
    assert _open_alerts(env, "backup_paths_missing:") == []
