"""`jarvis-tui serve`: starting, refusing to start, authentication, stopping."""

from pathlib import Path

import pytest

from tests.support.api_server import TOKEN, ApiServer, refused_start
from tests.support.files_env import FilesEnv, make_files_env


@pytest.fixture
def env(tmp_path: Path) -> FilesEnv:
    files = make_files_env(tmp_path)
    files.set(JARVIS_API_TOKEN=TOKEN)
    return files


def test_liveness_needs_no_token_and_everything_else_does(env: FilesEnv) -> None:
    with ApiServer(env.env_file) as server, server.client(token=None) as client:
        assert client.get("/api/live").json() == {"live": True}
        assert client.get("/api/openapi.json").status_code == 401
        with server.client() as authorised:
            document = authorised.get("/api/openapi.json").json()
        assert document["info"]["title"] == "Jarvis backup API"
    assert server.stop() == 0


def test_without_a_token_it_refuses_to_start(env: FilesEnv) -> None:
    env.settings.pop("JARVIS_API_TOKEN")
    env.set()
    result = refused_start(env.env_file, ["--port", "0"])
    assert result.returncode == 3
    assert "JARVIS_API_TOKEN is not set" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_a_short_token_is_refused_without_echoing_it(env: FilesEnv) -> None:
    env.set(JARVIS_API_TOKEN="short-secret-value")
    result = refused_start(env.env_file, ["--port", "0"])
    assert result.returncode == 3
    assert "at least 32" in result.stderr
    assert "short-secret-value" not in result.stderr + result.stdout


def test_insecure_no_auth_only_on_loopback(env: FilesEnv) -> None:
    result = refused_start(env.env_file, ["--host", "0.0.0.0", "--port", "0", "--insecure-no-auth"])
    assert result.returncode == 2
    assert "loopback" in result.stderr


def test_run_scheduled_serve_runs_the_schedules_and_the_api_in_one_process(env: FilesEnv) -> None:
    with ApiServer(env.env_file, scheduled=True) as server, server.client() as client:
        assert client.get("/api/live").json() == {"live": True}
        assert client.get("/api/openapi.json").status_code == 200
        assert server.process is not None
        pid = server.process.pid
        assert server.stop() == 0
    log = "".join(server.output)
    assert f"pid {pid}" in log  # the scheduler's own start line, from the same process
    assert "stopped" in log


def test_a_taken_port_is_one_line_and_exit_1(env: FilesEnv) -> None:
    with ApiServer(env.env_file) as server:
        port = server.url.rsplit(":", 1)[1]
        result = refused_start(env.env_file, ["--port", port])
    assert result.returncode == 1
    assert port in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_wrong_missing_and_malformed_tokens_are_401_and_never_logged(env: FilesEnv) -> None:
    wrong = "w" * 40
    with ApiServer(env.env_file) as server:
        for headers in (
            {},
            {"Authorization": f"Bearer {wrong}"},
            {"Authorization": f"Basic {wrong}"},
            {"Authorization": "Bearer"},
            {"Authorization": f"Bearer {TOKEN[:-1]}"},
        ):
            with server.client(token=None) as client:
                answer = client.get("/api/openapi.json", headers=headers)
                assert answer.status_code == 401, headers
                assert answer.json()["code"] == "unauthorized"
                assert answer.headers["www-authenticate"] == "Bearer"
    log = "".join(server.output) + (env.root / "logs" / "backup.log").read_text()
    assert "refused GET /api/openapi.json from 127.0.0.1: wrong token" in log
    assert wrong not in log and TOKEN[:-1] not in log
