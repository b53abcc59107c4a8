"""Asynchronous WAL archiving (issue #16, pgBackRest's archive-async): a real throwaway
cluster whose archive_command is our wal-push; the worker it starts pushes the `.ready`
files ahead, and each wal-push call answers from the worker's marks."""

import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from engines.pipeline.crypto import generate_key_hex
from engines.pitr.wal_push_queue import (
    DEFAULT_SETTINGS,
    LAUNCHER_WAIT_S,
    env_identity,
    ready_names,
    want,
    write_mark,
)
from engines.pitr.wal_spools import PUSH_FOLDER
from engines.pitr.wal_worker import LOCK_NAME, hold_lock, worker_running
from engines.servers.process import credentials, reachable_by
from jarvis_tui.cli import main
from jarvis_tui.launch import answered_at_once
from tests.support.postgres import PostgresServer
from tests.support.processes import wait_until
from tests.support.s3 import S3Server
from tests.support.s3_faults import FaultyS3Proxy

REPO_ROOT = Path(__file__).resolve().parent.parent
JARVIS = str(Path(sys.executable).parent / "jarvis-tui")
SYSTEM_PYTHON = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")
WAIT_S = 90  # generous: two cores shared with other test runs


def _server_argv(pg: PostgresServer) -> list[str]:
    """jarvis-tui as PostgreSQL's account runs it (see test_pitr_archive.archive_command)."""
    if reachable_by(pg.account, Path(sys.executable).resolve()):
        return [JARVIS]
    if not SYSTEM_PYTHON.is_file():
        pytest.skip(f"the server's account cannot run {sys.executable}")
    packages = next(Path(sys.prefix).glob("lib/python3*/site-packages"))
    return ["env", f"PYTHONPATH={REPO_ROOT}:{packages}", str(SYSTEM_PYTHON), "-m",
            "jarvis_tui.launch"]  # fmt: skip


class Archive:
    def __init__(self, root: Path, pg: PostgresServer) -> None:
        self.root = root
        self.pg = pg
        self.repository = root / "repository"
        self.env_file = root / "jarvis.env"
        self.settings = ""
        self.pg_wal = pg.data_dir / "pg_wal"
        self.push_folder = self.pg_wal / PUSH_FOLDER

    def configure(self, extra: str = "") -> None:
        """Settings for the next worker: the running one is ended (it read the old ones)."""
        self.env_file.write_text(self.settings + extra)
        self.stop_worker()

    def worker_pid(self) -> int | None:
        try:
            text = (self.push_folder / LOCK_NAME).read_text().strip()
        except FileNotFoundError:
            return None
        pid = int(text.split()[0]) if text else None
        return pid if pid is not None and _alive(pid) else None

    def stop_worker(self) -> None:
        pid = self.worker_pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            wait_until(lambda: not _alive(pid), WAIT_S, "the worker's end")

    def switch(self) -> str:
        self.pg.execute("CREATE TABLE IF NOT EXISTS t (x int); INSERT INTO t VALUES (1)")
        return self.pg.execute("SELECT pg_walfile_name(pg_switch_wal())")[0][0]

    def archiver(self) -> tuple[str, int]:
        """(last archived WAL file, failures so far) from pg_stat_archiver."""
        row = self.pg.execute("SELECT last_archived_wal, failed_count FROM pg_stat_archiver")[0]
        return row[0] or "", row[1]

    def wait_archived(self, name: str) -> None:
        wait_until(lambda: self.archiver()[0] >= name, WAIT_S, f"{name} archived")

    def stored(self, name: str) -> list[Path]:
        return list(self.repository.glob(f"wal/*/00000001/{name}.*"))

    def fetched(self, name: str, folder: Path) -> bytes:
        dest = folder / "pg_wal" / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        assert main(["--env-file", str(self.env_file), "wal-fetch", name, str(dest)]) == 0
        return dest.read_bytes()

    def source(self, name: str) -> bytes:
        return (self.pg_wal / name).read_bytes()  # kept: wal_keep_size

    def marks(self, suffix: str) -> list[str]:
        return sorted(p.name for p in self.push_folder.glob(f"*{suffix}"))

    def push_as_server(self, name: str) -> subprocess.CompletedProcess:
        """wal-push as PostgreSQL's archiver calls it: its account, in the data folder."""
        argv = [*_server_argv(self.pg), "--env-file", str(self.env_file), "wal-push"]
        return subprocess.run(
            [*argv, f"pg_wal/{name}"], capture_output=True, text=True, timeout=WAIT_S,
            cwd=self.pg.data_dir, **credentials(self.pg.account),
        )  # fmt: skip


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (our own child) has ended
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


