"""The REST API attacked as a careless operator and as a local attacker would, on a real
server: bodies far past any request's size (before the token is checked), stored files
swapped for a FIFO, duplicate JSON keys and Authorization headers, restore targets
spelt two ways or relative to the server's working folder."""

import contextlib
import io
import json
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from engines.catalog.rows import Job
from engines.config import load_settings
from engines.plumbing.redaction import register_secrets
from jarvis_tui.api.request_deadline import REQUEST_DEADLINE_S
from jarvis_tui.api.server import ServeOptions, prepare
from jarvis_tui.exit_codes import ExitCode
from tests.support.api_server import TOKEN, ApiServer, hold_still
from tests.support.files_env import KEY, FilesEnv, make_secrets_env, random_text

DEADLINE_S = 60.0


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FilesEnv, ApiServer]]:
    env = make_secrets_env(tmp_path_factory.mktemp("api-adversarial"))
    env.set(JARVIS_API_TOKEN=TOKEN)
    (env.data / "notes.txt").write_bytes(random_text(20_000, 5))
    assert env.cli("backup", "files") == ExitCode.OK
    assert env.cli("backup", "secrets") == ExitCode.OK
    assert env.cli("backup", "secrets") == ExitCode.OK  # the newest: for a deletion
    with ApiServer(env.env_file) as server:
        yield env, server


def _set_of(env: FilesEnv, source: str, newest: int = 1) -> tuple[str, Path]:
    """The `newest`-th newest set of `source` and its one stored file."""
    with env.workspace() as workspace:
        sets = [s for s in workspace.catalog.list_backup_sets() if s.kind == source]
        backup = sets[newest - 1]
        (artifact,) = workspace.catalog.artifacts_of(backup.id)
    return backup.id, env.repo / artifact.relpath


def _address(server: ApiServer) -> tuple[str, int]:
    parts = urlsplit(server.url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


def _answer_status(sock: socket.socket) -> int:
    """The status of the HTTP answer read from `sock` (within the deadline)."""
    sock.settimeout(DEADLINE_S)
    received = b""
    while b"\r\n" not in received:
        block = sock.recv(4096)
        if not block:
            break
        received += block
    return int(received.split(b" ", 2)[1])


def _send_quietly(sock: socket.socket, data: bytes) -> None:
    """Send, ignoring a server that has answered and hung up meanwhile."""
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        sock.sendall(data)


def _vm_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.parametrize("token", [None, TOKEN], ids=["anonymous", "with-token"])
def test_a_huge_declared_body_is_refused_before_it_is_read(served, token) -> None:
    _, server = served
    authorization = f"Authorization: Bearer {token}\r\n" if token else ""
    with socket.create_connection(_address(server), timeout=DEADLINE_S) as sock:
        head = (
            "POST /api/backups HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"{authorization}Content-Length: {1 << 30}\r\n\r\n"
        )
        _send_quietly(sock, head.encode() + b" " * 65536)
        # A server reading the whole GiB would wait here for the rest, until the deadline.
        assert _answer_status(sock) == 413


def test_a_huge_chunked_body_does_not_grow_the_server(served) -> None:
    """An anonymous client streaming 256 MiB: the server stops reading early instead of
    buffering it all (it held 650 MiB more after 300 MiB before)."""
    _, server = served
    assert server.process is not None
    before = _vm_rss_kib(server.process.pid)
    chunk = b" " * (1 << 20)
    framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    with socket.create_connection(_address(server), timeout=DEADLINE_S) as sock:
        sock.sendall(
            b"POST /api/backups HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        for _ in range(256):
            try:
                sock.sendall(framed)
            except (BrokenPipeError, ConnectionResetError):
                break
        _send_quietly(sock, b"0\r\n\r\n")
        assert _answer_status(sock) == 413
    assert _vm_rss_kib(server.process.pid) - before < 64 * 1024


def test_a_stored_file_swapped_for_a_fifo_is_refused_without_hanging(served) -> None:
    env, server = served
    set_id, stored = _set_of(env, "secrets", newest=2)
    saved = stored.read_bytes()
    stored.unlink()
    os.mkfifo(stored)
    try:
        with server.client() as client:
            answer = client.get(f"/api/backups/{set_id}/download")
            assert answer.status_code == 422
            assert answer.json()["code"] == "integrity"
            assert "not a regular file" in answer.json()["message"]
    finally:
        # A reader stuck opening the FIFO would be let go by a writer: open one, never block.
        with contextlib.suppress(OSError):
            os.close(os.open(stored, os.O_WRONLY | os.O_NONBLOCK))
        stored.unlink()
        stored.write_bytes(saved)


def test_a_body_naming_a_field_twice_is_refused_naming_it(served) -> None:
    """`{"type": "files", "type": "secrets"}` started a secrets backup (the last won)."""
    _, server = served
    with server.client() as client:
        jobs_before = client.get("/api/jobs").json()
        answer = client.post(
            "/api/backups",
            content=b'{"type": "files", "type": "secrets"}',
            headers={"Content-Type": "application/json"},
        )
        assert answer.status_code == 400
        assert answer.json()["field"] == "type"
        assert "twice" in answer.json()["message"]
        assert client.get("/api/jobs").json() == jobs_before  # no job started
    with server.client(token=None) as anonymous:
        refused = anonymous.post(
            "/api/backups",
            content=b'{"type": "files", "type": "secrets"}',
            headers={"Content-Type": "application/json"},
        )
    assert refused.status_code == 401  # the token is asked for first


def test_two_authorization_headers_are_refused_whichever_comes_first(served) -> None:
    _, server = served
    with server.client(token=None) as client:
        for first, second in ((TOKEN, "x" * 40), ("x" * 40, TOKEN)):
            headers = [("Authorization", f"Bearer {first}"), ("Authorization", f"Bearer {second}")]
            answer = client.get("/api/backups/stats/overview", headers=headers)
            assert answer.status_code == 401, (first, second)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "files", "target_dir": "restored"}, "target_dir"),
        ({"type": "secrets", "to": "app.env"}, "to"),
        ({"type": "config", "target_dir": "./conf"}, "target_dir"),
    ],
)
def test_a_relative_restore_target_is_refused_naming_it(served, body, field) -> None:
    """A relative target would be written below the server's working folder, which the
    client neither knows nor chose."""
    env, server = served
    set_id, _ = _set_of(env, "files" if body["type"] != "secrets" else "secrets")
    with server.client() as client:
        answer = client.post(f"/api/backups/{set_id}/restore", json={**body, "dry_run": True})
    assert answer.status_code == 400
    assert answer.json()["field"] == field
    assert "absolute" in answer.json()["message"]


