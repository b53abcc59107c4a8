"""Retention of archived WAL (issue #16): cleanup keeps the WAL every kept base backup needs,
on the repository and every copy destination, removes what lies before the oldest kept
base backup's start segment, and never removes WAL because of the key it is sealed under.
A real cluster archives through wal-push (tests/test_pitr_archive.py's fixture)."""

import json
import sqlite3
from dataclasses import dataclass

import pytest

from engines.config import load_settings
from engines.pipeline.crypto import generate_key_hex
from engines.pitr.wal_retention import plan_wal_retention
from engines.workspace import Workspace
from tests.support.s3 import S3Server
from tests.test_pitr_archive import Archive, _s3_env, archive, archive_command  # noqa: F401


@dataclass(frozen=True)
class TwoBases:
    archive: Archive
    older: str  # set ids
    newer: str
    newer_start: str  # the segment the newer base backup starts in


def _base_backup(archive: Archive) -> str:  # noqa: F811
    result = archive.cli("backup", "postgres", "--mode", "base")
    assert result.returncode == 0, result.stderr
    return result.stdout.split("backup ")[1].split()[0]


def _wal_files(archive: Archive) -> set[str]:  # noqa: F811
    return {
        p.relative_to(archive.repository).as_posix() for p in archive.repository.glob("wal/*/*/*")
    }


def _name(key: str) -> str:
    return key.rsplit("/", 1)[-1][:24]


@pytest.fixture(scope="module")
def bases(archive: Archive) -> TwoBases:  # noqa: F811
    with archive.env_file.open("a") as settings:
        settings.write(
            "BACKUP_COMPRESSION=zstd\n"  # gzip-9 of a cluster costs seconds
            "BACKUP_RETENTION_DAILY=1\nBACKUP_RETENTION_WEEKLY=0\nBACKUP_RETENTION_MONTHLY=0\n"
        )
    pg = archive.pg
    older = _base_backup(archive)
    for _ in range(3):
        pg.execute("CREATE TABLE IF NOT EXISTS t (x int); INSERT INTO t VALUES (1)")
        pg.execute("SELECT pg_switch_wal()")
    newer = _base_backup(archive)
    assert archive.cli("pitr", "check").returncode == 0  # the last switched segment arrived
    with sqlite3.connect(archive.root / "catalog.db") as catalog:
        (metadata,) = catalog.execute(
            "SELECT metadata_json FROM artifacts WHERE set_id = ?", (newer,)
        ).fetchone()
    ((start,),) = pg.execute(f"SELECT pg_walfile_name('{json.loads(metadata)['start_lsn']}')")
    return TwoBases(archive, older, newer, start)


def test_a_dry_run_reports_the_wal_that_would_go_and_removes_nothing(bases: TwoBases) -> None:
    wal_archive = bases.archive
    before = _wal_files(wal_archive)
    older_wal = {key for key in before if _name(key) < bases.newer_start}
    assert len(older_wal) >= 4  # the older base backup's and the three switched segments
    result = wal_archive.cli("cleanup", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert (
        f"{len(older_wal)} file(s) before {bases.newer_start} would go "
        f"({len(older_wal)} on timeline 1); the oldest kept base backup starts at "
        f"{bases.newer_start}"
    ) in result.stdout
    assert _wal_files(wal_archive) == before


def test_no_base_backup_kept_keeps_all_the_wal(bases: TwoBases) -> None:
    with Workspace.open(load_settings(env_file=bases.archive.env_file)) as workspace:
        (cluster,) = plan_wal_retention(workspace.repository, workspace.keyring(), [])
    assert cluster.oldest_kept is None and cluster.count == 0
    assert "no base backup of it is kept, all its WAL is kept" in cluster.describe(True)


def test_cleanup_removes_the_wal_before_the_kept_base_on_the_repository_and_s3(
    bases: TwoBases, tmp_path, s3_server: S3Server
) -> None:
    wal_archive = bases.archive
    before = _wal_files(wal_archive)
    bucket = s3_server.create_bucket("jarvis-wal-retention")
    client = s3_server.client()
    for key in before:  # the copy destination holds what wal-push would have copied
        client.put_object(Bucket=bucket, Key=key, Body=(wal_archive.repository / key).read_bytes())
    env_file = _s3_env(
        wal_archive, tmp_path, wal_archive.repository, bucket, s3_server.endpoint_url
    )
    result = wal_archive.cli("cleanup", env_file=env_file)
    assert result.returncode == 0, result.stdout + result.stderr
    kept = {key for key in before if _name(key) >= bases.newer_start}
    assert "1 set(s) deleted" in result.stdout
    removed = len(before) - len(kept)
    assert f"{removed} file(s) before {bases.newer_start} removed" in result.stdout
    assert kept and kept != before
    assert _wal_files(wal_archive) == kept
    listed = client.list_objects_v2(Bucket=bucket, Prefix="wal/").get("Contents", [])
    assert {item["Key"] for item in listed if item["Key"].count("/") == 3} == kept
    assert wal_archive.cli("pitr", "check").returncode == 0  # archiving goes on


def test_wal_sealed_under_a_rotated_key_is_fetched_and_kept(bases: TwoBases, tmp_path) -> None:
    wal_archive = bases.archive
    settings = wal_archive.env_file.read_text()
    old_key = next(
        line.split("=", 1)[1] for line in settings.splitlines()
        if line.startswith("BACKUP_ENCRYPTION_KEY=")
    )  # fmt: skip
    rotated = tmp_path / "rotated.env"
    rotated.write_text(
        settings.replace(
            f"BACKUP_ENCRYPTION_KEY={old_key}", f"BACKUP_ENCRYPTION_KEY={generate_key_hex()}"
        )
        + f"BACKUP_ENCRYPTION_KEY_PREVIOUS={old_key}\n"
    )
    before = _wal_files(wal_archive)
    segment = bases.newer_start
    dest = tmp_path / "pg_wal" / segment
    dest.parent.mkdir()
    fetched = wal_archive.cli("wal-fetch", segment, str(dest), env_file=rotated)
    assert fetched.returncode == 0, fetched.stderr
    assert wal_archive.fetch(segment, tmp_path / "original").returncode == 0
    assert dest.read_bytes() == (tmp_path / "original").read_bytes()
    result = wal_archive.cli("cleanup", env_file=rotated)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _wal_files(wal_archive) == before  # the old key is no reason to delete WAL
    # rekey seals the WAL again (tests/test_pitr_rekey_wal.py), after which the old key can go.
    rekeyed = wal_archive.cli("rekey", env_file=rotated)
    assert rekeyed.returncode == 0, rekeyed.stderr
    sealed = list((wal_archive.repository / "wal").rglob("*.enc"))  # with the record
    assert rekeyed.stdout.count("sealed again  wal/") == len(sealed)
    assert "can be removed" in rekeyed.stdout
    assert _wal_files(wal_archive) == before
    again = tmp_path / "again" / "pg_wal" / segment
    again.parent.mkdir(parents=True)
    assert wal_archive.cli("wal-fetch", segment, str(again), env_file=rotated).returncode == 0
    assert again.read_bytes() == dest.read_bytes()
