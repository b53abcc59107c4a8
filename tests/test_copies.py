"""Every backup is copied to every copy destination as part of its job.

The copy destination here is a second local repository (a folder named `offsite`),
registered as a destination kind for the test the way S3 is registered, so these
tests need nothing but the `Destination` face. Real servers for PostgreSQL and
Redis, the real CLI's entry point, real file systems.
"""

import json
from pathlib import Path

import pytest

from engines.destinations import DESTINATION_KINDS, LocalRepository
from engines.pipeline.artifacts import SIDECAR_SUFFIX
from engines.repository.copies import ALERT_WORDS, alert_kind, copy_rank
from engines.store.layout import INDEX_PREFIX, PACKS_PREFIX
from jarvis_tui.cli import main
from jarvis_tui.exit_codes import ExitCode
from tests.scheduling_support import write_env_file
from tests.support.files_env import make_files_env, random_text
from tests.support.redis_seed import fast_sync

OFFSITE = "offsite"


def register_offsite(monkeypatch: pytest.MonkeyPatch, root: Path) -> LocalRepository:
    """A destination kind whose `from_settings` is a local repository at `root`."""

    class Offsite(LocalRepository):
        @classmethod
        def from_settings(cls, settings):
            return cls(root, name=OFFSITE)

    monkeypatch.setitem(DESTINATION_KINDS, "offsite-test", Offsite)
    return Offsite(root, name=OFFSITE)


def listing(destination) -> dict[str, int]:
    return {item.key: item.size for item in destination.list()}


def assert_same_objects(repository: LocalRepository, offsite: LocalRepository) -> None:
    here = listing(repository)
    assert here, "the repository holds nothing"
    assert listing(offsite) == here
    for key in here:
        assert offsite.path_for(key).read_bytes() == repository.path_for(key).read_bytes(), key


def copy_states(workspace) -> dict[str, dict[str, str]]:
    """Each complete artifact's copy states: {relpath: {destination: state}}."""
    return {
        artifact.relpath: {c.destination: c.state for c in workspace.catalog.copies_of(artifact.id)}
        for artifact in workspace.catalog.all_artifacts()
        if artifact.status == "complete"
    }


@pytest.fixture(scope="module")
def small_database(postgres_server):
    name = "copies_small"
    postgres_server.drop_database(name)
    postgres_server.create_database(name)
    postgres_server.execute(
        "CREATE TABLE songs AS SELECT g AS id, 'song ' || g AS title"
        " FROM generate_series(1, 300) AS g",
        dbname=name,
    )
    yield postgres_server.url(name)
    postgres_server.drop_database(name)


def test_a_backup_of_every_kind_copies_every_object_and_records_stored(
    tmp_path, isolated_env, monkeypatch, small_database, redis_server, capsys
):
    offsite = register_offsite(monkeypatch, tmp_path / "offsite")
    fast_sync(redis_server)
    redis = redis_server.client(5)
    redis.flushdb()
    redis.set("song:1", "la")
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    for number in range(12):
        (uploads / f"track{number}.txt").write_bytes(random_text(30_000, number))
    secrets = tmp_path / "app.env"
    secrets.write_text("API_TOKEN=not-a-real-one\n")
    config = tmp_path / "config"
    config.mkdir()
    (config / "app.yaml").write_text("workers: 4\n")
    env_file = write_env_file(
        tmp_path,
        DATABASE_URL=small_database,
        REDIS_URL=redis_server.url(5),
        BACKUP_FILE_PATHS=str(uploads),
        BACKUP_SECRET_FILES=str(secrets),
        BACKUP_CONFIG_PATHS=str(config),
    )
    assert main(["--env-file", str(env_file), "backup", "full", "--json"]) == ExitCode.OK
    report = json.loads(capsys.readouterr().out)
    assert report["status"] == "complete", report
    repository = LocalRepository(tmp_path / "repo")
    keys = listing(repository)
    sources = {key.split("/", 1)[0] for key in keys}
    assert {"postgres", "redis", "files", "secrets", "config", "sets"} <= sources, sorted(keys)
    assert any(key.startswith(PACKS_PREFIX) for key in keys)
    assert any(key.startswith(INDEX_PREFIX) for key in keys)
    assert_same_objects(repository, offsite)

    # A single source's backup copies its new objects too (new packs, index, manifest).
    (uploads / "new.txt").write_bytes(random_text(50_000, 99))
    assert main(["--env-file", str(env_file), "backup", "files"]) == ExitCode.OK
    assert len(listing(repository)) > len(keys)
    assert_same_objects(repository, offsite)

    from engines.config import load_settings
    from engines.workspace import Workspace

    with Workspace.open(load_settings(environ={}, env_file=env_file)) as workspace:
        states = copy_states(workspace)
        assert len(states) >= 6
        for relpath, where in states.items():
            assert where == {"local": "stored", OFFSITE: "stored"}, relpath
        backup_jobs = [job for job in workspace.catalog.list_jobs() if job.kind == "backup"]
        assert len(backup_jobs) == 2
        for job in backup_jobs:
            said = [event.message for event in workspace.catalog.job_events(job.id)]
            assert any(line.startswith(f"{OFFSITE}: copied ") for line in said), said
        alerts = [a for a in workspace.catalog.list_alerts() if a.kind == alert_kind(OFFSITE)]
        assert alerts == []


