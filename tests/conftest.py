"""Fixtures for real throwaway servers and an environment isolated from the real user.

Servers start only when a test asks for them. PostgreSQL, Redis (and a spare Redis
to restore into) and S3 live for the whole session (S3 buckets are forgotten before
each test that uses it); SMTP and webhook receivers are fresh for every test. Tests
that kill or stop a server should start their own `PostgresServer()` /
`RedisServer()`; the shared ones are restarted before the next test that asks for
them, should one stop.
"""

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from tests.console_fixtures import *  # noqa: F403 (the console tests' fixtures)
from tests.support.files_env import CLEARED_PREFIXES
from tests.support.postgres import PostgresServer
from tests.support.redis import RedisServer
from tests.support.s3 import S3Server
from tests.support.smtp import SmtpServer
from tests.support.webhook import WebhookReceiver

Server = TypeVar("Server", PostgresServer, RedisServer, S3Server)


def pytest_configure(config: pytest.Config) -> None:
    # The test SMTP server requires AUTH without TLS on purpose: it only listens on loopback.
    config.addinivalue_line(
        "filterwarnings", "ignore:Requiring AUTH while not requiring TLS:UserWarning"
    )


@pytest.fixture(scope="session", autouse=True)
def _utc_timezone() -> Iterator[None]:
    previous = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if previous is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = previous
    time.tzset()


def _serving(server: Server) -> Iterator[Server]:
    try:
        yield server.start()
    finally:
        server.close()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    yield from _serving(PostgresServer())


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    yield from _serving(RedisServer())


@pytest.fixture(scope="session")
def spare_redis_server() -> Iterator[RedisServer]:
    """A second Redis: a restore target apart from the server that was backed up."""
    yield from _serving(RedisServer())


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    yield from _serving(S3Server())


@pytest.fixture(autouse=True)
def _environment_restored() -> Iterator[None]:
    """No test leaves variables behind for the next: the CLI run in-process sets some on
    purpose (`--browse` sets BACKUP_BROWSE so the console's job processes browse too)."""
    saved = dict(os.environ)
    yield
    if os.environ != saved:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(autouse=True)
def _shared_servers_ready(request: pytest.FixtureRequest) -> None:
    for name in ("postgres_server", "redis_server", "spare_redis_server"):
        if name in request.fixturenames:
            request.getfixturevalue(name).start()  # no-op while it runs
    if "s3_server" in request.fixturenames:
        request.getfixturevalue("s3_server").reset()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer()
    try:
        yield server.start()
    finally:
        server.close()


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver()
    try:
        yield server.start()
    finally:
        server.close()


@dataclass(frozen=True)
class IsolatedEnv:
    home: Path
    config_home: Path
    data_home: Path
    cache_home: Path
    state_home: Path
    runtime_dir: Path
    cwd: Path


def _xdg_folders(env: IsolatedEnv) -> dict[str, Path]:
    root = env.home.parent
    return {
        "XDG_CONFIG_HOME": env.config_home,
        "XDG_DATA_HOME": env.data_home,
        "XDG_CACHE_HOME": env.cache_home,
        "XDG_STATE_HOME": env.state_home,
        "XDG_RUNTIME_DIR": env.runtime_dir,
        # Without these platformdirs' site_* lookups would read /etc/xdg and /usr/share.
        "XDG_CONFIG_DIRS": root / "etc-xdg",
        "XDG_DATA_DIRS": root / "usr-share",
    }


@pytest.fixture
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> IsolatedEnv:
    """HOME, XDG folders and the working directory under tmp; the app's variables unset."""
    root = tmp_path / "isolated"
    env = IsolatedEnv(
        home=root / "home",
        config_home=root / "home/.config",
        data_home=root / "home/.local/share",
        cache_home=root / "home/.cache",
        state_home=root / "home/.local/state",
        runtime_dir=root / "run",
        cwd=root / "work",
    )
    for folder in (*_xdg_folders(env).values(), env.cwd):
        folder.mkdir(parents=True, mode=0o700)
    for name in list(os.environ):
        if name.startswith(CLEARED_PREFIXES):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(env.home))
    for name, folder in _xdg_folders(env).items():
        monkeypatch.setenv(name, str(folder))
    # `.env` discovery starts in the working directory.
    monkeypatch.chdir(env.cwd)
    return env
