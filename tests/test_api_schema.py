"""Property-based tests of the REST API, generated from its own OpenAPI document.

schemathesis reads the document a real `jarvis-tui serve` process publishes and, for
every operation, sends requests it derives from it (valid ones and, for each part of
a request, invalid ones) to that server, over a catalog holding real backups (files,
secrets, configuration, a full set) so that ids exist. Every answer must be no 500,
carry a status the document declares for that operation, and match the schema
declared for that status; an invalid request must be refused with a 4xx. Once more
without the token, every guarded operation must answer 401 in the declared shape.

Deterministic and bounded for CI (`derandomize`, a fixed `max_examples`);
JARVIS_LONG_PROPERTY_TESTS=1 raises the counts for a long run by hand.

What the generated requests can touch: the env file names only this module's
temporary folders (repository, catalog, logs, the folders backed up), HOME and the
XDG folders are temporary too, and no PostgreSQL, Redis or S3 is configured, so a job a
generated POST starts reads and writes only there. A restore's body also names where it
writes (target_dir, to, pgdata, data_dir; and strip_prefix without target_dir writes
below /), and one into a new folder or file needs no `confirm`: restores are generated
from valid bodies only, each of those paths replaced by a folder under the temporary
folder before the request is sent; invalid restore bodies are explicit cases.
"""

import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from requests.adapters import HTTPAdapter
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from jarvis_tui.api.app import OPENAPI_URL
from tests.support.api_server import TOKEN, ApiServer
from tests.support.files_env import (
    CLEARED_PREFIXES,
    FilesEnv,
    make_secrets_env,
    random_text,
    tree_of,
)

LONG_RUN = os.environ.get("JARVIS_LONG_PROPERTY_TESTS") == "1"
# Per operation. Reads are cheap; each accepted POST starts a real job process.
READ_EXAMPLES = 1000 if LONG_RUN else 40
JOB_EXAMPLES = 150 if LONG_RUN else 8
RESTORE_EXAMPLES = 150 if LONG_RUN else 20
JOBS_END_TIMEOUT_S = 120.0
AUTH = {"Authorization": f"Bearer {TOKEN}"}

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
CONFORMANCE = [status_code_conformance, content_type_conformance, response_schema_conformance]


def _settings(max_examples: int) -> settings:
    return settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )


@dataclass
class LiveApi:
    env: FilesEnv
    server: ApiServer
    set_ids: dict[str, str]  # kind -> the set's id
    job_ids: list[int]


def _isolate(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
    """The machine's own settings unset, HOME and the XDG folders temporary: for the
    backups made here and for the server and the job processes it starts."""
    for name in list(os.environ):
        if name.startswith(CLEARED_PREFIXES):
            monkeypatch.delenv(name)
    home = root / "home"
    for name, folder in {
        "HOME": home,
        "XDG_CONFIG_HOME": home / ".config",
        "XDG_CACHE_HOME": home / ".cache",
        "XDG_DATA_HOME": home / ".local/share",
        "XDG_STATE_HOME": home / ".local/state",
    }.items():
        folder.mkdir(parents=True, exist_ok=True)
        monkeypatch.setenv(name, str(folder))


def _backed_up_env(root: Path) -> FilesEnv:
    env = make_secrets_env(root)
    (env.data / "notes").mkdir()
    (env.data / "notes" / "a.txt").write_bytes(random_text(40_000, seed=3))
    (env.data / "b.bin").write_bytes(random_text(10_000, seed=4))
    config = root / "app-config"
    config.mkdir()
    (config / "app.yaml").write_text("debug: false\n")
    env.set(BACKUP_CONFIG_PATHS=str(config), JARVIS_API_TOKEN=TOKEN)
    for source in ("files", "secrets", "config", "full"):
        assert env.cli("backup", source) == 0, source
    return env


def _wait_for_jobs_to_end(server: ApiServer) -> None:
    """Jobs the API started run in processes of their own: none may outlive the test,
    and a job still running would make the next case's answer depend on timing."""
    deadline = time.monotonic() + JOBS_END_TIMEOUT_S
    with server.client() as client:
        while True:
            running = [
                job
                for status in ("queued", "running")
                for job in client.get("/api/jobs", params={"status": status}).json()
            ]
            if not running:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"jobs still running after {JOBS_END_TIMEOUT_S} s: {running}")
            time.sleep(0.2)


@pytest.fixture(scope="module")
def live_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    root = tmp_path_factory.mktemp("api-schema")
    with pytest.MonkeyPatch.context() as monkeypatch:
        _isolate(monkeypatch, root)
        env = _backed_up_env(root)
        with env.workspace() as workspace:
            set_ids = {s.kind: s.id for s in workspace.catalog.list_backup_sets()}
            job_ids = [job.id for job in workspace.catalog.list_jobs()]
        server = ApiServer(env.env_file).start()
        try:
            yield LiveApi(env, server, set_ids, job_ids)
            _wait_for_jobs_to_end(server)
        finally:
            server.close()


