"""Base backups (issue 16): pg_basebackup of a real throwaway cluster through the artifact
pipeline, laid out into an empty data folder and started as a server of its own."""

import os
import shutil

import pytest

from engines.pipeline.artifacts import PlainBlocks, sidecar_path_for
from engines.pitr.base_tar import BaseTarWalk
from engines.pitr.restore_pitr import ended_before
from engines.pitr.restore_target import PitrTarget
from jarvis_tui.exit_codes import ExitCode
from jarvis_tui.restorable import restorable_sets
from tests.support.pg_seed import BASE_BACKUP_SETTINGS, PgCase, fingerprint, write_env_file
from tests.support.postgres import PostgresServer


@pytest.fixture
def pg(tmp_path, isolated_env, postgres_server):
    case = PgCase(postgres_server, tmp_path, **BASE_BACKUP_SETTINGS)
    yield case
    case.cleanup()


def _base_backup(pg: PgCase):
    assert pg.cli("backup", "postgres", "--mode", "base") == ExitCode.OK
    with pg.workspace() as workspace:
        backup_set = workspace.catalog.get_backup_set("latest", "postgres")
        (artifact,) = workspace.catalog.artifacts_of(backup_set.id)
        return backup_set, artifact, workspace.local_root / artifact.relpath


def _nothing_beside(folder) -> bool:
    return not folder.exists() and not [p for p in folder.parent.iterdir() if folder.name in p.name]


def test_base_backup_records_its_wal_and_restores_into_a_server_of_its_own(pg, tmp_path, capsys):
    source = pg.server
    backup_set, artifact, _ = _base_backup(pg)
    meta = artifact.metadata
    assert artifact.mode == "base" and artifact.relpath.endswith("_base.tar.zst.enc")
    system_id, timeline = source.execute(
        "SELECT system_identifier, (SELECT timeline_id FROM pg_control_checkpoint()) "
        "FROM pg_control_system()"
    )[0]
    assert meta["system_identifier"] == str(system_id) and meta["timeline"] == timeline
    start, stop = meta["start_lsn"], meta["stop_lsn"]
    assert source.execute("SELECT %s::pg_lsn < %s::pg_lsn", (start, stop)) == [(True,)]
    assert meta["start_time"].endswith("+00:00") and meta["stop_time"] >= meta["start_time"]
    assert meta["server_version"].startswith("15") and meta["manifest"] is True
    assert f"WAL {start} to {stop}, timeline {timeline}" in capsys.readouterr().out
    rows_then = pg.fingerprint()

    later = "INSERT INTO app.users (email, name) VALUES ('later@example.com', 'later')"
    source.execute(later, dbname=pg.source)
    pgdata = tmp_path / "restored"
    pgdata.mkdir()  # an empty folder is taken
    assert pg.cli("restore", "postgres", backup_set.id, "--pgdata", str(pgdata)) == ExitCode.OK
    assert "match the backup's manifest (pg_verifybackup agrees" in capsys.readouterr().out
    assert (pgdata / "PG_VERSION").is_file() and pgdata.stat().st_mode & 0o777 == 0o700
    assert pgdata.stat().st_uid == os.geteuid()
    copy = PostgresServer(data_source=pgdata)
    try:
        copy.start()
        assert fingerprint(copy, pg.source) == rows_then  # as of the backup's end
    finally:
        copy.close()


def test_a_folder_with_files_or_a_live_server_is_refused(pg, tmp_path, capsys):
    backup_set, _, _ = _base_backup(pg)
    capsys.readouterr()
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    assert pg.cli("restore", "postgres", backup_set.id, "--pgdata", str(busy)) != ExitCode.OK
    assert "the folder is not empty; nothing was changed" in capsys.readouterr().err
    assert [p.name for p in busy.iterdir()] == ["keep.txt"]
    with pg.workspace() as workspace:  # the console's database wizard does not offer it
        assert restorable_sets(workspace.catalog, "postgres") == []
    assert pg.cli("restore", "postgres", "latest") != ExitCode.OK
    assert (  # `latest` of a database restore is a dump: there is none yet
        f"no PostgreSQL dump backup yet; the newest base backup is {backup_set.id}: restore it "
        "with --pgdata DIR"
    ) in capsys.readouterr().err
    empty = tmp_path / "empty"
    code = pg.cli("restore", "postgres", backup_set.id, "--pgdata", str(empty), "--dry-run")
    assert code == ExitCode.OK and not empty.exists()
    assert f"would lay out base backup postgres/{backup_set.id}" in capsys.readouterr().out

    live = tmp_path / "live"
    live.mkdir()
    (live / "postmaster.pid").write_text(f"{os.getpid()}\n{live}\n")
    assert pg.cli("restore", "postgres", backup_set.id, "--pgdata", str(live)) != ExitCode.OK
    err = capsys.readouterr().err
    assert f"a PostgreSQL server (pid {os.getpid()}) runs on this folder" in err
    assert len(err.strip().splitlines()) == 1


