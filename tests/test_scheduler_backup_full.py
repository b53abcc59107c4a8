"""`backup full`, restore drills and `verify --all` against real servers and real artifacts."""

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest

from engines.actions.verify_drill import run_restore_drill
from engines.jobs import run_job
from engines.repository.resolve import resolve_artifacts
from engines.workspace import Workspace
from jarvis_tui.cli import main
from jarvis_tui.exit_codes import ExitCode
from tests.scheduling_support import T0, add_set, make_settings, write_env_file
from tests.support.processes import free_port

DEAD_DATABASE_URL = "postgresql://jarvis@127.0.0.1:1/jarvis"


@pytest.fixture(scope="module")
def small_database(postgres_server):
    name = "full_backup_small"
    postgres_server.drop_database(name)
    postgres_server.create_database(name)
    postgres_server.execute(
        "CREATE TABLE songs AS"
        " SELECT g AS id, 'song ' || g AS title FROM generate_series(1, 500) AS g",
        dbname=name,
    )
    yield postgres_server.url(name)
    postgres_server.drop_database(name)


@pytest.fixture
def every_source(tmp_path, isolated_env, small_database, redis_server, webhook_receiver):
    redis = redis_server.client(7)
    redis.flushdb()
    redis.set("session:1", "alice", ex=3600)
    redis.hset("user:1", mapping={"name": "alice"})
    files = tmp_path / "uploads"
    files.mkdir()
    (files / "song.mp3").write_bytes(b"ID3" + bytes(range(256)) * 40)
    secrets = tmp_path / "app.env"
    secrets.write_text("OPENAI_API_KEY=sk-not-a-real-one\n")
    config = tmp_path / "config"
    config.mkdir()
    (config / "app.yaml").write_text("workers: 4\n")
    return {
        "DATABASE_URL": small_database,
        "REDIS_URL": redis_server.url(7),
        "BACKUP_FILE_PATHS": str(files),
        "BACKUP_SECRET_FILES": str(secrets),
        "BACKUP_CONFIG_PATHS": str(config),
        "SLACK_WEBHOOK_URL": webhook_receiver.url("/slack"),
    }


def without_redis(variables: dict[str, str]) -> dict[str, str]:
    """Redis answers SYNC only after its diskless-sync delay (5 s): kept to one test."""
    return {name: value for name, value in variables.items() if name != "REDIS_URL"}


def backup_full_json(tmp_path, variables, capsys) -> tuple[int, dict]:
    code = main(
        ["--env-file", str(write_env_file(tmp_path, **variables)), "backup", "full", "--json"]
    )
    return code, json.loads(capsys.readouterr().out)


def test_backup_full_stores_every_configured_source_in_one_verified_set(
    tmp_path, every_source, capsys
):
    code, report = backup_full_json(tmp_path, every_source, capsys)
    assert code == ExitCode.OK, report
    assert report["status"] == "complete"
    parts = {part["source"]: part for part in report["parts"]}
    assert [p["source"] for p in report["parts"]] == [
        "postgres",
        "redis",
        "files",
        "secrets",
        "config",
    ]
    assert all(part["state"] == "ok" for part in parts.values())
    assert len(parts["postgres"]["artifacts"]) == 2  # the dump and the cluster globals
    with Workspace.open(make_settings(tmp_path, **every_source)) as workspace:
        backup_set = workspace.catalog.get_backup_set(report["id"])
        assert backup_set.kind == "full" and backup_set.tier == "manual"
        assert backup_set.verified_state == "ok"  # every new artifact authenticated end to end
        artifacts = workspace.catalog.artifacts_of(backup_set.id)
        assert {a.source for a in artifacts} == set(parts)
        assert all(a.status == "complete" and a.verify_state == "ok" for a in artifacts)

        # `restore postgres latest` (or the set's id) finds the parts of a full set.
        for reference in ("latest", backup_set.id):
            found = resolve_artifacts(workspace, reference, "redis")
            assert sorted(a.artifact.mode for a in found) == ["json", "rdb"]
        assert {a.artifact.mode for a in resolve_artifacts(workspace, "latest", "postgres")} == {
            "full",
            "globals",
        }

        # The restore drill uses each source's own check where it has one.
        drill = run_job(
            workspace.catalog, "verify", "drill", lambda c: run_restore_drill(workspace, c)
        )
        assert drill.failed == []
        details = {check.relpath.rsplit("_", 1)[-1]: check.detail for check in drill.checks}
        assert details["full.dump.zst.enc"].startswith("restored into a scratch database: 1 tables")
        assert "redis-check-rdb" in details["redis.rdb.zst.enc"]
        # Every key of the snapshot (all databases of the shared server) loaded.
        rdb, json_export = details["redis.rdb.zst.enc"], details["redis.json.zst.enc"]
        assert re.search(r"restored into a scratch redis-server: (\d+) keys loaded of \1 ", rdb)
        assert "every line parsed" in json_export
        assert re.search(r"restored into a scratch redis-server: \d+ keys written", json_export)
        assert details["globals.sql.zst.enc"].startswith("authenticated")
        assert details["snapshot.json.zst.enc"].startswith(
            "restored into a scratch folder: 1 files (10243 bytes, every chunk re-hashed)"
        )
        assert details["app.env.zst.enc"].startswith("restored into a scratch file")
        assert details["config.tar.zst.enc"].startswith("restored into a scratch folder: 1 files")
        assert not [d for d in details.values() if "no restore check" in d]