def _real_path_parameters(api: LiveApi, operation: schemathesis.APIOperation) -> dict | None:
    """Path parameters naming things that exist, for an operation with any: so that
    generation reaches the answers about a real backup or job, not only 404."""
    names = [parameter.name for parameter in operation.path_parameters]
    if not names:
        return None
    choices: dict[str, st.SearchStrategy] = {}
    for name in names:
        if "job" in name:
            choices[name] = st.sampled_from(api.job_ids)
        elif "id" in name or "backup" in name or "set" in name:
            choices[name] = st.sampled_from(["latest", *sorted(api.set_ids.values())])
        else:
            return None
    return choices


def _loaded_schema(api: LiveApi) -> schemathesis.BaseSchema:
    schema = schemathesis.openapi.from_url(api.server.url + OPENAPI_URL, headers=AUTH)
    schema.config.update(base_url=api.server.url)
    # The token is sent as it is (or not at all), never generated: a generated one
    # would only be refused, and slowed down after five.
    schema.config.generation.update(with_security_parameters=False)

    @schema.hook
    def before_generate_path_parameters(context, strategy):
        real = _real_path_parameters(api, context.operation)
        if real is None:
            return strategy
        return st.one_of(strategy, st.fixed_dictionaries(real))

    return schema


@pytest.fixture(scope="module")
def api_schema(live_api: LiveApi) -> schemathesis.BaseSchema:
    return _loaded_schema(live_api)


# A restore's fields that name where it writes: in a generated restore each is replaced,
# just before it is sent, by a folder of its own under the module's temporary folder.
RESTORE_PATH_FIELDS = ("target_dir", "to", "pgdata", "data_dir")


def _confined(body: object, root: Path) -> object:
    if not isinstance(body, dict):
        return body
    placed = dict(body)
    # Without target_dir a files restore with strip_prefix writes below /: the stored
    # path less the prefix (/tmp/x/data/a.txt with "/tmp" lands in /x/data/a.txt).
    if placed.get("strip_prefix") is not None and placed.get("target_dir") is None:
        placed["target_dir"] = "stripped"
    for name in RESTORE_PATH_FIELDS:
        value = placed.get(name)
        if value is not None:
            digest = hashlib.sha256(repr(value).encode("utf-8", "surrogatepass")).hexdigest()
            placed[name] = str(root / "generated" / digest[:16])
    return placed


@pytest.fixture(scope="module")
def restore_schema(live_api: LiveApi) -> schemathesis.BaseSchema:
    """Restores generated from valid bodies only, every path they write confined: an
    invalid body's values are what they are (a path left as generated could point
    anywhere, relative to the server's working directory too, and a restore into a new
    folder or file needs no `confirm`); invalid bodies are the explicit cases' part."""
    schema = _loaded_schema(live_api)
    schema.config.generation.update(modes=[schemathesis.GenerationMode.POSITIVE])
    return schema


def test_the_document_declares_the_token_and_the_400_it_answers(live_api: LiveApi) -> None:
    with live_api.server.client(token=None) as stranger:
        assert stranger.get(OPENAPI_URL).status_code == 401  # the document is guarded too
    with live_api.server.client() as client:
        document = client.get(OPENAPI_URL).json()
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            label = f"{method.upper()} {path}"
            expected = [] if path == "/api/live" else [{"bearer": []}]
            assert operation.get("security", []) == expected, label
            # A bad request is 400 (ErrorBody), never FastAPI's 422 HTTPValidationError.
            assert "HTTPValidationError" not in json.dumps(operation), label
            if path != "/api/live":
                assert "400" in operation["responses"], label


schema = schemathesis.pytest.from_fixture("api_schema")
# Restores are generated apart (restore_schema, test_generated_restores_...).
RESTORE = r"/restore$"
restore = schemathesis.pytest.from_fixture("restore_schema").include(path_regex=RESTORE)


@settings(_settings(READ_EXAMPLES))
@schema.exclude(method="POST").parametrize()
def test_reads_answer_as_documented(case: schemathesis.Case) -> None:
    case.call_and_validate(headers=AUTH, checks=CHECKS)


@settings(_settings(JOB_EXAMPLES))
@schema.include(method="POST").exclude(path_regex=RESTORE).parametrize()
def test_job_starts_answer_as_documented(case: schemathesis.Case, live_api: LiveApi) -> None:
    response = case.call_and_validate(headers=AUTH, checks=CHECKS)
    if response.status_code == 202:
        _wait_for_jobs_to_end(live_api.server)