def test_a_damaged_or_swapped_base_backup_is_refused_and_leaves_nothing(pg, tmp_path, capsys):
    first, _, first_file = _base_backup(pg)
    _, _, second_file = _base_backup(pg)
    original = first_file.read_bytes()
    target = tmp_path / "new" / "pgdata"

    shutil.copyfile(second_file, first_file)  # another set's base backup under this name
    assert pg.cli("restore", "postgres", first.id, "--pgdata", str(target)) != ExitCode.OK
    assert "it was swapped or copied from elsewhere" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()

    damaged = bytearray(original)
    damaged[len(damaged) * 3 // 4] ^= 0xFF
    first_file.write_bytes(bytes(damaged))
    assert pg.cli("restore", "postgres", first.id, "--pgdata", str(target)) != ExitCode.OK
    assert "failed authentication" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()
    # A damaged file picked by hand is only found damaged half way through the extraction.
    picked = tmp_path / "downloaded" / first_file.name
    picked.parent.mkdir()
    picked.write_bytes(bytes(damaged))
    sidecar = sidecar_path_for(first_file)
    shutil.copyfile(sidecar, picked.with_name(sidecar.name))
    assert pg.cli("restore", "postgres", str(picked), "--pgdata", str(target)) != ExitCode.OK
    assert "failed authentication" in capsys.readouterr().err
    assert "extracting" in pg.job_log() and not (tmp_path / "new").exists()

    first_file.write_bytes(original)
    assert pg.cli("verify", first.id, "--read-data") == ExitCode.OK
    assert "files match its manifest" in pg.job_log()
    assert pg.cli("drill") == ExitCode.OK  # the restore drill lays the newest one out
    assert "into a scratch folder" in pg.job_log()


def test_the_tar_walk_finds_a_file_that_differs_from_the_manifest(pg):
    _, _, path = _base_backup(pg)

    with pg.workspace() as workspace:
        walk = BaseTarWalk()
        for block in PlainBlocks(path, workspace.keyring()):
            walk.feed(block.replace(b"START TIMELINE: 1", b"START TIMELINE: 7"))
    assert walk.problems() == ["backup_label: its SHA-256 differs from the manifest's"]


def test_a_server_that_cannot_give_a_base_backup_is_one_line(pg, tmp_path, capsys):
    pg.server.execute("DROP ROLE IF EXISTS jarvis_no_replication")
    pg.server.execute("CREATE ROLE jarvis_no_replication LOGIN")
    try:
        env = write_env_file(
            tmp_path / "plain.env", tmp_path, pg.server, pg.source,
            POSTGRES_USER="jarvis_no_replication",
        )  # fmt: skip
        pg.env_file = env
        assert pg.cli("backup", "postgres", "--mode", "base") != ExitCode.OK
        err = capsys.readouterr().err.strip()
        assert 'ALTER ROLE "jarvis_no_replication" REPLICATION' in err
        assert len(err.splitlines()) == 1
    finally:
        pg.server.execute("DROP ROLE jarvis_no_replication")

    minimal = PostgresServer(
        settings={"wal_level": "minimal", "max_wal_senders": "0", "archive_mode": "off"}
    )
    try:
        minimal.start()
        pg.env_file = write_env_file(tmp_path / "minimal.env", tmp_path, minimal, "postgres")
        assert pg.cli("backup", "postgres", "--mode", "base") != ExitCode.OK
        err = capsys.readouterr().err.strip()
        assert "wal_level=minimal, which allows no base backup: set wal_level = replica" in err
        assert len(err.splitlines()) == 1
    finally:
        minimal.close()


@pytest.mark.parametrize(
    ("stop_time", "target", "before"),
    [
        ("2026-12-06T01:23:04+00:00", "2026-12-06 01:23:04.500+00", False),  # within its second
        ("2026-12-06T01:23:04+00:00", "2026-12-06 01:23:05+00", True),
        ("2026-12-06T01:23:04.250000+00:00", "2026-12-06 01:23:04.500+00", True),
        ("2026-12-06T01:23:04.750000+00:00", "2026-12-06 01:23:04.500+00", False),
    ],
)
def test_a_whole_second_stop_time_counts_as_the_end_of_its_second(stop_time, target, before):
    """PostgreSQL gives a base backup's stop time to the second only (base_backup says why),
    so the backup may have ended anywhere within that second."""
    assert ended_before({"stop_time": stop_time}, PitrTarget("time", target)) is before