def test_the_copy_order_puts_what_is_referenced_first():
    keys = [
        "sets/20260101T000000Z.json.enc",
        "files/20260101T000000Z_snapshot.json.zst.enc",
        "files/20260101T000000Z_snapshot.json.zst.enc" + SIDECAR_SUFFIX,
        "postgres/20260101T000000Z_db.dump.zst.enc",
        "files/index/ab.idx",
        "files/packs/ab/ab12.pack",
    ]
    ordered = sorted(keys, key=lambda key: (copy_rank(key), key))
    assert ordered == [
        "files/packs/ab/ab12.pack",
        "files/index/ab.idx",
        "postgres/20260101T000000Z_db.dump.zst.enc",
        "files/20260101T000000Z_snapshot.json.zst.enc",
        "files/20260101T000000Z_snapshot.json.zst.enc" + SIDECAR_SUFFIX,
        "sets/20260101T000000Z.json.enc",
    ]


def test_a_copy_that_fails_is_recorded_failed_alerted_and_leaves_the_local_backup_whole(
    tmp_path, isolated_env, monkeypatch, capsys
):
    # The destination's folder lies under a regular file: every write there fails
    # (ENOTDIR), whoever runs the test, as on a destination that refuses uploads.
    blocker = tmp_path / "blocked"
    blocker.write_text("not a folder\n")
    offsite = register_offsite(monkeypatch, blocker / "offsite")
    env = make_files_env(tmp_path / "files")
    for number in range(8):
        (env.data / f"f{number}.txt").write_bytes(random_text(40_000, number))
    env.set(BACKUP_SECRET_FILES=str(env.data / "f0.txt"))

    assert env.cli("backup", "files") == ExitCode.OK
    assert env.cli("backup", "secrets") == ExitCode.OK
    capsys.readouterr()
    with env.workspace() as workspace:
        sets = workspace.catalog.list_backup_sets()
        assert [s.status for s in sets] == ["complete", "complete"]
        states = copy_states(workspace)
        assert len(states) == 2
        for relpath, where in states.items():
            assert where == {"local": "stored", OFFSITE: "failed"}, relpath
        for artifact in workspace.catalog.all_artifacts():
            (offsite_copy,) = [
                c for c in workspace.catalog.copies_of(artifact.id) if c.destination == OFFSITE
            ]
            assert offsite_copy.error and "Not a directory" in offsite_copy.error
        alerts = [a for a in workspace.catalog.list_alerts() if a.kind == alert_kind(OFFSITE)]
        assert len(alerts) == 1  # one open condition, not one per backup
        assert ALERT_WORDS in alerts[0].message and alerts[0].severity == "critical"
        for job in workspace.catalog.list_jobs():
            errors = [e.message for e in workspace.catalog.job_events(job.id) if e.level == "error"]
            assert any("copy failed" in line and "jarvis-tui sync" in line for line in errors)
    # The local backups are intact and complete: every artifact authenticates.
    assert env.cli("verify", "--all") == ExitCode.OK
    assert listing(offsite) == {}

    # The destination comes back: a dry run lists what is missing and changes nothing.
    blocker.unlink()
    blocker.mkdir()
    repository = LocalRepository(env.repo)
    missing = listing(repository)
    assert env.cli("sync", "--dry-run") == ExitCode.OK
    out = capsys.readouterr().out
    assert f"would copy {len(missing)} object(s)" in out
    for key in missing:
        assert f"would copy {key} " in out
    assert listing(offsite) == {}
    with env.workspace() as workspace:
        assert {w[OFFSITE] for w in copy_states(workspace).values()} == {"failed"}

    # `sync` completes the copy, records it and clears the alert; a second finds nothing.
    assert env.cli("sync") == ExitCode.OK
    out = capsys.readouterr().out
    assert f"copied {len(missing)} object(s)" in out
    assert_same_objects(repository, offsite)
    with env.workspace() as workspace:
        for relpath, where in copy_states(workspace).items():
            assert where == {"local": "stored", OFFSITE: "stored"}, relpath
        alerts = [a for a in workspace.catalog.list_alerts() if a.kind == alert_kind(OFFSITE)]
        assert any("resolved" in a.message or "copied again" in a.message for a in alerts)
    assert env.cli("sync") == ExitCode.OK
    assert f"{OFFSITE}: nothing to copy" in capsys.readouterr().out


