"""WAL archiving (issue #16): a real throwaway cluster whose archive_command is our
wal-push (the venv's jarvis-tui, as PostgreSQL's own account), and wal-fetch's codes."""

import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from engines.pipeline.crypto import generate_key_hex
from engines.pitr.wal_deadline import HARD_STOP_GRACE_S
from engines.servers.process import reachable_by
from jarvis_tui.cli import main
from tests.support.file_systems import needs_root, remount_read_only, tmpfs
from tests.support.postgres import PostgresServer
from tests.support.s3 import S3Server
from tests.support.s3_faults import FaultyS3Proxy, without_retry_waits

REPO_ROOT = Path(__file__).resolve().parent.parent
JARVIS = str(Path(sys.executable).parent / "jarvis-tui")
SYSTEM_PYTHON = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")


def archive_command(pg: PostgresServer, env_file: Path) -> str:
    """The venv's jarvis-tui wal-push as PostgreSQL's account runs it. Under root the server
    runs as an unprivileged account, which cannot reach an interpreter under /root (pyenv):
    then the same code through the system's Python of the same version."""
    jarvis = JARVIS
    if not reachable_by(pg.account, Path(sys.executable).resolve()):
        if not SYSTEM_PYTHON.is_file():
            pytest.skip(f"the server's account cannot run {sys.executable}")
        packages = next(Path(sys.prefix).glob("lib/python3*/site-packages"))
        jarvis = f"env PYTHONPATH={REPO_ROOT}:{packages} {SYSTEM_PYTHON} -m jarvis_tui.launch"
    return f"'{jarvis} --env-file {env_file} wal-push %p'"


class Archive:
    def __init__(self, root: Path, pg: PostgresServer) -> None:
        self.root = root
        self.pg = pg
        self.repository = root / "repository"
        self.env_file = root / "jarvis.env"

    def cli(self, *args: str, env_file: Path | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [JARVIS, "--env-file", str(env_file or self.env_file), *args],
            capture_output=True, text=True, timeout=120, cwd=self.root,
        )  # fmt: skip

    def stored(self) -> dict[str, Path]:
        return {p.name.split(".")[0]: p for p in self.repository.glob("wal/*/*/*.enc")}

    def fetch(self, name: str, dest: Path) -> subprocess.CompletedProcess:
        return self.cli("wal-fetch", name, str(dest))


def _write_env(path: Path, repository: Path, key: str, url: str) -> None:
    path.write_text(
        f"BACKUP_DIR={repository}\nBACKUP_CATALOG_PATH={path.parent / 'catalog.db'}\n"
        f"BACKUP_LOG_DIR={path.parent / 'logs'}\nBACKUP_ENCRYPTION_KEY={key}\n"
        f"DATABASE_URL={url}\nBACKUP_WAL_PUSH_TIMEOUT=30\n"
    )


@pytest.fixture(scope="module")
def archive():
    # Under /tmp itself: PostgreSQL's account must reach the settings and the repository.
    root = Path(tempfile.mkdtemp(prefix="jarvis-pitr-", dir="/tmp"))
    os.chmod(root, 0o755)
    env_file = root / "jarvis.env"
    try:
        with PostgresServer() as pg:
            _write_env(env_file, root / "repository", generate_key_hex(), pg.url())
            (root / "repository").mkdir()
            pg.give_access(root)
            pg.execute(f"ALTER SYSTEM SET archive_command = {archive_command(pg, env_file)}")
            pg.execute("SELECT pg_reload_conf()")
            found = Archive(root, pg)
            result = found.cli("pitr", "check")
            assert result.returncode == 0, result.stderr + pg.log_path.read_text()[-1500:]
            yield found
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _switch(archive: Archive) -> str:
    archive.pg.execute("CREATE TABLE IF NOT EXISTS t (x int); INSERT INTO t VALUES (1)")
    return archive.pg.execute("SELECT pg_walfile_name(pg_switch_wal())")[0][0]


def _archived_segment(archive: Archive, tmp_path: Path) -> Path:
    """A segment switched, archived (pitr check waits for it) and fetched into pg_wal/."""
    name = _switch(archive)
    assert archive.cli("pitr", "check").returncode == 0
    segment = tmp_path / "pg_wal" / name
    segment.parent.mkdir()
    assert archive.fetch(name, segment).returncode == 0
    return segment


def test_pitr_check_confirms_a_switched_segment_arrived(archive: Archive) -> None:
    result = archive.cli("pitr", "check")
    assert result.returncode == 0, result.stderr
    assert "reached the archive" in result.stdout
    segment = result.stdout.split("segment ")[1].split()[0]
    assert segment in archive.stored()


def test_pitr_setup_prints_the_archive_settings(archive: Archive) -> None:
    result = archive.cli("pitr", "setup")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "wal_level = replica" in lines and "archive_mode = on" in lines
    assert "archive_timeout = 60s" in lines
    assert "wal-push %p'" in result.stdout and str(archive.env_file) in result.stdout