def test_the_same_target_spelt_another_way_is_the_same_target() -> None:
    from jarvis_tui.api.job_conflicts import restore_conflicts

    words = "restore secrets secrets_2026-01-01_000000 into /srv/app/./app.env"
    running = Job(1, "restore", words, "running", 1, *(None,) * 3, 0, None, "", None, False, None)
    assert restore_conflicts("secrets", "/srv/app/app.env")(running)
    assert restore_conflicts("secrets", "/srv//app/app.env")(running)
    assert not restore_conflicts("secrets", "/srv/app/other.env")(running)


def test_a_set_being_deleted_is_not_downloaded(served) -> None:
    """Verify and restore refuse it (409); the download sent it (200) while its files
    could be removed under the stream."""
    env, server = served
    set_id, _ = _set_of(env, "secrets")
    with env.workspace() as workspace:
        workspace.catalog.mark_set_deleting(set_id)
    with server.client() as client:
        for method in ("GET", "HEAD"):
            answer = client.request(method, f"/api/backups/{set_id}/download")
            assert answer.status_code == 409, method
        assert "being deleted" in client.get(f"/api/backups/{set_id}/download").json()["message"]


def _started_backup(server: ApiServer, env: FilesEnv) -> tuple[int, int]:
    """A files backup started through the API and held still: its job id and pid."""
    with server.client() as client:
        answer = client.post("/api/backups", json={"type": "files"})
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["job_id"]
    with env.workspace() as workspace:
        pid = workspace.catalog.get_job(job_id).pid
    assert pid is not None
    hold_still(pid, env.root / "catalog.sqlite3")
    return job_id, pid


def _finished(env: FilesEnv, job_id: int) -> Job:
    deadline = time.monotonic() + DEADLINE_S
    while True:
        with env.workspace() as workspace:
            job = workspace.catalog.get_job(job_id)
        if job.finished or time.monotonic() > deadline:
            return job
        time.sleep(0.1)


