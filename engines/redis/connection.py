"""Where the Redis server is and how to reach it, without ever showing the password.

REDIS_URL is `redis://[[user]:password@]host[:port][/db]`, `rediss://...` (TLS) or
`unix:///path/redis.sock?db=N`. Errors name the host, port and database, never the
password, and say what to check.
"""

import contextlib
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.connection import SSLConnection, UnixDomainSocketConnection, parse_url
from redis.retry import Retry

from engines.config import Secret, Settings
from engines.errors import JarvisError

CONNECT_TIMEOUT_S = 10
# Generous: a big DUMP or a slow SCAN on a loaded server must not look like a dead one.
COMMAND_TIMEOUT_S = 120


class RedisConnectionError(JarvisError):
    """The server could not be reached or refused us; the message names where, never how."""


class RedisDatabaseError(JarvisError):
    """A database index the server does not have."""


@dataclass(frozen=True)
class RedisTarget:
    host: str | None
    port: int | None
    db: int = 0
    path: str | None = None  # unix socket
    username: str | None = None
    password: Secret | None = None
    tls: bool = False

    @property
    def address(self) -> str:
        return f"unix:{self.path}" if self.path else f"{self.host}:{self.port}"

    def describe(self, db: int | None = None) -> str:
        """`Redis at host:port db N`: how errors and logs name the server."""
        user = f' as user "{self.username}"' if self.username else ""
        return f"Redis at {self.address} db {self.db if db is None else db}{user}"

    def scrub(self, text: str) -> str:
        """`text` (a server's or a library's words) with the password masked: a server or
        proxy may echo it, and such text goes into errors, logs and artifact metadata."""
        if self.password is None or not self.password.reveal():
            return text
        return text.replace(self.password.reveal(), "****")

    def client_kwargs(self, db: int | None = None) -> dict[str, Any]:
        options: dict[str, Any] = {
            "db": self.db if db is None else db,
            "username": self.username,
            "password": self.password.reveal() if self.password else None,
            "socket_connect_timeout": CONNECT_TIMEOUT_S,
            "socket_timeout": COMMAND_TIMEOUT_S,
            "retry": Retry(NoBackoff(), 0),
            "client_name": "jarvis-tui",
            # RESP2 as redis-py 5 spoke it by default: newer redis-py tries HELLO (RESP3)
            # first and, against servers without it (Redis before 6, many proxies), prints
            # a warning of several lines on stderr on every connection.
            "protocol": 2,
        }
        if self.path:
            options["unix_socket_path"] = self.path
        else:
            options.update(host=self.host, port=self.port, ssl=self.tls)
        return options


def target_from_url(url: str) -> RedisTarget:
    try:
        parts = parse_url(url)
    except ValueError as error:
        raise JarvisError(f"REDIS_URL is not a valid Redis URL ({error})") from None
    connection_class = parts.get("connection_class")
    password = parts.get("password")
    return RedisTarget(
        host=parts.get("host", "localhost") if not parts.get("path") else None,
        port=int(parts.get("port", 6379)) if not parts.get("path") else None,
        db=int(parts.get("db", 0) or 0),
        path=parts.get("path") if connection_class is UnixDomainSocketConnection else None,
        username=parts.get("username") or None,
        password=Secret(password) if password else None,
        tls=connection_class is SSLConnection,
    )


def target_from_settings(settings: Settings) -> RedisTarget:
    if settings.redis_url is None:
        raise JarvisError("Redis is not configured; set REDIS_URL (e.g. redis://localhost:6379/0)")
    return target_from_url(settings.redis_url.reveal())


def explain(error: Exception, target: RedisTarget, db: int | None = None) -> JarvisError:
    """An operator-facing error for a redis-py exception met while talking to `target`."""
    where = target.describe(db)
    text = target.scrub(str(error))
    lowered = text.lower()
    if "db index is out of range" in lowered:
        return RedisDatabaseError(
            f"{where}: the server has no database {target.db if db is None else db}; check the "
            "/N at the end of REDIS_URL or --db (the server's `databases` setting is the limit)"
        )
    refused = "noauth" in lowered or "wrongpass" in lowered
    if isinstance(error, redis.AuthenticationError) or refused:
        missing = ("noauth", "authentication required", "already authenticated")
        if any(word in lowered for word in missing):
            reason = "the server requires a password; put it in REDIS_URL (redis://:PASSWORD@host)"
        else:
            reason = "the server refused the user name or password in REDIS_URL; check them"
        return RedisConnectionError(f"cannot connect to {where}: {reason}")
    if "connection refused" in lowered:
        reason = "connection refused: is Redis running there and listening?"
    elif "name or service not known" in lowered or "nodename nor servname" in lowered:
        reason = "the host name does not resolve; check REDIS_URL"
    elif isinstance(error, redis.TimeoutError) or "timed out" in lowered:
        reason = f"no answer within {CONNECT_TIMEOUT_S} s; check the host, port and firewall"
    elif "no such file" in lowered:
        reason = "the socket file does not exist; check the path in REDIS_URL"
    else:
        reason = text or type(error).__name__
    return RedisConnectionError(f"cannot connect to {where}: {reason}")


def connect(target: RedisTarget, db: int | None = None) -> redis.Redis:
    """A checked client for `target` (PING answered), or an error naming the server."""
    client = redis.Redis(**target.client_kwargs(db))
    try:
        client.ping()
    except (redis.RedisError, OSError) as error:
        client.close()
        raise explain(error, target, db) from None
    return client


@contextlib.contextmanager
def connected(target: RedisTarget, db: int | None = None) -> Iterator[redis.Redis]:
    client = connect(target, db)
    try:
        yield client
    except redis.ConnectionError as error:
        raise explain(error, target, db) from error
    finally:
        client.close()


def tls_context() -> ssl.SSLContext:
    return ssl.create_default_context()