def test_a_failing_part_keeps_the_others_alerts_and_recovers(
    tmp_path, every_source, webhook_receiver, capsys
):
    every_source = without_redis(every_source)
    broken = {**every_source, "DATABASE_URL": DEAD_DATABASE_URL}
    code, report = backup_full_json(tmp_path, broken, capsys)
    assert code == ExitCode.FAILED
    assert report["status"] == "partial"
    states = {part["source"]: part["state"] for part in report["parts"]}
    assert states == {
        "postgres": "failed",
        "redis": "skipped",
        "files": "ok",
        "secrets": "ok",
        "config": "ok",
    }
    postgres = next(p for p in report["parts"] if p["source"] == "postgres")
    assert "cannot connect" in postgres["detail"] and "127.0.0.1:1" in postgres["detail"]
    [alert] = webhook_receiver.wait_for_requests(1)
    assert "backup_failure:postgres" in alert.json()["text"]

    with Workspace.open(make_settings(tmp_path, **broken)) as workspace:
        backup_set = workspace.catalog.get_backup_set(report["id"])
        assert backup_set.error.startswith("postgres: cannot connect")
        assert "postgres: failed" in backup_set.note
        assert "files: ok (1 artifact)" in backup_set.note
        assert "redis: skipped (Redis is not configured" in backup_set.note
        kept = workspace.catalog.artifacts_of(backup_set.id)
        assert {a.source for a in kept} == {"files", "secrets", "config"}
        assert all(workspace.repository.path_for(a.relpath).is_file() for a in kept)

    code, report = backup_full_json(tmp_path, every_source, capsys)
    assert code == ExitCode.OK and report["status"] == "complete"
    texts = [r.json()["text"] for r in webhook_receiver.wait_for_requests(2)]
    assert "postgres backed up successfully again" in texts[1]