@pytest.fixture(scope="module")
def archive():
    root = Path(tempfile.mkdtemp(prefix="jarvis-async-", dir="/tmp"))
    os.chmod(root, 0o755)
    try:
        with PostgresServer(settings={"wal_keep_size": "2GB"}) as pg:
            found = Archive(root, pg)
            found.settings = (
                f"BACKUP_DIR={found.repository}\nBACKUP_CATALOG_PATH={root / 'catalog.db'}\n"
                f"BACKUP_LOG_DIR={root / 'logs'}\nBACKUP_ENCRYPTION_KEY={generate_key_hex()}\n"
                f"DATABASE_URL={pg.url()}\nBACKUP_WAL_PUSH_TIMEOUT=30\n"
            )
            found.env_file.write_text(found.settings)
            found.repository.mkdir()
            pg.give_access(root)
            command = shlex.join([*_server_argv(pg), "--env-file", str(found.env_file)])
            pg.execute(f"ALTER SYSTEM SET archive_command = '{command} wal-push %p'")
            pg.execute("SELECT pg_reload_conf()")
            found.wait_archived(found.switch())
            yield found
            found.stop_worker()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_many_switched_segments_arrive_once_each_and_whole(archive: Archive, tmp_path) -> None:
    names = [archive.switch() for _ in range(16)]
    archive.wait_archived(names[-1])
    for name in names:
        assert len(archive.stored(name)) == 1, name
        assert archive.fetched(name, tmp_path) == archive.source(name), name
    assert archive.worker_pid() is not None  # the archiver went through the worker
    wait_until(lambda: not archive.marks(".ok"), WAIT_S, "every .ok consumed")
    assert archive.marks(".error") == []


def test_a_failing_repository_gives_errors_then_the_same_segments_arrive_once(
    archive: Archive, tmp_path
) -> None:
    first = archive.switch()
    archive.wait_archived(first)
    timeline = archive.stored(first)[0].parent
    failures = archive.archiver()[1]
    timeline.chmod(0o555)  # PostgreSQL's account can no longer store anything there
    try:
        names = [archive.switch() for _ in range(3)]
        wait_until(lambda: archive.archiver()[1] > failures, WAIT_S, "the archiver's failure")
        result = archive.push_as_server(names[0])
        assert result.returncode != 0
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert "could not store it" in lines[0] and "permission denied" in lines[0]
        assert "Traceback" not in result.stderr
        assert archive.archiver()[0] < names[0]
        assert not [name for name in names if archive.stored(name)]
        assert not [m for m in archive.marks(".ok") if m[:24] in names]
    finally:
        timeline.chmod(0o700)
    later = archive.switch()  # wakes the archiver, which tries the oldest first
    archive.wait_archived(later)
    for name in [*names, later]:
        assert len(archive.stored(name)) == 1, name
        assert archive.fetched(name, tmp_path) == archive.source(name), name
    wait_until(lambda: not archive.marks(".ok") and not archive.marks(".error"), WAIT_S,
               "the marks consumed or cleaned up")  # fmt: skip


def test_a_worker_killed_mid_push_leaves_nothing_partial_and_a_new_one_finishes(
    archive: Archive, s3_server: S3Server
) -> None:
    bucket = s3_server.create_bucket("jarvis-async")
    with FaultyS3Proxy(s3_server.endpoint_url) as proxy:
        archive.configure(
            f"S3_ENABLED=true\nS3_BUCKET={bucket}\nS3_ACCESS_KEY=testing\n"
            f"S3_SECRET_KEY=testing\nS3_ENDPOINT_URL={proxy.endpoint_url}\n"
        )
        try:
            proxy.stall(("PUT", "POST"))  # the copy to S3 hangs
            name = archive.switch()
            wait_until(lambda: proxy.served["stall"] >= 1, WAIT_S, "the stalled upload")
            pid = archive.worker_pid()
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            wait_until(lambda: not _alive(pid), WAIT_S, "the killed worker's end")
            listed = s3_server.client().list_objects_v2(Bucket=bucket).get("Contents", [])
            assert not [item for item in listed if name in item["Key"]]
            assert archive.archiver()[0] < name
            proxy.heal()
            # The archiver's wal-push, still waiting, starts a new worker.
            archive.wait_archived(name)
            assert archive.worker_pid() not in (None, pid)
            listed = s3_server.client().list_objects_v2(Bucket=bucket)["Contents"]
            (stored,) = archive.stored(name)
            keys = [item["Key"] for item in listed if name in item["Key"]]
            assert keys == [stored.relative_to(archive.repository).as_posix()]
            body = s3_server.client().get_object(Bucket=bucket, Key=keys[0])["Body"].read()
            assert body == stored.read_bytes()
        finally:
            proxy.heal()
            archive.configure()


