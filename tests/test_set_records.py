"""The sealed record of how each backup set ended (`sets/<set id>.json.enc`): written
"running" when a set starts and replaced by its final status when it finishes, so a
`catalog rebuild` on a fresh host gives back failed sets as failed, whatever artifacts
they stored first. The CLI runs in processes of its own."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from jarvis_tui.exit_codes import ExitCode
from tests.support.files_env import KEY, OTHER_KEY, FilesEnv, child_env, make_secrets_env
from tests.support.pg_seed import PgCase
from tests.support.processes import wait_until

CLI = Path(sys.executable).with_name("jarvis-tui")


@pytest.fixture
def env(tmp_path, isolated_env) -> FilesEnv:
    return make_secrets_env(tmp_path / "files")


def run(env_file: Path, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(CLI), "--env-file", str(env_file), *argv],
        capture_output=True, text=True, timeout=120, env=child_env(),
    )  # fmt: skip


def fresh_catalog(catalog: Path) -> None:
    """As on a new host: no catalog at all."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{catalog}{suffix}").unlink(missing_ok=True)


def listed(env_file: Path) -> dict[str, dict]:
    listing = run(env_file, "list", "--json")
    assert listing.returncode == ExitCode.OK, listing.stderr
    return {s["id"]: s for s in json.loads(listing.stdout)}


def records(repository: Path) -> list[str]:
    return sorted(p.name for p in (repository / "sets").glob("*.json.enc"))


def rebuild_fresh(env_file: Path, catalog: Path) -> subprocess.CompletedProcess:
    fresh_catalog(catalog)
    return run(env_file, "catalog", "rebuild")


@pytest.fixture
def pg(tmp_path, isolated_env, postgres_server):
    case = PgCase(postgres_server, tmp_path)
    yield case
    case.cleanup()


def _blocked_comments(case: PgCase) -> list[int]:
    return [
        row[0]
        for row in case.server.execute(
            "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND query LIKE 'COMMENT ON DATABASE%%'"
        )
    ]