@settings(_settings(RESTORE_EXAMPLES))
@restore.parametrize()
def test_generated_restores_answer_as_documented(
    case: schemathesis.Case, live_api: LiveApi
) -> None:
    root = live_api.env.root
    case.body = _confined(case.body, root)
    if isinstance(case.body, dict):  # what is sent writes nowhere but below root
        for name in RESTORE_PATH_FIELDS:
            value = case.body.get(name)
            assert value is None or Path(value).is_relative_to(root / "generated"), case.body
    response = case.call_and_validate(headers=AUTH, checks=CHECKS)
    if response.status_code == 202:
        _wait_for_jobs_to_end(live_api.server)


class _FromAddress(HTTPAdapter):
    """Connections from one given loopback address."""

    def __init__(self, address: str):
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, source_address=(self.address, 0), **kwargs)


# The server slows an address down after five refusals, and this test is refused on
# purpose many times: each request comes from another loopback address (on Linux all
# of 127.0.0.0/8 is the loopback interface's).
_addresses = (f"127.{b}.{c}.{d}" for b in range(1, 255) for c in range(256) for d in range(1, 255))


def _session_from_a_fresh_address() -> requests.Session:
    session = requests.Session()
    adapter = _FromAddress(next(_addresses))
    session.mount("http://", adapter)
    return session


@settings(_settings(5))
@schema.exclude(path_regex=RESTORE).parametrize()
def test_without_the_token_every_guarded_operation_answers_401(case: schemathesis.Case) -> None:
    with _session_from_a_fresh_address() as session:
        response = case.call(session=session)
    if case.method.upper() != case.operation.method.upper():
        # The coverage phase also tries methods the path does not have: routing refuses
        # those before authentication, and says nothing about the resource.
        assert response.status_code == 405, (case.method, case.formatted_path)
        return
    case.validate_response(response, checks=CONFORMANCE)
    if case.path == "/api/live":
        assert response.status_code == 200
        return
    assert response.status_code == 401, (case.method, case.formatted_path, response.text)
    if case.method.upper() != "HEAD":
        assert response.json()["code"] == "unauthorized"
    assert response.headers["www-authenticate"] == ["Bearer"]


# (name, kind of set, body, statuses it may answer). Every path a restore may write is
# inside the module's temporary folder: `{root}` is replaced by it.
RESTORES = [
    ("files-dry-run", "files", {"type": "files", "dry_run": True}, {200, 202}),
    (
        "files-into-new-folder",
        "files",
        {"type": "files", "target_dir": "{root}/restored-files"},
        {202},
    ),
    ("files-over-originals-unconfirmed", "files", {"type": "files"}, {400}),
    ("secrets-to-new-file", "secrets", {"type": "secrets", "to": "{root}/restored.env"}, {202}),
    ("config-dry-run", "config", {"type": "config", "dry_run": True}, {200, 202}),
    ("full-dry-run", "full", {"type": "full", "dry_run": True}, {200, 202}),
    ("full-unconfirmed", "full", {"type": "full", "app_stopped": True}, {400}),
    ("postgres-not-configured", "full", {"type": "postgres", "target_db": "scratch"}, {404, 409}),
    (
        "redis-offline-no-such-artifact",
        "files",
        {"type": "redis", "data_dir": "{root}/redis-data", "confirm": "{root}/redis-data"},
        {404},
    ),
    ("unknown-type", "files", {"type": "tape"}, {400}),
    ("option-of-another-type", "files", {"type": "files", "flush": True}, {400}),
    ("not-an-object", "files", ["files"], {400}),
    ("pgdata-on-a-files-set", "files", {"type": "postgres", "pgdata": "{root}/pg"}, {404}),
]


def _placed(body: object, root: Path) -> object:
    if isinstance(body, dict):
        return {k: _placed(v, root) for k, v in body.items()}
    return body.replace("{root}", str(root)) if isinstance(body, str) else body


@pytest.mark.parametrize(
    ("kind", "body", "statuses"), [case[1:] for case in RESTORES], ids=[c[0] for c in RESTORES]
)
def test_restore_cases_answer_as_documented(
    api_schema: schemathesis.BaseSchema,
    live_api: LiveApi,
    kind: str,
    body: object,
    statuses: set[int],
) -> None:
    root = live_api.env.root
    before = tree_of(live_api.env.data)
    operation = api_schema["/api/backups/{set_id}/restore"]["POST"]
    case = operation.Case(
        path_parameters={"set_id": live_api.set_ids[kind]},
        body=_placed(body, root),
        media_type="application/json",
    )
    response = case.call_and_validate(headers=AUTH, checks=CHECKS)
    assert response.status_code in statuses, response.text
    if response.status_code == 202:
        _wait_for_jobs_to_end(live_api.server)
    if response.status_code >= 400:
        assert response.json()["code"], response.text
    assert tree_of(live_api.env.data) == before  # nothing restored over the originals