def test_fetch_writes_the_segment_and_says_1_when_missing(archive: Archive, tmp_path) -> None:
    name = _switch(archive)
    assert archive.cli("pitr", "check").returncode == 0
    dest = tmp_path / "pg_wal" / "RECOVERYXLOG"
    dest.parent.mkdir()
    assert archive.fetch(name, dest).returncode == 0
    assert dest.stat().st_size == 16 * 1024 * 1024
    assert dest.read_bytes()[:2] != b"\0\0"
    missing = archive.fetch("0000000100000099000000FF", tmp_path / "pg_wal" / "gone")
    assert missing.returncode == 1, missing.stderr
    assert not (tmp_path / "pg_wal" / "gone").exists()


def test_push_again_is_idempotent_and_other_content_fails(archive: Archive, tmp_path) -> None:
    segment = _archived_segment(archive, tmp_path)
    again = archive.cli("wal-push", str(segment))
    assert again.returncode == 0, again.stderr
    data = bytearray(segment.read_bytes())
    data[8 * 1024 * 1024] ^= 0xFF
    segment.write_bytes(bytes(data))
    other = archive.cli("wal-push", str(segment))
    assert other.returncode != 0
    assert "different file" in other.stderr


def test_forged_segments_are_refused_and_nothing_written(archive: Archive, tmp_path) -> None:
    first, second = _switch(archive), _switch(archive)
    assert archive.cli("pitr", "check").returncode == 0
    stored = archive.stored()
    forged_name = "0000000100000077000000AA"
    renamed = stored[second].with_name(stored[first].name.replace(first, forged_name))
    shutil.copy(stored[first], renamed)
    dest = tmp_path / "pg_wal" / "RECOVERYXLOG"
    dest.parent.mkdir()
    result = archive.fetch(forged_name, dest)
    assert result.returncode >= 126 and "not the artifact asked for" in result.stderr
    assert not dest.exists()
    # Another cluster's recovery (its pg_control names another system id) asks for it.
    system_id = int(stored[first].parent.parent.name)
    other = stored[first].parent.parent.parent / str(system_id + 1) / "00000001"
    other.mkdir(parents=True)
    shutil.copy(stored[first], other / stored[first].name)
    (tmp_path / "global").mkdir()
    (tmp_path / "global" / "pg_control").write_bytes(struct.pack("<Q", system_id + 1))
    result = archive.fetch(first, dest)
    assert result.returncode >= 126 and f"system_id {system_id}" in result.stderr
    assert not dest.exists()
    # A segment of another cluster is refused by wal-push too.
    assert archive.fetch(first, tmp_path / "mine").returncode == 0
    data = bytearray((tmp_path / "mine").read_bytes())
    data[24:32] = struct.pack("<Q", system_id + 1)
    (tmp_path / "pg_wal" / first).write_bytes(bytes(data))
    pushed = archive.cli("wal-push", str(tmp_path / "pg_wal" / first))
    assert pushed.returncode != 0 and f"archive takes WAL of cluster {system_id}" in pushed.stderr
    shutil.rmtree(other.parent)
    renamed.unlink()