def test_a_backup_killed_after_storing_its_artifact_comes_back_failed(pg):
    """Killed during its --verify-restore (held there by a lock on pg_shdescription), with
    its one artifact stored and authentic: a fresh catalog must not call it complete."""
    repository, catalog = pg.tmp_path / "repo", pg.tmp_path / "catalog.sqlite3"
    with psycopg.connect(pg.server.dsn("postgres")) as holder:
        holder.execute("LOCK TABLE pg_catalog.pg_shdescription IN SHARE MODE")
        backing_up = subprocess.Popen(
            [str(CLI), "--env-file", str(pg.env_file), "backup", "postgres", "--verify-restore"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=child_env(),
        )  # fmt: skip
        try:
            wait_until(lambda: bool(_blocked_comments(pg)), 60, "the drill's COMMENT to wait")
        finally:
            os.kill(backing_up.pid, signal.SIGKILL)
            backing_up.wait()
        for pid in _blocked_comments(pg):  # its session dies with the client
            pg.server.execute("SELECT pg_terminate_backend(%s)", (pid,))
        holder.rollback()
    assert backing_up.returncode == -signal.SIGKILL
    assert len(list((repository / "postgres").glob("*.dump.*.enc"))) == 1

    rebuild = rebuild_fresh(pg.env_file, catalog)
    assert rebuild.returncode == ExitCode.OK, rebuild.stderr
    [(set_id, rebuilt)] = listed(pg.env_file).items()
    assert rebuilt["status"] == "failed"
    assert "interrupted" in (rebuilt.get("error") or "")
    assert {a["source"] for a in rebuilt["artifacts"]} == {"postgres"}
    assert records(repository) == [f"{set_id}.json.enc"]


def test_complete_and_failed_sets_keep_their_status_and_cleanup_removes_records(env):
    assert run(env.env_file, "backup", "secrets").returncode == ExitCode.OK
    env.set(BACKUP_SECRET_FILES=str(env.root / "missing.env"))
    assert run(env.env_file, "backup", "secrets").returncode != ExitCode.OK
    before = listed(env.env_file)
    [complete_id] = [s for s, row in before.items() if row["status"] == "complete"]
    [failed_id] = [s for s, row in before.items() if row["status"] == "failed"]
    assert records(env.repo) == sorted([f"{complete_id}.json.enc", f"{failed_id}.json.enc"])

    rebuild = rebuild_fresh(env.env_file, env.root / "catalog.sqlite3")
    assert rebuild.returncode == ExitCode.OK, rebuild.stderr
    after = listed(env.env_file)
    assert after[complete_id]["status"] == "complete"
    assert after[failed_id]["status"] == "failed"  # no artifact: only its record tells
    assert "missing.env" in after[failed_id]["error"]

    cleanup = run(env.env_file, "cleanup")
    assert cleanup.returncode == ExitCode.OK, cleanup.stderr
    assert list(listed(env.env_file)) == [complete_id]
    assert records(env.repo) == [f"{complete_id}.json.enc"]


def test_a_partial_full_backup_stays_partial(env):
    """The config part fails before storing anything: the set's record says partial."""
    env.set(BACKUP_CONFIG_PATHS=str(env.root / "no-such-folder"))
    assert run(env.env_file, "backup", "full").returncode != ExitCode.OK
    [(set_id, before)] = listed(env.env_file).items()
    assert before["status"] == "partial"
    assert records(env.repo) == [f"{set_id}.json.enc"]
    rebuild = rebuild_fresh(env.env_file, env.root / "catalog.sqlite3")
    assert rebuild.returncode == ExitCode.OK, rebuild.stderr
    after = listed(env.env_file)[set_id]
    assert after["status"] == "partial"
    assert "config" in (after.get("error") or "")


@pytest.mark.parametrize("damage", ["swapped", "edited", "deleted"])
def test_a_forged_record_is_refused_and_reported(env, damage):
    for _ in range(2):
        assert run(env.env_file, "backup", "secrets").returncode == ExitCode.OK
    first, second = sorted(listed(env.env_file))
    target = env.repo / "sets" / f"{second}.json.enc"
    if damage == "swapped":  # another set's genuine record under this set's name
        target.write_bytes((env.repo / "sets" / f"{first}.json.enc").read_bytes())
    elif damage == "deleted":  # the record of a failed set, say, removed
        target.unlink()
    else:
        data = bytearray(target.read_bytes())
        data[-5] ^= 0x01
        target.write_bytes(bytes(data))

    rebuild = rebuild_fresh(env.env_file, env.root / "catalog.sqlite3")
    assert rebuild.returncode == ExitCode.INTEGRITY, rebuild.stderr
    assert f"sets/{second}.json.enc" in rebuild.stderr
    after = listed(env.env_file)
    assert after[first]["status"] == "complete"
    assert after[second]["status"] == "failed"  # nothing authentic says how it ended
    assert "record" in after[second]["error"]


def test_rekey_seals_records_again_so_the_old_key_can_go(env):
    assert run(env.env_file, "backup", "secrets").returncode == ExitCode.OK
    [set_id] = listed(env.env_file)
    env.set(BACKUP_ENCRYPTION_KEY=OTHER_KEY, BACKUP_ENCRYPTION_KEY_PREVIOUS=KEY)
    rekeyed = run(env.env_file, "rekey")
    assert rekeyed.returncode == ExitCode.OK, rekeyed.stderr
    assert f"sets/{set_id}.json.enc" in rekeyed.stdout
    del env.settings["BACKUP_ENCRYPTION_KEY_PREVIOUS"]
    env.set()  # the old key dropped

    rebuild = rebuild_fresh(env.env_file, env.root / "catalog.sqlite3")
    assert rebuild.returncode == ExitCode.OK, rebuild.stderr
    assert listed(env.env_file)[set_id]["status"] == "complete"
