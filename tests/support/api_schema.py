"""A real API server over real backups, and the schemathesis schema read from it, for
tests/test_api_schema.py: the temporary world generated requests may touch, and what
keeps them there."""

import hashlib
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import strategies as st
from requests.adapters import HTTPAdapter

from jarvis_tui.api.app import OPENAPI_URL
from tests.support.api_server import TOKEN, ApiServer
from tests.support.files_env import CLEARED_PREFIXES, FilesEnv, make_secrets_env, random_text

AUTH = {"Authorization": f"Bearer {TOKEN}"}
JOBS_END_TIMEOUT_S = 120.0


@dataclass
class LiveApi:
    env: FilesEnv
    server: ApiServer
    set_ids: dict[str, str]  # kind -> the set's id
    job_ids: list[int]


def isolate(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
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


def backed_up_env(root: Path) -> FilesEnv:
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


def wait_for_jobs_to_end(server: ApiServer) -> None:
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


@contextmanager
def started_live_api(root: Path) -> Iterator[LiveApi]:
    """The backed-up env in `root` and its server, until every job it started ended."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        isolate(monkeypatch, root)
        env = backed_up_env(root)
        with env.workspace() as workspace:
            set_ids = {s.kind: s.id for s in workspace.catalog.list_backup_sets()}
            job_ids = [job.id for job in workspace.catalog.list_jobs()]
        server = ApiServer(env.env_file).start()
        try:
            yield LiveApi(env, server, set_ids, job_ids)
            wait_for_jobs_to_end(server)
        finally:
            server.close()


def real_path_parameters(api: LiveApi, operation: schemathesis.APIOperation) -> dict | None:
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


def loaded_schema(api: LiveApi) -> schemathesis.BaseSchema:
    schema = schemathesis.openapi.from_url(api.server.url + OPENAPI_URL, headers=AUTH)
    schema.config.update(base_url=api.server.url)
    # The token is sent as it is (or not at all), never generated: a generated one
    # would only be refused, and slowed down after five.
    schema.config.generation.update(with_security_parameters=False)

    @schema.hook
    def before_generate_path_parameters(context, strategy):
        real = real_path_parameters(api, context.operation)
        if real is None:
            return strategy
        return st.one_of(strategy, st.fixed_dictionaries(real))

    return schema


# A restore's fields that name where it writes: in a generated restore each is replaced,
# just before it is sent, by a folder of its own under the module's temporary folder.
RESTORE_PATH_FIELDS = ("target_dir", "to", "pgdata", "data_dir")


def confined(body: object, root: Path) -> object:
    if not isinstance(body, dict):
        return body
    placed = dict(body)
    # strip_prefix without target_dir is refused (400), but should that refusal ever go,
    # such a restore would write below /: the stored path less the prefix.
    if placed.get("strip_prefix") is not None and placed.get("target_dir") is None:
        placed["target_dir"] = "stripped"
    for name in RESTORE_PATH_FIELDS:
        value = placed.get(name)
        if value is not None:
            digest = hashlib.sha256(repr(value).encode("utf-8", "surrogatepass")).hexdigest()
            placed[name] = str(root / "generated" / digest[:16])
    return placed


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


def session_from_a_fresh_address() -> requests.Session:
    session = requests.Session()
    adapter = _FromAddress(next(_addresses))
    session.mount("http://", adapter)
    return session
