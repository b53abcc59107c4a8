"""Restores read only the artifact asked for: identity, recorded key, old formats, rekey.

Genuine artifacts of other backups are copied under a backup's name, as someone with
the repository (but not the key) could; the real CLI, in its own process, must refuse
them with exit 4 naming both, before it changes anything.
"""

import functools
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engines.actions import rekey as rekey_action
from engines.pipeline import artifacts
from engines.pipeline.artifacts import (
    SEALED_ONLY_FIELDS,
    artifact_identity,
    read_sealed_metadata,
    sidecar_path_for,
)
from engines.pipeline.crypto import Keyring, MasterKey, generate_key_hex
from engines.repository import artifacts as repository_artifacts
from engines.repository import stored
from engines.repository.repository_id import read_repository_id
from jarvis_tui.exit_codes import ExitCode
from tests.support.files_env import REPO_ROOT, child_env
from tests.support.pg_seed import KEY, PgCase

DOTENV = "API_TOKEN=sk-live-identity-test\nDB_PASSWORD=hunter2\n"


class Everything:
    """One repository with PostgreSQL, Redis, files, secrets and config configured."""

    def __init__(self, tmp_path: Path, pg: PgCase, redis_url: str):
        self.tmp_path = tmp_path
        self.pg = pg
        self.env_file = pg.env_file
        self.data = tmp_path / "data"
        self.data.mkdir()
        (self.data / "song.txt").write_text("la la la\n")
        self.dotenv = tmp_path / "app.env"
        self.dotenv.write_text(DOTENV)
        self.conf = tmp_path / "conf"
        self.conf.mkdir()
        (self.conf / "nginx.conf").write_text("server { listen 80; }\n")
        self.base = pg.env_file.read_text()
        self.extra = {
            "REDIS_URL": redis_url,
            "BACKUP_FILE_PATHS": str(self.data),
            "BACKUP_SECRET_FILES": str(self.dotenv),
            "BACKUP_CONFIG_PATHS": str(self.conf),
        }
        self.keys(KEY)

    def keys(self, current: str, *previous: str) -> None:
        lines = {**self.extra, "BACKUP_ENCRYPTION_KEY": current}
        if previous:
            lines["BACKUP_ENCRYPTION_KEY_PREVIOUS"] = ",".join(previous)
        base = [ln for ln in self.base.splitlines() if not ln.startswith("BACKUP_ENCRYPTION")]
        self.env_file.write_text("\n".join([*base, *(f"{k}={v}" for k, v in lines.items())]))

    def backup(self, kind: str) -> str:
        assert self.pg.cli("backup", kind) == ExitCode.OK
        with self.pg.workspace() as workspace:
            return workspace.catalog.get_backup_set("latest", kind).id

    def artifact(self, set_id: str, mode: str | None = None) -> Path:
        with self.pg.workspace() as workspace:
            rows = [
                a for a in workspace.catalog.artifacts_of(set_id) if mode is None or a.mode == mode
            ]
            return workspace.repository.path_for(rows[0].relpath)

    def run(self, *args: str) -> subprocess.CompletedProcess:
        argv = [sys.executable, "-m", "jarvis_tui.cli", "--env-file", str(self.env_file), *args]
        return subprocess.run(
            argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, env=child_env()
        )


@pytest.fixture
def world(tmp_path, isolated_env, postgres_server, redis_server):
    redis_server.flush()
    client = redis_server.client()
    client.config_set("repl-diskless-sync-delay", 0)
    client.set("greeting", "hello")
    client.rpush("queue", "a", "b")
    case = PgCase(postgres_server, tmp_path)
    yield Everything(tmp_path, case, redis_server.url())
    case.cleanup()


def swap(genuine_other: Path, ours: Path) -> None:
    """Another backup's genuine artifact (and its sidecar) copied under our name."""
    shutil.copyfile(genuine_other, ours)
    shutil.copyfile(sidecar_path_for(genuine_other), sidecar_path_for(ours))


