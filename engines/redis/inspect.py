"""Facts about a Redis server: version, the RDB version it reads, memory, keyspace."""

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

import redis

from engines.errors import JarvisError

# The RDB format version each Redis release writes (and the newest it can read).
_RDB_VERSIONS = (
    ((8, 0), 12), ((7, 4), 12), ((7, 2), 11), ((7, 0), 10), ((5, 0), 9), ((4, 0), 8),
    ((3, 2), 7), ((2, 6), 6), ((0, 0), 5),
)  # fmt: skip
_NEWEST_KNOWN = _RDB_VERSIONS[0][0]


def parse_version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def rdb_version_of(redis_version: str) -> int | None:
    """The RDB version a Redis release reads; None for a release newer than this table,
    whose limit we do not know (it is then not second-guessed)."""
    version = parse_version(redis_version)
    if version[:2] > _NEWEST_KNOWN:
        return None
    for release, rdb_version in _RDB_VERSIONS:
        if version[:2] >= release:
            return rdb_version
    return None


@dataclass(frozen=True)
class ServerFacts:
    version: str
    used_memory: int
    keyspace: dict[int, int]  # database -> keys
    expires: dict[int, int]  # database -> keys with a TTL
    databases: int | None  # the `databases` setting, when CONFIG GET is allowed
    role: str
    cluster: bool = False  # cluster mode: database 0 only

    @property
    def version_tuple(self) -> tuple[int, ...]:
        return parse_version(self.version)

    @property
    def rdb_version(self) -> int | None:
        return rdb_version_of(self.version)

    @property
    def total_keys(self) -> int:
        return sum(self.keyspace.values())

    def to_metadata(self) -> dict[str, Any]:
        return {
            "server_version": self.version,
            "server_rdb_version": self.rdb_version,
            "used_memory": self.used_memory,
            "databases_configured": self.databases,
            "server_keys_per_db": {str(db): n for db, n in sorted(self.keyspace.items())},
        }


class UnexpectedReplyError(JarvisError):
    """An answer no Redis server gives: something else listens there (a proxy, another
    service), or a broken server."""


def _unexpected(client: redis.Redis, command: str, error: Exception) -> UnexpectedReplyError:
    options = client.connection_pool.connection_kwargs
    where = options.get("path") or f"{options.get('host')}:{options.get('port')}"
    return UnexpectedReplyError(
        f"{where} answered {command} with what no Redis server sends ({error}); is it a Redis "
        "server, and not a proxy or another service?"
    )


def server_facts(client: redis.Redis) -> ServerFacts:
    try:
        return _server_facts(client)
    except (ValueError, TypeError, AttributeError) as error:
        raise _unexpected(client, "INFO", error) from None


def _server_facts(client: redis.Redis) -> ServerFacts:
    info = client.info("server") | client.info("memory") | client.info("replication")
    keyspace = client.info("keyspace")
    keys: dict[int, int] = {}
    expires: dict[int, int] = {}
    for name, fields in keyspace.items():
        if name.startswith("db") and isinstance(fields, dict):
            keys[int(name[2:])] = int(fields.get("keys", 0))
            expires[int(name[2:])] = int(fields.get("expires", 0))
    return ServerFacts(
        version=str(info.get("redis_version", "unknown")),
        used_memory=int(info.get("used_memory", 0)),
        keyspace=keys,
        expires=expires,
        databases=configured_databases(client),
        role=str(info.get("role", "master")),
        cluster=info.get("redis_mode") == "cluster",
    )


def configured_databases(client: redis.Redis) -> int | None:
    try:
        answer = client.config_get("databases")
    except redis.ResponseError:  # managed services often disable CONFIG
        return None
    value = answer.get("databases") if isinstance(answer, dict) else None
    return int(value) if value else None


def server_time_ms(client: redis.Redis) -> int:
    try:
        seconds, micros = client.time()
        return int(seconds) * 1000 + int(micros) // 1000
    except (ValueError, TypeError) as error:
        raise _unexpected(client, "TIME", error) from None


def local_redis_server() -> str | None:
    found = shutil.which("redis-server")
    if found:
        return found
    return "/usr/bin/redis-server" if os.path.isfile("/usr/bin/redis-server") else None


def binary_version(binary: str) -> str:
    """`redis-server --version` -> "7.0.15"."""
    output = subprocess.run(
        [binary, "--version"], capture_output=True, text=True, timeout=30, check=False
    ).stdout
    found = re.search(r"v=(\d+\.\d+(?:\.\d+)?)", output)
    return found.group(1) if found else "unknown"
