"""POST /api/backups, POST /api/backups/{id}/verify and the jobs endpoints, on a real
server with real backups (files, secrets, PostgreSQL).

A backup is held still, when a test needs one running, by a lock on one of the seeded
tables: pg_dump (in every mode) waits for it before writing a byte, so the job runs for
as long as the test holds the lock, on any machine, and carries on once it lets go.
"""

import contextlib
import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from engines.actions.verbs import VERBS, Request
from engines.jobs import CANCEL_POLL_INTERVAL_S, JobContext
from tests.support.api_server import TOKEN, ApiServer
from tests.support.files_env import REPO_ROOT, FilesEnv, child_env, make_secrets_env
from tests.support.pg_seed import seed_database, unique_name
from tests.support.postgres import PostgresServer

DEADLINE_S = 120.0
POLL_S = 0.1
HELD_TABLE = "app.users"


@pytest.fixture
def env(tmp_path: Path) -> FilesEnv:
    files = make_secrets_env(tmp_path)
    (files.data / "notes.txt").write_text("the quick brown fox\n")
    (files.data / "sub").mkdir()
    (files.data / "sub" / "data.bin").write_bytes(bytes(range(256)) * 64)
    files.set(JARVIS_API_TOKEN=TOKEN)
    return files


@pytest.fixture
def pg_env(env: FilesEnv, isolated_env, postgres_server: PostgresServer) -> Iterator[FilesEnv]:
    """The files env with a small seeded database as its PostgreSQL source."""
    database = unique_name("jarvis_api")
    seed_database(postgres_server, database, users=20, orders=40)
    env.set(
        POSTGRES_HOST=postgres_server.host,
        POSTGRES_PORT=str(postgres_server.port),
        POSTGRES_USER=postgres_server.user,
        POSTGRES_DB=database,
    )
    yield env
    postgres_server.drop_database(database)


@pytest.fixture
def server(env: FilesEnv) -> Iterator[ApiServer]:
    with ApiServer(env.env_file) as running:
        yield running


@pytest.fixture
def client(server: ApiServer) -> Iterator[httpx.Client]:
    with server.client() as opened:
        yield opened


@pytest.fixture(scope="module")
def idle_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A server shared by the tests that must start no job: its job list stays empty."""
    files = make_secrets_env(tmp_path_factory.mktemp("idle"))
    files.set(JARVIS_API_TOKEN=TOKEN)
    with ApiServer(files.env_file) as running, running.client() as opened:
        yield opened


def wait_for(client: httpx.Client, job_id: int) -> dict[str, Any]:
    """The job once it has finished."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(POLL_S)
    raise AssertionError(f"job {job_id} did not finish in {DEADLINE_S:g} s")


def started(client: httpx.Client, body: dict[str, Any], path: str = "/api/backups") -> int:
    answer = client.post(path, json=body)
    assert answer.status_code == 202, answer.text
    accepted = answer.json()
    assert answer.headers["Location"] == accepted["status_url"] == f"/api/jobs/{accepted['job_id']}"
    return accepted["job_id"]