def test_copies_to_s3_on_moto_record_a_missing_bucket_as_failed_and_sync_completes_them(
    tmp_path, isolated_env, s3_server, capsys
):
    """The same over real HTTP to moto's S3 with the guide's settings: a bucket that does
    not exist yet fails the copy (recorded, alerted, the local backup whole); once it
    exists `sync` pushes everything under S3_PREFIX, and a second sync finds nothing."""
    env = make_files_env(tmp_path / "files")
    for number in range(6):
        (env.data / f"f{number}.txt").write_bytes(random_text(30_000, number))
    env.set(
        S3_ENABLED="true",
        S3_BUCKET="jarvis-offsite",
        S3_ENDPOINT_URL=s3_server.endpoint_url,
        S3_ACCESS_KEY=s3_server.access_key,
        S3_SECRET_KEY=s3_server.secret_key,
        AWS_REGION=s3_server.region,
        S3_PREFIX="hosts/jarvis-1",
    )
    assert env.cli("backup", "files") == ExitCode.OK
    with env.workspace() as workspace:
        (artifact,) = workspace.catalog.all_artifacts()
        copies = {c.destination: c for c in workspace.catalog.copies_of(artifact.id)}
        assert copies["local"].state == "stored"
        assert copies["s3"].state == "failed" and copies["s3"].error
        alerts = [a for a in workspace.catalog.list_alerts() if a.kind == alert_kind("s3")]
        assert len(alerts) == 1 and ALERT_WORDS in alerts[0].message
        assert s3_server.access_key not in copies["s3"].error
    assert env.cli("verify", "--all") == ExitCode.OK

    s3_server.create_bucket("jarvis-offsite")
    repository = LocalRepository(env.repo)
    here = listing(repository)
    capsys.readouterr()
    assert env.cli("sync", "--dry-run") == ExitCode.OK
    assert f"s3: would copy {len(here)} object(s)" in capsys.readouterr().out
    client = s3_server.client()
    assert client.list_objects_v2(Bucket="jarvis-offsite").get("KeyCount") == 0

    assert env.cli("sync") == ExitCode.OK
    assert f"s3: copied {len(here)} object(s)" in capsys.readouterr().out
    listed = client.list_objects_v2(Bucket="jarvis-offsite", Prefix="hosts/jarvis-1/")
    uploaded = {item["Key"]: item["Size"] for item in listed["Contents"]}
    # Every object, and the repository's id (a host rebuilt from the bucket needs it).
    assert uploaded == {
        "hosts/jarvis-1/.repository-id": 33,
        **{f"hosts/jarvis-1/{key}": size for key, size in here.items()},
    }
    stored_id = client.get_object(Bucket="jarvis-offsite", Key="hosts/jarvis-1/.repository-id")
    assert stored_id["Body"].read() == (env.repo / ".repository-id").read_bytes()
    for key in here:
        body = client.get_object(Bucket="jarvis-offsite", Key=f"hosts/jarvis-1/{key}")["Body"]
        assert body.read() == repository.path_for(key).read_bytes(), key
    with env.workspace() as workspace:
        for relpath, where in copy_states(workspace).items():
            assert where == {"local": "stored", "s3": "stored"}, relpath
    assert env.cli("sync") == ExitCode.OK
    assert "s3: nothing to copy" in capsys.readouterr().out

    # The next backup copies its new objects to S3 as part of its job.
    (env.data / "new.txt").write_bytes(random_text(20_000, 77))
    assert env.cli("backup", "files") == ExitCode.OK
    listed = client.list_objects_v2(Bucket="jarvis-offsite", Prefix="hosts/jarvis-1/")
    uploaded = {item["Key"]: item["Size"] for item in listed["Contents"]}
    here = listing(repository)
    assert uploaded == {
        "hosts/jarvis-1/.repository-id": 33,
        **{f"hosts/jarvis-1/{key}": size for key, size in here.items()},
    }
    with env.workspace() as workspace:
        assert {w["s3"] for w in copy_states(workspace).values()} == {"stored"}


