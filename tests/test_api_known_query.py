"""A query parameter a route does not take is 400 naming it, on every guarded route (the
guarded router's KNOWN_QUERY in app.py): one route of each route module, against a real
`jarvis-tui serve`. Nothing is started or changed by such a request, and a caller
without the token is told 401 first."""

from collections.abc import Iterator

import httpx
import pytest

from tests.support.api_server import TOKEN, ApiServer
from tests.support.files_env import make_files_env

# (method, path, JSON body): one route of each module in jarvis_tui/api/routes.
ROUTES = [
    ("GET", "/api/backups/stats/overview", None),  # overview
    ("GET", "/api/backups/schedule/status", None),  # schedule
    ("GET", "/api/health", None),  # health
    ("GET", "/api/backups", None),  # backups
    ("GET", "/api/backups/latest/download", None),  # download
    ("GET", "/metrics", None),  # metrics
    ("POST", "/api/backups", {"type": "files"}),  # actions
    ("GET", "/api/jobs", None),  # jobs
    ("POST", "/api/backups/latest/restore", {"type": "files", "dry_run": True}),  # restore
    ("GET", "/api/openapi.json", None),  # app.py's own
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    root = tmp_path_factory.mktemp("known-query")
    env = make_files_env(root)
    (env.data / "a.txt").write_text("kept\n")
    env.set(JARVIS_API_TOKEN=TOKEN)
    assert env.cli("backup", "files") == 0
    with ApiServer(env.env_file) as served:
        yield served


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_an_unknown_query_parameter_is_400_naming_it(server, method, path, body) -> None:
    served = server
    with served.client() as client:
        jobs = len(client.get("/api/jobs").json())
        answer = client.request(method, path, params={"stauts": "x"}, json=body)
        assert answer.status_code == 400, answer.text
        error = answer.json()
        assert error["code"] == "bad_request" and error["field"] == "stauts", error
        assert error["message"].startswith("stauts: not a parameter of this endpoint")
        assert len(client.get("/api/jobs").json()) == jobs  # nothing started


def test_known_parameters_still_pass_and_the_token_comes_first(server) -> None:
    served = server
    with served.client() as client:
        assert client.get("/api/backups", params={"limit": 1}).status_code == 200
        assert client.get("/api/jobs", params={"status": "running"}).status_code == 200
    with served.client(token=None) as anonymous:
        answer: httpx.Response = anonymous.get("/api/backups", params={"stauts": "x"})
        assert answer.status_code == 401, answer.text