def succeeded(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    job = wait_for(client, started(client, body))
    assert job["status"] == "succeeded", job
    return job


def cli_sets(env: FilesEnv) -> dict[str, str]:
    """`jarvis-tui list --json` in a process of its own: each set's status by id."""
    listed = env.cli_process("list", "--json")
    assert listed.returncode == 0, listed.stderr
    return {backup_set["id"]: backup_set["status"] for backup_set in json.loads(listed.stdout)}


def messages(job: dict[str, Any]) -> list[str]:
    return [event["message"] for event in job["log"]]


class HeldTable:
    """The seeded table locked against every reader until `release` (or the block's end)."""

    def __init__(self, env: FilesEnv):
        self.dsn = make_conninfo(
            host=env.settings["POSTGRES_HOST"],
            port=env.settings["POSTGRES_PORT"],
            user=env.settings["POSTGRES_USER"],
            dbname=env.settings["POSTGRES_DB"],
        )
        self.conn: psycopg.Connection | None = None

    def __enter__(self) -> "HeldTable":
        self.conn = psycopg.connect(self.dsn)
        self.conn.execute(f"LOCK TABLE {HELD_TABLE} IN ACCESS EXCLUSIVE MODE")
        return self

    def release(self) -> None:
        if self.conn is not None:
            self.conn.rollback()
            self.conn.close()
            self.conn = None

    def __exit__(self, *exc_info: object) -> None:
        self.release()


@contextlib.contextmanager
def child(argv: list[str]) -> Iterator[subprocess.Popen[str]]:
    """`argv` in its own process; killed at the block's end if it still runs (a failure)."""
    process = subprocess.Popen(
        argv,
        cwd=REPO_ROOT,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


def wait_for_dump_to_wait(env: FilesEnv, server: PostgresServer) -> float:
    """Once pg_dump waits for the held table: the monotonic time it was seen waiting."""
    query = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
        "AND application_name = 'pg_dump' AND wait_event_type = 'Lock'"
    )
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        if server.execute(query, (env.settings["POSTGRES_DB"],))[0][0]:
            return time.monotonic()
        time.sleep(POLL_S)
    raise AssertionError("pg_dump never waited for the held table")


def running_backup(client: httpx.Client) -> dict[str, Any]:
    """The running backup job, once there is one (whoever started it)."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        jobs = client.get("/api/jobs", params={"status": "running"}).json()
        backups = [job for job in jobs if job["kind"] == "backup"]
        if backups:
            return backups[0]
        time.sleep(POLL_S)
    raise AssertionError("no backup job appeared")


def test_a_files_backup_started_by_the_api_is_in_the_cli_list(
    env: FilesEnv, client: httpx.Client
) -> None:
    job = succeeded(client, {"type": "files"})
    assert job["kind"] == "backup" and job["description"] == "backup files"
    assert cli_sets(env)[job["set_id"]] == "complete"
    assert job["set_url"] == f"/api/backups/{job['set_id']}"
    assert job["error"] is None and job["cancel_requested"] is False
    assert job["started_at"].endswith("+00:00") and job["finished_at"] >= job["started_at"]
    assert job["elapsed_s"] >= 0
    assert job["progress"]["done"] > 0
    assert messages(job)[0] == "started backup: backup files"
    assert messages(job)[-1].startswith("succeeded in ")
    # The log's tail: the last events, in order; none when asked for none.
    last = client.get(f"/api/jobs/{job['id']}", params={"tail": 1}).json()["log"]
    assert [event["message"] for event in last] == messages(job)[-1:]
    assert last[0]["level"] == "info" and last[0]["time"].endswith("+00:00")
    assert client.get(f"/api/jobs/{job['id']}", params={"tail": 0}).json()["log"] == []
    # The job list: newest first, filtered by status.
    assert [j["id"] for j in client.get("/api/jobs").json()] == [job["id"]]
    assert client.get("/api/jobs", params={"status": "running"}).json() == []
    assert client.get("/api/jobs", params={"status": "succeeded"}).json()[0]["id"] == job["id"]


def test_full_then_incremental(env: FilesEnv, client: httpx.Client) -> None:
    full = succeeded(client, {"type": "full"})
    assert full["description"] == "backup full"
    incremental = succeeded(client, {"type": "incremental"})
    assert incremental["description"] == "backup files (incremental)"
    # Nothing changed since the full backup's files part: every file is skipped.
    assert any("reading 0 (0 bytes), 2 unchanged" in line for line in messages(incremental))
    sets = cli_sets(env)
    assert sets[full["set_id"]] == sets[incremental["set_id"]] == "complete"
    jobs = client.get("/api/jobs", params={"limit": 1}).json()
    assert [job["id"] for job in jobs] == [incremental["id"]]


def test_a_postgres_schema_backup(pg_env: FilesEnv, client: httpx.Client) -> None:
    job = succeeded(client, {"type": "postgres", "mode": "schema"})
    assert job["description"] == "backup postgres (schema)"
    with pg_env.workspace() as workspace:
        relpaths = [a.relpath for a in workspace.catalog.artifacts_of(job["set_id"])]
    assert any(relpath.endswith("_schema.dump.zst.enc") for relpath in relpaths), relpaths


def test_a_second_backup_is_refused_while_the_first_runs(
    pg_env: FilesEnv, client: httpx.Client, postgres_server: PostgresServer
) -> None:
    with HeldTable(pg_env):
        first = started(client, {"type": "postgres"})
        for body in ({"type": "files"}, {"type": "full"}, {"type": "postgres"}):
            refused = client.post("/api/backups", json=body)
            assert refused.status_code == 409, refused.text
            assert refused.json()["code"] == "conflict"
            assert f"job {first} (backup postgres (full)) is running" in refused.json()["message"]
        assert client.get(f"/api/jobs/{first}").json()["status"] == "running"
        wait_for_dump_to_wait(pg_env, postgres_server)
    assert wait_for(client, first)["status"] == "succeeded"
    assert [job["id"] for job in client.get("/api/jobs").json()] == [first]
    files_set = succeeded(client, {"type": "files"})["set_id"]
    assert cli_sets(pg_env)[files_set] == "complete", (files_set, cli_sets(pg_env))


def test_a_backup_is_refused_while_the_cli_runs_one(pg_env: FilesEnv, client: httpx.Client) -> None:
    with HeldTable(pg_env) as held, child([*pg_env.cli_argv(), "backup", "postgres"]) as cli:
        theirs = running_backup(client)
        refused = client.post("/api/backups", json={"type": "files"})
        assert refused.status_code == 409, refused.text
        assert f"job {theirs['id']} (backup postgres (full))" in refused.json()["message"]
        held.release()
        _, err = cli.communicate(timeout=DEADLINE_S)
        assert cli.returncode == 0, err
    assert client.get(f"/api/jobs/{theirs['id']}").json()["status"] == "succeeded"
    succeeded(client, {"type": "files"})


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "nightly"}, "type"),
        ({}, "type"),
        ({"type": "postgres", "mode": "everything"}, "mode"),
        ({"type": "postgres", "mode": 5}, "mode"),
        ({"type": "postgres", "verify_restore": "yes"}, "verify_restore"),
        ({"type": "postgres", "database": "host=elsewhere dbname=x"}, "database"),
        ({"type": "files", "mode": "schema"}, "mode"),
        ({"type": "postgres", "incremental": True}, "incremental"),
        ({"type": "files", "incremental": 1}, "incremental"),
        ({"type": "files", "compress": "yes"}, "compress"),
        (["files"], "body"),
    ],
)
def test_a_bad_backup_body_is_400_naming_the_field(
    idle_client: httpx.Client, body: Any, field: str
) -> None:
    answer = idle_client.post("/api/backups", json=body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == field
    assert answer.json()["message"].startswith(f"{field}: ")
    assert idle_client.get("/api/jobs").json() == []


def test_bad_json_and_bad_queries_are_400(idle_client: httpx.Client) -> None:
    headers = {"Content-Type": "application/json"}
    answer = idle_client.post("/api/backups", content=b'{"type": "files"', headers=headers)
    assert answer.status_code == 400
    assert answer.json() == {
        "code": "bad_request",
        "message": "the body is not valid JSON",
        "field": "body",
    }
    for path, params, field in (
        ("/api/jobs", {"status": "sleeping"}, "status"),
        ("/api/jobs", {"limit": 0}, "limit"),
        ("/api/jobs/1", {"tail": 1001}, "tail"),
        ("/api/jobs/0", {}, "job_id"),
        ("/api/jobs/x", {}, "job_id"),
        ("/api/jobs", {"stauts": "running"}, "stauts"),
    ):
        answer = idle_client.get(path, params=params)
        assert answer.status_code == 400, (path, params, answer.text)
        assert answer.json()["field"] == field
    typo = idle_client.post("/api/backups", params={"dry_run": "1"}, json={"type": "files"})
    assert typo.status_code == 400 and typo.json()["field"] == "dry_run"
    assert idle_client.get("/api/jobs").json() == []


def test_an_unconfigured_source_is_refused_before_any_job(idle_client: httpx.Client) -> None:
    answer = idle_client.post("/api/backups", json={"type": "redis"})
    assert answer.status_code == 409
    assert answer.json()["code"] == "not_configured"
    assert answer.json()["message"].startswith("redis backup skipped: ")
    assert idle_client.get("/api/jobs").json() == []


def test_backups_are_refused_while_browsing_another_host(env: FilesEnv) -> None:
    env.set(S3_BUCKET="jarvis-elsewhere", BACKUP_BROWSE="s3:other-host")
    with ApiServer(env.env_file) as server, server.client() as client:
        for body in ({"type": "files"}, {"type": "full"}):
            answer = client.post("/api/backups", json=body)
            assert answer.status_code == 409
            assert answer.json()["code"] == "read_only"
            assert (
                "refused while browsing s3://jarvis-elsewhere/other-host"
                in (answer.json()["message"])
            )
        assert client.get("/api/jobs").json() == []


def test_verify_a_set(env: FilesEnv, client: httpx.Client) -> None:
    assert env.cli("backup", "files") == 0
    (set_id,) = cli_sets(env)
    job = wait_for(client, started(client, {"read_data": True}, f"/api/backups/{set_id}/verify"))
    assert job["status"] == "succeeded", job
    assert job["kind"] == "verify" and job["description"] == f"verify {set_id}"
    assert any(line.endswith("read and authenticated") for line in messages(job))
    # No body, and `latest`: the newest set, named by its id.
    job = wait_for(client, started(client, {}, "/api/backups/latest/verify"))
    assert job["status"] == "succeeded" and job["description"] == f"verify {set_id}"
    answer = client.post(f"/api/backups/{set_id}/verify")
    assert answer.status_code == 202
    assert wait_for(client, answer.json()["job_id"])["status"] == "succeeded"


@contextlib.contextmanager
def job_running_here(env: FilesEnv, verb: str, set_id: str) -> Iterator[int]:
    """A real job of `verb` on `set_id` in this process, as the CLI's would be, running
    until the block ends."""
    job = VERBS[verb].job(Request(reference=set_id))
    assert job is not None
    kind, description = job
    row = queue.Queue[int]()
    release = threading.Event()
    with env.workspace() as workspace:

        def work(context: JobContext) -> None:
            row.put(context.job_id)
            release.wait(DEADLINE_S)

        runner = threading.Thread(target=workspace.run_job, args=(kind, description, work))
        runner.start()
        try:
            yield row.get(timeout=DEADLINE_S)
        finally:
            release.set()
            runner.join()


def test_verify_is_refused_while_the_same_set_is_verified_or_deleted(
    env: FilesEnv, client: httpx.Client
) -> None:
    assert env.cli("backup", "files") == 0
    (files_set,) = cli_sets(env)
    assert env.cli("backup", "secrets") == 0
    (secrets_set,) = set(cli_sets(env)) - {files_set}
    for verb in ("verify", "delete"):
        with job_running_here(env, verb, files_set) as job_id:
            refused = client.post(f"/api/backups/{files_set}/verify")
            assert refused.status_code == 409, refused.text
            assert refused.json()["message"].startswith(
                f"job {job_id} ({verb} {files_set}) is running; wait for it"
            )
            # Another set is verified meanwhile.
            other = wait_for(client, started(client, {}, f"/api/backups/{secrets_set}/verify"))
            assert other["status"] == "succeeded", other
    assert (
        wait_for(client, started(client, {}, f"/api/backups/{files_set}/verify"))["status"]
        == "succeeded"
    )


def test_verify_of_a_damaged_artifact_fails_its_job(env: FilesEnv, client: httpx.Client) -> None:
    assert env.cli("backup", "secrets") == 0
    (set_id,) = cli_sets(env)
    with env.workspace() as workspace:
        (artifact,) = workspace.catalog.artifacts_of(set_id)
    stored = env.repo / artifact.relpath
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0xFF
    stored.write_bytes(bytes(data))
    job = wait_for(client, started(client, {}, f"/api/backups/{set_id}/verify"))
    assert job["status"] == "failed"
    assert job["error"].startswith(f"1 of 1 artifact(s) failed verification: {artifact.relpath}")
    assert any(event["level"] == "error" for event in job["log"])


def test_verify_of_an_unknown_set_is_404_and_starts_nothing(idle_client: httpx.Client) -> None:
    answer = idle_client.post("/api/backups/files_1999-01-01_000000/verify")
    assert answer.status_code == 404
    assert answer.json()["code"] == "not_found"
    assert "files_1999-01-01_000000" in answer.json()["message"]
    nothing_yet = idle_client.post("/api/backups/latest/verify")
    assert nothing_yet.status_code == 404
    assert "no complete backup in the catalog yet" in nothing_yet.json()["message"]
    bad = idle_client.post("/api/backups/latest/verify", json={"read_data": "yes"})
    assert bad.status_code == 400 and bad.json()["field"] == "read_data"
    assert idle_client.get("/api/jobs").json() == []


def test_a_job_whose_process_died_is_shown_failed_and_blocks_nothing(
    env: FilesEnv, client: httpx.Client
) -> None:
    """A process that created its backup job and died (kill -9 leaves the row so)."""
    script = (
        "import os, sys\n"
        "from engines.catalog import Catalog\n"
        "Catalog.open(sys.argv[1]).create_job('backup', 'backup files')\n"
        "os._exit(9)\n"
    )
    died = subprocess.run(
        [sys.executable, "-c", script, env.settings["BACKUP_CATALOG_PATH"]],
        cwd=REPO_ROOT,
        env=child_env(),
        timeout=DEADLINE_S,
    )
    assert died.returncode == 9
    assert client.get("/api/jobs", params={"status": "running"}).json() == []
    (job,) = client.get("/api/jobs").json()
    assert job["status"] == "failed" and job["error"] == "process died"
    assert client.post(f"/api/jobs/{job['id']}/cancel").status_code == 409
    succeeded(client, {"type": "files"})


def test_unknown_jobs_are_404(idle_client: httpx.Client) -> None:
    for answer in (idle_client.get("/api/jobs/7"), idle_client.post("/api/jobs/7/cancel")):
        assert answer.status_code == 404
        assert answer.json() == {"code": "not_found", "message": "no job with id 7 in the catalog"}


def test_cancel_a_running_backup(
    pg_env: FilesEnv, client: httpx.Client, postgres_server: PostgresServer
) -> None:
    with HeldTable(pg_env):
        job_id = started(client, {"type": "postgres"})
        seen_waiting = wait_for_dump_to_wait(pg_env, postgres_server)
        answer = client.post(f"/api/jobs/{job_id}/cancel")
        assert answer.status_code == 202, answer.text
        assert answer.json()["status"] == "running" and answer.json()["cancel_requested"]
        # The job reads its cancel flag at most every CANCEL_POLL_INTERVAL_S; it last read
        # it before pg_dump began to wait, so its next check after this reads it.
        time.sleep(max(0.0, seen_waiting + CANCEL_POLL_INTERVAL_S - time.monotonic()))
    job = wait_for(client, job_id)
    assert job["status"] == "cancelled", job
    assert job["cancel_requested"] is True and "cancelled" in job["error"]
    assert cli_sets(pg_env)[job["set_id"]] == "failed"
    again = client.post(f"/api/jobs/{job_id}/cancel")
    assert again.status_code == 409
    assert (
        again.json()["message"]
        == f"job {job_id} has already finished (cancelled); nothing to cancel"
    )