def test_a_stuck_push_ends_its_worker_within_the_timeout(
    archive: Archive, s3_server: S3Server
) -> None:
    bucket = s3_server.create_bucket("jarvis-stuck")
    with FaultyS3Proxy(s3_server.endpoint_url) as proxy:
        s3 = (
            f"S3_ENABLED=true\nS3_BUCKET={bucket}\nS3_ACCESS_KEY=testing\n"
            f"S3_SECRET_KEY=testing\nS3_ENDPOINT_URL={proxy.endpoint_url}\n"
        )
        archive.configure(s3 + "BACKUP_WAL_PUSH_TIMEOUT=3\n")
        try:
            proxy.stall(("PUT", "POST"))
            name = archive.switch()
            wait_until(lambda: proxy.served["stall"] >= 1, WAIT_S, "the stalled upload")
            pid = archive.worker_pid()
            assert pid is not None
            wait_until(lambda: not _alive(pid), WAIT_S, "the stuck worker's own end")
            started = time.monotonic()
            result = archive.push_as_server(name)
            # Its bound, the launcher's wait on a (new, stuck) worker, start-ups.
            assert time.monotonic() - started < 3 + LAUNCHER_WAIT_S + 10
            assert result.returncode != 0
            assert "3 s (BACKUP_WAL_PUSH_TIMEOUT)" in result.stderr
            assert len(result.stderr.strip().splitlines()) == 1, result.stderr
            assert archive.archiver()[0] < name
            proxy.heal()
            archive.configure(s3)  # 3 s is too short for a 16 MiB copy on a loaded machine
            # As the archiver's next try (after three failures it may rest a minute).
            # As the archiver's next try (after three failures it may rest a minute); should
            # the archiver's own call take the answer, this one pushes the file itself.
            result = archive.push_as_server(name)
            assert result.returncode == 0, result.stderr
            (stored,) = archive.stored(name)
            listed = s3_server.client().list_objects_v2(Bucket=bucket)["Contents"]
            key = stored.relative_to(archive.repository).as_posix()
            assert [item["Key"] for item in listed if name in item["Key"]] == [key]
        finally:
            proxy.heal()
            archive.configure()


def test_one_worker_per_pg_wal_and_stale_marks_are_removed(archive: Archive, tmp_path) -> None:
    pg_wal = tmp_path / "pg_wal"
    (pg_wal / "archive_status").mkdir(parents=True)
    marks = pg_wal / PUSH_FOLDER
    marks.mkdir()
    waiting = "000000010000000000000042"
    (pg_wal / "archive_status" / f"{waiting}.ready").touch()
    (marks / f"{waiting}.ok").touch()  # stored, not yet asked for: kept
    for stale in ("000000010000000000000041.ok", "000000010000000000000040.error"):
        (marks / stale).touch()  # their .ready is gone
    foreign = "000000010000000000000043"  # acknowledged by a worker with another env file
    (pg_wal / "archive_status" / f"{foreign}.ready").touch()
    (marks / f"{foreign}.ok").write_text("/elsewhere/other.env\n")
    (marks / f".{waiting}.ok.tmp-999").touch()  # a dead worker's half-written mark
    argv = [sys.executable, "-m", "jarvis_tui.cli", "--env-file", str(archive.env_file),
            "wal-push", "--worker", str(pg_wal)]  # fmt: skip
    workers = [subprocess.Popen(argv, stderr=subprocess.PIPE) for _ in range(2)]
    try:
        wait_until(lambda: any(w.poll() is not None for w in workers), WAIT_S, "one ends")
        (ended,) = [w for w in workers if w.poll() is not None]
        (running,) = [w for w in workers if w is not ended]
        assert ended.returncode == 0 and ended.stderr.read() == b""
        wait_until(lambda: (marks / LOCK_NAME).read_text().split()[:1] == [str(running.pid)],
                   WAIT_S, "the running worker's lock")  # fmt: skip
        # The foreign mark's file is pushed again: it is not in this fake pg_wal.
        left = [f"{waiting}.ok", f"{foreign}.error", "wanted", LOCK_NAME]
        wait_until(lambda: sorted(p.name for p in marks.iterdir()) == left, WAIT_S,
                   "the stale and foreign marks removed")  # fmt: skip
        reason = (marks / f"{foreign}.error").read_text()
        assert f"{foreign}: no such file or folder" in reason and reason.count("\n") == 1
        # archive_command names another env file: its callers ask this worker to end.
        want(pg_wal, "/elsewhere/other.env")
        assert running.wait(timeout=WAIT_S) == 0
        workers.append(subprocess.Popen(argv))  # started by one of those callers
        wait_until(lambda: worker_running(marks), WAIT_S, "the new worker")
        shutil.rmtree(pg_wal / "archive_status")  # the cluster went away
        assert workers[-1].wait(timeout=WAIT_S) == 0
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()


