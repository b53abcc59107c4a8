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
        document = client.get("/api/openapi.json").json()
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