def test_a_job_outlives_the_server_that_started_it(tmp_path: Path) -> None:
    """SIGTERM (a service manager's stop) while its backup runs: the server exits 0 at
    once, the backup goes on and its end is recorded."""
    env = make_secrets_env(tmp_path)
    env.set(JARVIS_API_TOKEN=TOKEN)
    (env.data / "notes.txt").write_bytes(random_text(20_000, 6))
    with ApiServer(env.env_file) as server:
        job_id, pid = _started_backup(server, env)
        try:
            assert server.stop() == 0
        finally:
            os.kill(pid, signal.SIGCONT)
    job = _finished(env, job_id)
    assert job.status == "succeeded", job.error
    with env.workspace() as workspace:
        assert workspace.catalog.get_backup_set(job.set_id).status == "complete"


def test_a_job_killed_with_its_server_is_marked_and_blocks_nothing(tmp_path: Path) -> None:
    """kill -9 of the server and of the backup it started: the next server marks the
    job failed (never 'running' forever) and takes a new backup."""
    env = make_secrets_env(tmp_path)
    env.set(JARVIS_API_TOKEN=TOKEN)
    (env.data / "notes.txt").write_bytes(random_text(20_000, 7))
    with ApiServer(env.env_file) as server:
        job_id, pid = _started_backup(server, env)
        assert server.process is not None
        server.process.kill()
        os.kill(pid, signal.SIGKILL)
        os.kill(pid, signal.SIGCONT)
    deadline = time.monotonic() + DEADLINE_S
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # reaped by init once its parent is gone
    with ApiServer(env.env_file) as again, again.client() as client:
        shown = client.get(f"/api/jobs/{job_id}").json()
        assert shown["status"] == "failed", shown
        retried = client.post("/api/backups", json={"type": "files"})
        assert retried.status_code == 202, retried.text
    assert _finished(env, retried.json()["job_id"]).status == "succeeded"


def test_two_servers_on_one_catalog_start_one_backup(tmp_path: Path) -> None:
    """Sixteen POST /api/backups at once, half to each of two servers sharing a catalog:
    one 202, the rest 409, and the job accepted is the one that runs (each server's
    check of the running jobs was its own: both answered 202, and one job then failed
    on the repository's lock)."""
    env = make_secrets_env(tmp_path)
    env.set(JARVIS_API_TOKEN=TOKEN)
    (env.data / "notes.txt").write_bytes(random_text(20_000, 8))
    with ApiServer(env.env_file) as first, ApiServer(env.env_file) as second:
        together = threading.Barrier(16)

        def start(server: ApiServer) -> tuple[int, str]:
            with server.client() as client:
                together.wait(DEADLINE_S)
                answer = client.post("/api/backups", json={"type": "files"})
            return answer.status_code, answer.text

        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(start, [first, second] * 8))
    accepted = [json.loads(text)["job_id"] for status, text in answers if status == 202]
    assert sorted(status for status, _ in answers) == [202] + [409] * 15, answers
    assert _finished(env, accepted[0]).status == "succeeded"
    with env.workspace() as workspace:
        assert [job.id for job in workspace.catalog.list_jobs(50)] == accepted


def test_requests_never_finished_are_hung_up_on(served) -> None:
    """Slowloris: uvicorn times out idle keep-alive connections only, so a connection
    that never finished its request (nothing sent, half its headers, half its body) was
    held forever: 1,200 of them were all still open after 30 s, and an anonymous client
    could take every descriptor the server may open."""
    _, server = served
    unfinished = (
        b"",
        b"GET /api/live HTTP/1.1\r\nHost: x\r\n",
        b"POST /api/backups HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
        b"Content-Type: application/json\r\n\r\n{",
    )
    with contextlib.ExitStack() as stack:
        socks = [
            stack.enter_context(socket.create_connection(_address(server), timeout=DEADLINE_S))
            for _ in unfinished
        ]
        started = time.monotonic()
        for sock, sent in zip(socks, unfinished, strict=True):
            sock.sendall(sent)
        with server.client() as client:  # a finished request meanwhile is answered
            assert client.get("/api/backups/stats/overview").status_code == 200
        for sock in socks:
            assert sock.recv(4096) == b""  # closed by the server (before: a timeout)
    assert time.monotonic() - started >= REQUEST_DEADLINE_S - 1