def test_the_restore_drill_checks_the_newest_backups_and_catches_damage(
    tmp_path, every_source, webhook_receiver, capsys
):
    every_source = without_redis(every_source)
    code, report = backup_full_json(tmp_path, every_source, capsys)
    assert code == ExitCode.OK
    settings = make_settings(tmp_path, **every_source)
    with Workspace.open(settings) as workspace:
        drill = run_job(
            workspace.catalog, "verify", "drill", lambda c: run_restore_drill(workspace, c)
        )
        assert drill.failed == [] and drill.untested_sources == []
        assert {check.source for check in drill.checks} == {
            "postgres",
            "files",
            "secrets",
            "config",
        }
        dump = next(c for c in drill.checks if ".dump." in c.relpath)
        damaged = workspace.repository.path_for(dump.relpath)
        data = bytearray(damaged.read_bytes())
        data[len(data) // 2] ^= 0x01
        damaged.write_bytes(bytes(data))

    env_file = write_env_file(tmp_path, **every_source)
    assert main(["--env-file", str(env_file), "drill"]) == ExitCode.INTEGRITY
    out = capsys.readouterr().out
    assert f"FAILED  {dump.relpath}" in out
    with Workspace.open(settings) as workspace:
        [alert] = workspace.catalog.open_conditions("verification_failure:")
        assert alert.kind == f"verification_failure:{dump.relpath}"
        assert workspace.catalog.get_backup_set(report["id"]).verified_state == "failed"
    assert any(dump.relpath in r.json()["text"] for r in webhook_receiver.requests)


def test_a_drill_whose_restore_fails_alerts_once(tmp_path, every_source, capsys):
    every_source = without_redis(every_source)
    code, _ = backup_full_json(tmp_path, every_source, capsys)
    assert code == ExitCode.OK
    # The artifact authenticates; the restore into a scratch database cannot connect.
    unreachable = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    settings = make_settings(tmp_path, **{**every_source, "DATABASE_URL": unreachable})
    with Workspace.open(settings) as workspace:
        drill = run_job(
            workspace.catalog, "verify", "drill", lambda c: run_restore_drill(workspace, c)
        )
        [failed] = drill.failed
        assert ".dump." in failed.relpath and "restore drill failed" in failed.detail
        mentioning = [a for a in workspace.catalog.list_alerts() if failed.relpath in a.message]
        assert len(mentioning) == 1, mentioning


def test_verify_all_samples_walk_the_whole_repository_over_time(tmp_path, isolated_env, capsys):
    env_file = write_env_file(tmp_path)
    settings = make_settings(tmp_path)
    with Workspace.open(settings) as workspace:
        for day in range(10):
            add_set(workspace, T0 + timedelta(days=day), sources=("postgres", "redis"))

    checked_per_run = []
    for _ in range(4):
        assert (
            main(["--env-file", str(env_file), "verify", "--all", "--sample", "25", "--json"]) == 0
        )
        checked_per_run.append({entry["artifact"] for entry in json.loads(capsys.readouterr().out)})
    assert [len(run) for run in checked_per_run] == [5, 5, 5, 5]
    assert len(set().union(*checked_per_run)) == 20  # no artifact twice before all once
    with Workspace.open(settings) as workspace:
        assert all(a.verified_at is not None for a in workspace.catalog.all_artifacts())
        victim = workspace.catalog.all_artifacts()[3]
        Path(workspace.repository.path_for(victim.relpath)).unlink()

    assert main(["--env-file", str(env_file), "verify", "--all"]) == ExitCode.INTEGRITY
    out = capsys.readouterr().out
    assert f"FAILED  {victim.relpath}" in out and "missing from the repository" in out
    with Workspace.open(settings) as workspace:
        assert [a.kind for a in workspace.catalog.open_conditions()] == [
            f"verification_failure:{victim.relpath}"
        ]


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["verify", "--all", "--sample", "0"], ExitCode.FAILED, "--sample 0: give a percentage"),
        (["verify", "--all", "--sample", "150"], ExitCode.FAILED, "at most 100"),
        (["verify", "latest", "--all"], ExitCode.USAGE, "verify --all [--sample PERCENT]"),
        (["verify", "--sample", "10"], ExitCode.USAGE, "verify --all [--sample PERCENT]"),
        (["verify"], ExitCode.USAGE, "verify needs ID|latest|PATH, or --all"),
    ],
)
def test_verify_all_rejects_bad_input(tmp_path, isolated_env, capsys, argv, code, message):
    env_file = write_env_file(tmp_path)
    assert main(["--env-file", str(env_file), *argv]) == code
    assert message in capsys.readouterr().err


def test_verify_all_read_data_and_the_drill_read_every_chunk_of_files(
    tmp_path, every_source, capsys
):
    """A flipped bit inside a pack: the snapshot's chunks are all located, so only reading
    them finds it, with `verify --all --read-data` and with the drill's scratch restore."""
    every_source = without_redis(every_source)
    code, _ = backup_full_json(tmp_path, every_source, capsys)
    assert code == ExitCode.OK
    env_file = write_env_file(tmp_path, **every_source)
    [pack] = [p for p in (tmp_path / "repo" / "files").rglob("*") if "pack" in str(p.parent)
              and p.is_file()]  # fmt: skip
    data = bytearray(pack.read_bytes())
    data[len(data) // 3] ^= 0x01
    pack.write_bytes(bytes(data))

    assert main(["--env-file", str(env_file), "verify", "--all"]) == ExitCode.OK
    capsys.readouterr()
    assert main(["--env-file", str(env_file), "verify", "--all", "--read-data"]) == (
        ExitCode.INTEGRITY
    )
    out = capsys.readouterr().out
    [failed] = [line for line in out.splitlines() if line.startswith("FAILED")]
    assert "snapshot" in failed and "song.mp3" in out

    assert main(["--env-file", str(env_file), "drill"]) == ExitCode.INTEGRITY
    out = capsys.readouterr().out
    [failed] = [line for line in out.splitlines() if line.startswith("FAILED")]
    assert "snapshot" in failed
    assert sum(line.startswith("ok") for line in out.splitlines()) == 4  # pg x2, secrets, config