def assert_refused(result: subprocess.CompletedProcess, ours: str, theirs: str) -> None:
    assert result.returncode == ExitCode.INTEGRITY, (result.returncode, result.stderr)
    assert "not the artifact asked for" in result.stderr, result.stderr
    assert ours in result.stderr and theirs in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_another_backups_genuine_artifact_is_refused_for_every_kind(world, redis_server):
    sets = {kind: (world.backup(kind), world.backup(kind)) for kind in
            ("postgres", "redis", "files", "secrets", "config")}  # fmt: skip
    sidecars = list((world.tmp_path / "repo").rglob("*.metadata.json"))
    assert len(sidecars) == 2 * (2 + 2 + 1 + 1 + 1)
    for sidecar in sidecars:  # sizes of what is inside stay sealed
        assert not set(json.loads(sidecar.read_text())) & set(SEALED_ONLY_FIELDS), sidecar

    # PostgreSQL: nothing created, nothing dropped.
    ours, theirs = sets["postgres"]
    swap(world.artifact(theirs), world.artifact(ours))
    databases = world.pg.databases()
    result = world.run("restore", "postgres", ours, "--target-db", "jarvis_swapped_target")
    assert_refused(result, ours, theirs)
    assert world.pg.databases() == databases
    out = world.tmp_path / "decrypted"
    out.mkdir()
    assert_refused(world.run("decrypt", "--sql", ours, "-o", str(out)), ours, theirs)
    assert_refused(world.run("decrypt", ours, "-o", str(out)), ours, theirs)
    assert list(out.iterdir()) == []
    verified = world.run("verify", ours)
    assert verified.returncode == ExitCode.INTEGRITY and theirs in verified.stdout + verified.stderr

    # Redis, the RDB and the JSON export each: the server keeps what it had.
    ours, theirs = sets["redis"]
    before = {k: redis_server.client().dump(k) for k in (b"greeting", b"queue")}
    redis_server.client().set("greeting", "changed since")
    for mode, extra in (("rdb", ()), ("json", ("--from-json",))):
        original = world.artifact(ours, mode).read_bytes()
        swap(world.artifact(theirs, mode), world.artifact(ours, mode))
        result = world.run("restore", "redis", ours, "--replace", "--flush", *extra)
        assert_refused(result, ours, theirs)
        assert redis_server.client().get("greeting") == b"changed since"
        assert redis_server.client().dump("queue") == before[b"queue"]
        world.artifact(ours, mode).write_bytes(original)

    # The files snapshot manifest: nothing restored, nothing exported.
    ours, theirs = sets["files"]
    swap(world.artifact(theirs), world.artifact(ours))
    target = world.tmp_path / "files-target"
    assert_refused(world.run("restore", "files", ours, "--target-dir", str(target)), ours, theirs)
    assert not target.exists()
    tar = world.tmp_path / "export.tar"
    assert_refused(world.run("export", "files", ours, "--tar", str(tar)), ours, theirs)
    assert not tar.exists()

    # A config tarball under a secrets name is never written into the .env.
    ours = sets["secrets"][0]
    theirs = sets["config"][1]
    swap(world.artifact(theirs), world.artifact(ours))
    world.dotenv.write_text("API_TOKEN=current\n")
    result = world.run("restore", "secrets", ours, "--force")
    assert_refused(result, ours, theirs)
    assert world.dotenv.read_text() == "API_TOKEN=current\n"
    assert not world.dotenv.with_name("app.env.bak").exists()

    # Config: the folder keeps what it has.
    ours, theirs = sets["config"]
    swap(world.artifact(theirs), world.artifact(ours))
    (world.conf / "nginx.conf").write_text("edited\n")
    result = world.run("restore", "config", ours, "--force")
    assert_refused(result, ours, theirs)
    assert (world.conf / "nginx.conf").read_text() == "edited\n"
    assert not (world.conf / "nginx.conf.bak").exists()


def test_an_artifact_from_another_repository_is_refused(world, tmp_path):
    ours = world.backup("secrets")
    path = world.artifact(ours)
    repository = read_repository_id(path.parent.parent)
    (path.parent.parent / ".repository-id").write_text("0" * 32 + "\n")
    result = world.run("restore", "secrets", ours, "--to", str(tmp_path / "out.env"))
    assert result.returncode == ExitCode.INTEGRITY, result.stderr
    assert f"repository {repository}" in result.stderr and "repository 000" in result.stderr
    assert not (tmp_path / "out.env").exists()


def test_version_1_artifacts_still_restore_and_are_checked_whole(world, monkeypatch, tmp_path):
    legacy = functools.partial(stored.write_stored, container_version=1)
    monkeypatch.setattr(repository_artifacts, "write_stored", legacy)
    first, second = world.backup("secrets"), world.backup("secrets")
    config = world.backup("config")
    assert world.artifact(first).read_bytes()[8] == 1  # container version 1, no identity
    monkeypatch.undo()

    out = tmp_path / "restored.env"
    result = world.run("restore", "secrets", first, "--to", str(out))
    assert result.returncode == ExitCode.OK, result.stderr
    assert out.read_text() == DOTENV
    (world.conf / "nginx.conf").write_text("edited\n")
    result = world.run("restore", "config", config, "--force")
    assert result.returncode == ExitCode.OK, result.stderr
    assert (world.conf / "nginx.conf").read_text() == "server { listen 80; }\n"

    genuine = world.artifact(first).read_bytes()
    swap(world.artifact(second), world.artifact(first))
    out.unlink()
    result = world.run("restore", "secrets", first, "--to", str(out))
    assert result.returncode == ExitCode.INTEGRITY, result.stderr
    assert "the catalog recorded" in result.stderr and not out.exists()

    # rekey seals version 1 artifacts again with their identity, even under the same key.
    world.artifact(first).write_bytes(genuine)
    done = world.run("rekey")
    assert done.returncode == ExitCode.OK, done.stderr
    assert done.stdout.count("sealed again  ") == 3
    assert all(world.artifact(s).read_bytes()[8] == 2 for s in (first, second, config))
    result = world.run("restore", "secrets", first, "--to", str(out))
    assert result.returncode == ExitCode.OK, result.stderr
    assert out.read_text() == DOTENV


