"""Property-based tests of the REST API, generated from its own OpenAPI document.

schemathesis reads the document a real `jarvis-tui serve` process publishes and, for
every operation, sends requests it derives from it (valid ones and, for each part of
a request, invalid ones) to that server, over a catalog holding real backups (files,
secrets, configuration, a full set) so that ids exist. Every answer must be no 500,
carry a status the document declares for that operation, and match the schema
declared for that status; an invalid request must be refused with a 4xx. Once more
without the token, every guarded operation must answer 401 in the declared shape.

Not checked: that every request the document allows is accepted (schemathesis's
positive_data_acceptance). A restore that replaces data needs `confirm`, a backup option
belongs to one type, a cursor must be one the server gave: refusals (400) the document
does not spell out.

Deterministic and bounded for CI (`derandomize`, a fixed `max_examples`);
JARVIS_LONG_PROPERTY_TESTS=1 raises the counts for a long run by hand.

What the generated requests can touch: the env file names only this module's
temporary folders (repository, catalog, logs, the folders backed up), HOME and the
XDG folders are temporary too, and no PostgreSQL, Redis or S3 is configured, so a job a
generated POST starts reads and writes only there. A restore's body also names where it
writes (target_dir, to, pgdata, data_dir; strip_prefix is refused without target_dir),
and one into a new folder or file needs no `confirm`: restores are generated
from valid bodies only, each of those paths replaced by a folder under the temporary
folder before the request is sent; invalid restore bodies are explicit cases.
"""

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from jarvis_tui.api.app import OPENAPI_URL
from tests.support.api_schema import (
    AUTH,
    RESTORE_PATH_FIELDS,
    LiveApi,
    confined,
    loaded_schema,
    session_from_a_fresh_address,
    started_live_api,
    wait_for_jobs_to_end,
)
from tests.support.files_env import tree_of

LONG_RUN = os.environ.get("JARVIS_LONG_PROPERTY_TESTS") == "1"
# Per operation. Reads are cheap; each accepted POST starts a real job process.
READ_EXAMPLES = 1000 if LONG_RUN else 40
JOB_EXAMPLES = 150 if LONG_RUN else 8
RESTORE_EXAMPLES = 150 if LONG_RUN else 20

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


@pytest.fixture(scope="module")
def live_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    with started_live_api(tmp_path_factory.mktemp("api-schema")) as api:
        yield api


@pytest.fixture(scope="module")
def api_schema(live_api: LiveApi) -> schemathesis.BaseSchema:
    return loaded_schema(live_api)


@pytest.fixture(scope="module")
def restore_schema(live_api: LiveApi) -> schemathesis.BaseSchema:
    """Restores generated from valid bodies only, every path they write confined: an
    invalid body's values are what they are (a path left as generated could point
    anywhere, relative to the server's working directory too, and a restore into a new
    folder or file needs no `confirm`); invalid bodies are the explicit cases' part."""
    schema = loaded_schema(live_api)
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
        wait_for_jobs_to_end(live_api.server)


@settings(_settings(RESTORE_EXAMPLES))
@restore.parametrize()
def test_generated_restores_answer_as_documented(
    case: schemathesis.Case, live_api: LiveApi
) -> None:
    root = live_api.env.root
    case.body = confined(case.body, root)
    kind = case.body.get("type") if isinstance(case.body, dict) else None
    if kind in live_api.set_ids and len(repr(case.body)) % 2:
        # A set of the body's type for every other body (by its length, not by chance):
        # the generated set ids rarely name one, and the restore itself is what matters.
        case.path_parameters = {**(case.path_parameters or {}), "set_id": live_api.set_ids[kind]}
    if isinstance(case.body, dict):  # what is sent writes nowhere but below root
        for name in RESTORE_PATH_FIELDS:
            value = case.body.get(name)
            assert value is None or Path(value).is_relative_to(root / "generated"), case.body
    response = case.call_and_validate(headers=AUTH, checks=CHECKS)
    if response.status_code == 202:
        wait_for_jobs_to_end(live_api.server)


@settings(_settings(5))
@schema.exclude(path_regex=RESTORE).parametrize()
def test_without_the_token_every_guarded_operation_answers_401(case: schemathesis.Case) -> None:
    with session_from_a_fresh_address() as session:
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
        wait_for_jobs_to_end(live_api.server)
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
    wait_for_jobs_to_end(live_api.server)
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
    with session_from_a_fresh_address() as session:
        response = session.post(
            live_api.server.url + case.formatted_path,
            data=content,
            headers={"Content-Type": "application/json"},
        )
    case.validate_response(response, checks=CONFORMANCE)
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "unauthorized"


@pytest.mark.parametrize("token", [True, False], ids=["with-the-token", "without"])
def test_an_oversized_body_answers_as_documented(
    api_schema: schemathesis.BaseSchema, live_api: LiveApi, token: bool
) -> None:
    """A body over the server's limit (a few MiB of JSON, its length declared): refused
    before it is read, token or not, as JSON in a status the document declares."""
    operation = api_schema["/api/backups"]["POST"]
    case = operation.Case()
    body = b'{"type": "full", "pad": "' + b"x" * (4 << 20) + b'"}'
    with session_from_a_fresh_address() as session:
        response = session.post(
            live_api.server.url + case.formatted_path,
            data=body,
            headers={"Content-Type": "application/json", **(AUTH if token else {})},
        )
    case.validate_response(response, checks=CONFORMANCE)
    assert response.status_code == 413, response.text
    assert response.json()["code"] == "too_large"