@pytest.mark.parametrize(
    ("spec", "status", "content_range"),
    [
        ("9" * 5000 + "-", 416, None),  # past any end: was a 500 (int() of 5,000 digits)
        ("0-" + "9" * 5000, 206, "bytes 0-{last}/{length}"),  # to the end
        ("-" + "9" * 5000, 206, "bytes 0-{last}/{length}"),  # a suffix longer than it
        ("0" * 5000 + "1-", 206, "bytes 1-{last}/{length}"),  # leading zeros are allowed
    ],
    ids=["huge-start", "huge-end", "huge-suffix", "zeros"],
)
def test_absurd_ranges_are_answered_not_a_bug(served, spec, status, content_range) -> None:
    env, server = served
    set_id, stored = _set_of(env, "secrets", newest=2)
    length = stored.stat().st_size
    with server.client() as client:
        answer = client.get(f"/api/backups/{set_id}/download", headers={"Range": f"bytes={spec}"})
    assert answer.status_code == status, answer.text[:200]
    if content_range is not None:
        assert answer.headers["content-range"] == content_range.format(
            last=length - 1, length=length
        )


@pytest.mark.parametrize(
    ("field", "path"),
    [
        ("target_dir", "/tmp/" + "n" * 300),  # a name over NAME_MAX: was 500 os_error
        ("target_dir", "/tmp/" + "d/" * 2100),  # a path over PATH_MAX
        ("target_dir", "/tmp/nul\x00here"),  # was 500 internal ('embedded null byte')
        ("to", "/tmp/" + "n" * 300 + ".env"),
    ],
    ids=["long-name", "long-path", "nul", "long-secret-file"],
)
def test_a_restore_target_no_file_system_takes_is_400(served, field, path) -> None:
    env, server = served
    kind = "secrets" if field == "to" else "files"
    set_id, _ = _set_of(env, kind)
    with server.client() as client:
        answer = client.post(
            f"/api/backups/{set_id}/restore", json={"type": kind, field: path, "dry_run": True}
        )
    assert answer.status_code == 400, answer.text[:300]
    assert answer.json()["field"] == field


def test_uvicorns_own_tracebacks_are_masked_too(tmp_path: Path) -> None:
    """Every 500 is logged twice: by the API (masked) and by uvicorn, whose
    'Exception in ASGI application' traceback went to stderr as it was."""
    env = make_secrets_env(tmp_path)
    env.set(JARVIS_API_TOKEN=TOKEN)
    settings = load_settings(environ={}, env_file=env.env_file)
    register_secrets(settings.secret_values())
    server = prepare(settings, env.env_file, ServeOptions(port=0))
    seen = io.StringIO()
    handler = logging.StreamHandler(seen)
    uvicorn_log = logging.getLogger("uvicorn.error")
    uvicorn_log.addHandler(handler)
    try:
        try:
            raise RuntimeError(f"connecting with key {KEY} and token {TOKEN}")
        except RuntimeError as error:
            uvicorn_log.error("Exception in ASGI application", exc_info=error)
    finally:
        uvicorn_log.removeHandler(handler)
        server.close()
    assert "RuntimeError: connecting with key" in seen.getvalue()
    assert KEY not in seen.getvalue() and TOKEN not in seen.getvalue()


def test_json_sent_as_a_form_is_told_its_content_type(served) -> None:
    """`curl -d '{"type": "full"}'` without -H sends a form; the answer was 'body: Input
    should be a valid dictionary or object to extract fields from'."""
    _, server = served
    with server.client() as client:
        jobs_before = client.get("/api/jobs").json()
        for content_type in ("application/x-www-form-urlencoded", "text/plain"):
            answer = client.post(
                "/api/backups",
                content=b'{"type": "files"}',
                headers={"Content-Type": content_type},
            )
            assert answer.status_code == 400
            assert answer.json()["field"] == "body"
            assert "Content-Type: application/json" in answer.json()["message"]
            assert content_type in answer.json()["message"]
        assert client.get("/api/jobs").json() == jobs_before