def test_a_damaged_stored_segment_stops_recovery(archive: Archive, tmp_path) -> None:
    name = _switch(archive)
    assert archive.cli("pitr", "check").returncode == 0
    stored = archive.stored()[name]
    data = stored.read_bytes()
    stored.write_bytes(data[: len(data) // 2])
    dest = tmp_path / "RECOVERYXLOG"
    result = archive.fetch(name, dest)
    assert result.returncode >= 126, result.stderr
    assert "truncated" in result.stderr
    assert not dest.exists()
    stored.write_bytes(data)


@needs_root
def test_push_into_a_read_only_repository_fails_and_leaves_nothing(
    archive: Archive, tmp_path
) -> None:
    segment = _archived_segment(archive, tmp_path)
    with tmpfs(tmp_path / "ro", "4m") as folder:
        shutil.copytree(archive.repository, folder / "repository", dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("*.enc"))  # fmt: skip
        shutil.copy(next(archive.repository.glob("wal/cluster.*")), folder / "repository/wal")
        env_file = tmp_path / "ro.env"
        settings = archive.env_file.read_text()
        env_file.write_text(settings.replace(str(archive.repository), str(folder / "repository")))
        remount_read_only(folder)
        result = archive.cli("wal-push", str(segment), env_file=env_file)
        assert result.returncode != 0
        assert "read-only" in result.stderr.lower()
        assert not list((folder / "repository").rglob(f"{segment.name}*"))


def _s3_env(archive: Archive, tmp_path: Path, repository: Path, bucket: str, url: str) -> Path:
    env_file = tmp_path / "s3.env"
    settings = archive.env_file.read_text().replace(str(archive.repository), str(repository))
    env_file.write_text(
        f"{settings}S3_ENABLED=true\nS3_BUCKET={bucket}\nS3_ACCESS_KEY=testing\n"
        f"S3_SECRET_KEY=testing\nS3_ENDPOINT_URL={url}\n"
    )
    return env_file


def test_a_push_retried_after_a_failed_s3_upload_stores_it_once(
    archive: Archive, tmp_path, s3_server: S3Server, monkeypatch
) -> None:
    without_retry_waits(monkeypatch)
    segment = _archived_segment(archive, tmp_path)
    name = segment.name
    bucket = s3_server.create_bucket("jarvis-wal")
    with FaultyS3Proxy(s3_server.endpoint_url) as proxy:
        repository = tmp_path / "repository"
        env_file = _s3_env(archive, tmp_path, repository, bucket, proxy.endpoint_url)
        push = ["--env-file", str(env_file), "wal-push", str(segment)]
        proxy.fail(math.inf)  # 503 Slow Down for every upload
        assert main(push) != 0
        (stored,) = repository.glob(f"wal/*/00000001/{name}.*")
        written = stored.stat().st_mtime_ns
        listed = s3_server.client().list_objects_v2(Bucket=bucket).get("Contents", [])
        assert not [item for item in listed if name in item["Key"]]
        proxy.heal()
        assert main(push) == 0
        assert main(push) == 0
        assert stored.stat().st_mtime_ns == written  # never rewritten
        listed = s3_server.client().list_objects_v2(Bucket=bucket)["Contents"]
        assert [item["Key"] for item in listed if name in item["Key"]] == [
            stored.relative_to(repository).as_posix()
        ]
        stored.unlink()  # the copy on S3 serves recovery when the repository lost it
        dest = tmp_path / "restored" / "pg_wal" / "RECOVERYXLOG"
        dest.parent.mkdir(parents=True)
        assert main(["--env-file", str(env_file), "wal-fetch", name, str(dest)]) == 0
        assert dest.read_bytes() == segment.read_bytes()


def test_pitr_setup_apply_writes_the_settings_and_moves_the_archive(
    archive: Archive, tmp_path
) -> None:
    repository = tmp_path / "repository"
    shutil.copytree(archive.repository, repository)  # the archive of another cluster
    with PostgresServer(settings={"archive_mode": "off"}) as pg:
        env_file = tmp_path / "other.env"
        settings = archive.env_file.read_text().replace(str(archive.repository), str(repository))
        env_file.write_text(settings.replace(archive.pg.url(), pg.url()))
        # --force: PostgreSQL's account may not reach this venv's Python or tmp_path here
        # (tests/test_pitr_setup_access.py); this test is about what --apply writes.
        result = archive.cli("pitr", "setup", "--apply", "--force", env_file=env_file)
        assert result.returncode == 0, result.stderr
        assert "restart PostgreSQL for archive_mode to take effect" in result.stdout
        system_id = pg.execute("SELECT system_identifier FROM pg_control_system()")[0][0]
        assert f"the archive now takes WAL of cluster {system_id}" in result.stdout
        written = (pg.data_dir / "postgresql.auto.conf").read_text()
        assert "archive_mode = 'on'" in written and "wal-push %p" in written
        assert pg.execute("SHOW archive_timeout")[0][0] == "1min"
        check = archive.cli("pitr", "check", env_file=env_file)
        assert check.returncode != 0
        assert "archiving is off on this server" in check.stderr


def test_a_history_file_is_archived_for_its_cluster_and_fetched_back(
    archive: Archive, tmp_path
) -> None:
    system_id = int(next(archive.repository.glob("wal/*/00000001")).parent.name)
    pgdata = tmp_path / "data"
    (pgdata / "global").mkdir(parents=True)
    (pgdata / "pg_wal").mkdir()
    (pgdata / "global" / "pg_control").write_bytes(struct.pack("<Q", system_id) + b"\0" * 8)
    history = pgdata / "pg_wal" / "00000002.history"
    history.write_text("1\t0/3000000\tno recovery target specified\n")
    assert archive.cli("wal-push", str(history)).returncode == 0
    assert list(archive.repository.glob(f"wal/{system_id}/00000002.history.*.enc"))
    dest = pgdata / "pg_wal" / "RECOVERYHISTORY"
    assert archive.fetch("00000002.history", dest).returncode == 0
    assert dest.read_bytes() == history.read_bytes()
    assert archive.fetch("00000009.history", dest).returncode == 1


def test_a_push_to_a_stalled_s3_ends_within_its_timeout(
    archive: Archive, tmp_path, s3_server: S3Server
) -> None:
    segment = _archived_segment(archive, tmp_path)
    bucket = s3_server.create_bucket("jarvis-stall")
    with FaultyS3Proxy(s3_server.endpoint_url) as proxy:
        env_file = _s3_env(archive, tmp_path, tmp_path / "repo", bucket, proxy.endpoint_url)
        env_file.write_text(env_file.read_text() + "BACKUP_WAL_PUSH_TIMEOUT=2\n")
        proxy.stall()  # S3 stops answering
        started = time.monotonic()
        result = archive.cli("wal-push", str(segment), env_file=env_file)
        assert time.monotonic() - started < 2 + HARD_STOP_GRACE_S + 3
        proxy.heal()
    assert result.returncode != 0
    assert "did not finish within 2 s" in result.stderr