def test_a_files_restore_writes_only_where_it_was_sent(live_api: LiveApi) -> None:
    target = live_api.env.root / "restored-again"
    with live_api.server.client() as client:
        answer = client.post(
            f"/api/backups/{live_api.set_ids['files']}/restore",
            json={"type": "files", "target_dir": str(target)},
        )
    assert answer.status_code == 202, answer.text
    _wait_for_jobs_to_end(live_api.server)
    restored = target / str(live_api.env.data).lstrip("/")
    assert (restored / "b.bin").read_bytes() == (live_api.env.data / "b.bin").read_bytes()


# Range requests are headers the document does not list as parameters, so they are never
# generated: (name, kind of set, method, Range, statuses).
RANGES = [
    ("whole", "files", "GET", None, {200}),
    ("first-ten-bytes", "files", "GET", "bytes=0-9", {206}),
    ("resumed", "full", "GET", "bytes=100-", {206}),
    ("last-five-bytes", "secrets", "GET", "bytes=-5", {206}),
    ("past-the-end", "files", "GET", "bytes=99999999-", {416}),
    ("several-ranges-whole-body", "full", "GET", "bytes=0-1,5-6", {200}),
    ("not-a-range", "config", "GET", "bytes=z-", {200, 416}),
    ("head-ignores-a-range", "full", "HEAD", "bytes=0-9", {200}),  # RFC 9110: GET only
]


# Headers the document does not list as parameters either: (name, path, extra headers).
NEGOTIATED = [
    ("metrics-openmetrics", "/metrics", {"Accept": "application/openmetrics-text; version=1.0.0"}),
    ("metrics-json-asked", "/metrics", {"Accept": "application/json"}),
    (
        "download-if-range-stale",
        "/api/backups/{files}/download",
        {"Range": "bytes=0-3", "If-Range": '"stale"'},
    ),
    ("download-if-modified", "/api/backups/{files}/download", {"If-None-Match": "*"}),
    ("list-accepts-json-only", "/api/backups", {"Accept": "text/html"}),
]


@pytest.mark.parametrize(
    ("path", "headers"), [case[1:] for case in NEGOTIATED], ids=[c[0] for c in NEGOTIATED]
)
def test_negotiated_answers_are_documented(
    api_schema: schemathesis.BaseSchema, live_api: LiveApi, path: str, headers: dict
) -> None:
    template = path.replace("{files}", "{backup_id}")
    operation = api_schema[template]["GET"]
    parameters = {"backup_id": live_api.set_ids["files"]} if "{files}" in path else {}
    case = operation.Case(path_parameters=parameters)
    response = case.call_and_validate(headers={**AUTH, **headers}, checks=CHECKS)
    assert response.status_code < 500, response.text


@pytest.mark.parametrize(
    ("kind", "method", "byte_range", "statuses"),
    [case[1:] for case in RANGES],
    ids=[case[0] for case in RANGES],
)
def test_download_ranges_answer_as_documented(
    api_schema: schemathesis.BaseSchema,
    live_api: LiveApi,
    kind: str,
    method: str,
    byte_range: str | None,
    statuses: set[int],
) -> None:
    operation = api_schema["/api/backups/{backup_id}/download"][method]
    case = operation.Case(path_parameters={"backup_id": live_api.set_ids[kind]})
    headers = AUTH if byte_range is None else {**AUTH, "Range": byte_range}
    response = case.call_and_validate(headers=headers, checks=CHECKS)
    assert response.status_code in statuses, response.headers
    if method == "GET" and byte_range == "bytes=0-9":
        assert response.headers["content-length"] == ["10"]


@pytest.mark.parametrize(
    "content",
    [b'{"type": "files", "dry_run": true}', b"\x00", b'{"type": "tape"}'],
    ids=["valid", "not-json", "invalid"],
)
def test_a_restore_without_the_token_answers_401(
    api_schema: schemathesis.BaseSchema, live_api: LiveApi, content: bytes
) -> None:
    """The restore is left out of the generated run without the token (it writes)."""
    operation = api_schema["/api/backups/{set_id}/restore"]["POST"]
    case = operation.Case(path_parameters={"set_id": live_api.set_ids["files"]})
    with _session_from_a_fresh_address() as session:
        response = session.post(
            live_api.server.url + case.formatted_path,
            data=content,
            headers={"Content-Type": "application/json"},
        )
    case.validate_response(response, checks=CONFORMANCE)
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "unauthorized"