def test_a_scheduled_full_backup_copies_as_part_of_its_job(tmp_path, isolated_env, monkeypatch):
    """The scheduler's seam (`run_scheduled`, as the scheduler's job runs it): the same copy."""
    from engines.actions.verbs import Request, run_scheduled
    from engines.jobs import run_job

    offsite = register_offsite(monkeypatch, tmp_path / "offsite")
    env = make_files_env(tmp_path / "files")
    for number in range(4):
        (env.data / f"f{number}.txt").write_bytes(random_text(25_000, number))
    secrets = tmp_path / "app.env"
    secrets.write_text("API_TOKEN=not-a-real-one\n")
    env.set(BACKUP_SECRET_FILES=str(secrets))
    with env.workspace() as workspace:
        result = run_job(
            workspace.catalog,
            "backup",
            "backup full (schedule daily)",
            lambda context: run_scheduled("backup-full", workspace, Request(tier="daily"), context),
        )
        assert result == "complete"
        states = copy_states(workspace)
        assert states and all(w.get(OFFSITE) == "stored" for w in states.values()), states
    assert_same_objects(LocalRepository(env.repo), offsite)


def test_deleting_a_set_removes_it_and_its_record_from_every_destination(
    tmp_path, isolated_env, monkeypatch, capsys
):
    from engines.actions.verbs import Request, run_verb
    from engines.config import load_settings
    from engines.workspace import Workspace

    offsite = register_offsite(monkeypatch, tmp_path / "offsite")
    secrets = tmp_path / "app.env"
    secrets.write_text("API_TOKEN=not-a-real-one\n")
    env_file = write_env_file(tmp_path, BACKUP_SECRET_FILES=str(secrets))
    assert main(["--env-file", str(env_file), "backup", "secrets"]) == ExitCode.OK
    assert main(["--env-file", str(env_file), "backup", "secrets"]) == ExitCode.OK
    repository = LocalRepository(tmp_path / "repo")
    assert_same_objects(repository, offsite)
    with Workspace.open(load_settings(environ={}, env_file=env_file)) as workspace:
        doomed, kept = [s.id for s in workspace.catalog.list_backup_sets()]
        run_verb(workspace, "delete", Request(reference=doomed))
        for destination in (repository, offsite):
            keys = listing(destination)
            assert not [key for key in keys if doomed in key], (destination.name, sorted(keys))
            assert any(kept in key for key in keys), destination.name
        assert_same_objects(repository, offsite)