def test_retired_keys_only_decrypt_and_rekey_lets_the_old_key_go(world, tmp_path):
    old_key, new_key = KEY, generate_key_hex()
    early = world.backup("secrets")
    world.backup("files")
    world.keys(new_key, old_key)  # `keygen --rotate`
    late = world.backup("secrets")

    # Whoever still holds the old key forges the newer backup: refused, it was not sealed so.
    late_path = world.artifact(late)
    genuine = late_path.read_bytes()
    sealed = read_sealed_metadata(late_path, Keyring(MasterKey.from_hex(new_key)))
    with world.pg.workspace() as workspace:
        repository = workspace.repository.repository_id()
        relpath = workspace.catalog.artifacts_of(late)[0].relpath
    artifacts.write_artifact(
        [b"API_TOKEN=attacker\n"],
        late_path,
        Keyring(MasterKey.from_hex(old_key)),
        sealed,
        identity=artifact_identity(repository, "secrets", late, relpath),
    )
    out = tmp_path / "late.env"
    result = world.run("restore", "secrets", late, "--to", str(out))
    assert result.returncode == ExitCode.INTEGRITY, result.stderr
    assert "catalog recorded" in result.stderr and not out.exists()
    late_path.write_bytes(genuine)
    (tmp_path / "ignored").touch()

    early_path = world.artifact(early)
    before = early_path.read_bytes()
    dry = world.run("rekey", "--dry-run")
    assert dry.returncode == ExitCode.OK, dry.stderr
    assert early_path.name in dry.stdout and early_path.read_bytes() == before

    done = world.run("rekey")
    assert done.returncode == ExitCode.OK, done.stderr
    assert early_path.name in done.stdout and late_path.name not in done.stdout
    assert "packs and index files" in done.stdout  # the files store still needs the old key
    assert world.run("rekey").stdout.startswith("0 artifact(s)")

    world.keys(new_key)  # the old key dropped
    result = world.run("restore", "secrets", early, "--to", str(tmp_path / "early.env"))
    assert result.returncode == ExitCode.OK, result.stderr
    assert (tmp_path / "early.env").read_text() == DOTENV
    assert world.run("verify", early).returncode == ExitCode.OK


def test_a_missing_key_is_5_and_a_damaged_key_id_is_4(world, tmp_path):
    ours = world.backup("secrets")
    out = tmp_path / "out.env"
    world.keys(generate_key_hex())
    result = world.run("restore", "secrets", ours, "--to", str(out))
    assert result.returncode == ExitCode.KEY_MISSING, result.stderr
    assert "BACKUP_ENCRYPTION_KEY_PREVIOUS" in result.stderr

    world.keys(KEY)
    path = world.artifact(ours)
    damaged = bytearray(path.read_bytes())
    damaged[12] ^= 0x01  # inside the key id: it now names a key nobody has
    path.write_bytes(bytes(damaged))
    result = world.run("restore", "secrets", ours, "--to", str(out))
    assert result.returncode == ExitCode.INTEGRITY, result.stderr
    assert not out.exists()
    decrypted = world.run("decrypt", str(path), "-o", str(tmp_path / "x.gz"))
    assert decrypted.returncode == ExitCode.INTEGRITY, decrypted.stderr


def test_a_rekey_cut_short_after_the_rename_is_finished_by_the_next(world, monkeypatch, tmp_path):
    old_key, new_key = KEY, generate_key_hex()
    ours = world.backup("secrets")
    world.keys(new_key, old_key)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # as if killed between the rename and the catalog update

    monkeypatch.setattr(rekey_action, "sidecar_bytes", crash)
    assert world.pg.cli("rekey") == ExitCode.CANCELLED
    monkeypatch.undo()
    # The new file is in place, the catalog still names the old key: refused, not misread.
    assert world.run("restore", "secrets", ours, "--to", str(tmp_path / "a.env")).returncode == 4
    assert not (tmp_path / "a.env").exists()

    done = world.run("rekey")
    assert done.returncode == ExitCode.OK, done.stderr
    assert world.artifact(ours).name in done.stdout
    world.keys(new_key)
    result = world.run("restore", "secrets", ours, "--to", str(tmp_path / "b.env"))
    assert result.returncode == ExitCode.OK, result.stderr
    assert (tmp_path / "b.env").read_text() == DOTENV