def test_wal_push_by_hand_or_with_async_off_pushes_in_the_call(archive: Archive, tmp_path) -> None:
    name = archive.switch()
    archive.wait_archived(name)
    copy = tmp_path / "pg_wal" / name
    copy.parent.mkdir()
    shutil.copy(archive.pg_wal / name, copy)  # no archive_status: not PostgreSQL's queue
    assert main(["--env-file", str(archive.env_file), "wal-push", str(copy)]) == 0
    assert not (tmp_path / "pg_wal" / PUSH_FOLDER).exists()
    # In PostgreSQL's queue, but asynchronous archiving is off: pushed by the call too.
    (copy.parent / "archive_status").mkdir()
    (copy.parent / "archive_status" / f"{name}.ready").touch()
    env_file = tmp_path / "sync.env"
    env_file.write_text(archive.settings + "BACKUP_WAL_ASYNC=false\n")
    assert main(["--env-file", str(env_file), "wal-push", str(copy)]) == 0
    assert not (tmp_path / "pg_wal" / PUSH_FOLDER).exists()
    assert len(archive.stored(name)) == 1


def test_ready_files_are_taken_in_the_archivers_order(tmp_path) -> None:
    status = tmp_path / "pg_wal" / "archive_status"
    status.mkdir(parents=True)
    names = ["000000020000000000000003", "000000010000000000000002.00000028.backup",
             "00000002.history", "000000010000000000000002",
             "000000010000000000000003.partial"]  # fmt: skip
    for name in names:
        (status / f"{name}.ready").touch()
    (status / "000000010000000000000001.done").touch()
    assert ready_names(tmp_path / "pg_wal") == [
        "00000002.history", "000000010000000000000002",
        "000000010000000000000002.00000028.backup", "000000010000000000000003.partial",
        "000000020000000000000003",
    ]  # fmt: skip


def test_the_launcher_waits_on_a_running_worker_and_leaves_the_rest_to_the_program(
    tmp_path,
) -> None:
    pg_wal = tmp_path / "pg_wal"
    (pg_wal / "archive_status").mkdir(parents=True)
    name = "000000010000000000000007"
    (pg_wal / "archive_status" / f"{name}.ready").touch()
    words = ["wal-push", str(pg_wal / name)]
    assert not answered_at_once(words)  # no worker: the program starts one
    (pg_wal / PUSH_FOLDER).mkdir()
    lock = hold_lock(pg_wal / PUSH_FOLDER, DEFAULT_SETTINGS)  # this test is the worker now
    try:
        assert lock is not None and worker_running(pg_wal / PUSH_FOLDER)
        acknowledge = threading.Timer(0.1, write_mark, (pg_wal, name, ".ok"))
        acknowledge.start()
        assert answered_at_once(words)
        acknowledge.join()
        assert not (pg_wal / PUSH_FOLDER / f"{name}.ok").exists()
        # A worker running with other settings (the default ones here) is not waited on.
        started = time.monotonic()
        assert not answered_at_once(["--env-file", "mine.env", *words])
        assert time.monotonic() - started < LAUNCHER_WAIT_S
        # A mark of a worker running with another env file is no answer to this call.
        write_mark(pg_wal, name, ".ok", "/elsewhere/other.env\n")
        assert not answered_at_once(["--env-file", "mine.env", *words])
        write_mark(pg_wal, name, ".ok", env_identity("mine.env") + "\n")
        assert answered_at_once(["--env-file", "mine.env", *words])
        write_mark(pg_wal, name, ".error", "no space left\n")
        assert not answered_at_once(words)  # the program reports the reason
        assert (pg_wal / PUSH_FOLDER / f"{name}.error").exists()
    finally:
        os.close(lock)
    assert not worker_running(pg_wal / PUSH_FOLDER)
