"""Where the PostgreSQL server is and how to reach it, without ever showing the password.

Settings give either DATABASE_URL or POSTGRES_HOST/PORT/USER/PASSWORD/DB. The
password travels to psycopg inside the process and to the client tools through
PGPASSWORD in their environment, never on a command line, in a log or an error.
"""

import os
import re
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import psycopg
from psycopg import sql

from engines.config import Secret, Settings
from engines.errors import JarvisError, NotFoundError

CONNECT_TIMEOUT_S = 10
MAINTENANCE_DATABASES = ("postgres", "template1")
APPLICATION_NAME = "jarvis-tui"
_MAX_IDENTIFIER_BYTES = 63
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$-]*")


class PostgresConnectionError(JarvisError):
    """The server could not be reached or refused us; the message names where, never how."""


class DatabaseMissingError(NotFoundError):
    """The database named in the settings or options does not exist on the server."""


@dataclass(frozen=True)
class PostgresTarget:
    host: str
    port: int
    user: str
    database: str
    password: Secret | None = None
    sslmode: str | None = None

    def with_database(self, database: str) -> "PostgresTarget":
        return replace(self, database=database)

    def describe(self, database: str | None = None) -> str:
        """`database "x" on host:port as user`: how errors and logs name the server."""
        return (
            f'database "{database or self.database}" on {self.host}:{self.port} '
            f'as user "{self.user}"'
        )

    def psycopg_kwargs(self, database: str | None = None) -> dict[str, Any]:
        options: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "dbname": database or self.database,
            "connect_timeout": CONNECT_TIMEOUT_S,
            "application_name": APPLICATION_NAME,
        }
        if self.password is not None:
            options["password"] = self.password.reveal()
        if self.sslmode:
            options["sslmode"] = self.sslmode
        return options

    def tool_environment(self, database: str | None = None) -> dict[str, str]:
        """The environment for pg_dump, pg_restore, psql: libpq variables, password included."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(
            PGHOST=self.host,
            PGPORT=str(self.port),
            PGUSER=self.user,
            PGDATABASE=database or self.database,
            PGCONNECT_TIMEOUT=str(CONNECT_TIMEOUT_S),
            LC_MESSAGES="C",
        )
        if self.password is not None:
            env["PGPASSWORD"] = self.password.reveal()
        if self.sslmode:
            env["PGSSLMODE"] = self.sslmode
        return env


def target_from_settings(settings: Settings, database: str | None = None) -> PostgresTarget:
    """DATABASE_URL wins for host, port, user and password; POSTGRES_DB (as in the guide's
    `POSTGRES_DB=jarvis_db_restored restore-postgres.sh`) and then `database` pick the database."""
    url = settings.database_url
    if url is not None:
        parts = urlsplit(url.reveal())
        query = dict(parse_qsl(parts.query))
        password = unquote(parts.password) if parts.password else None
        target = PostgresTarget(
            host=query.get("host") or parts.hostname or "localhost",
            port=parts.port or int(query.get("port", 5432)),
            user=unquote(parts.username) if parts.username else query.get("user", "postgres"),
            database=unquote(parts.path.lstrip("/")) or "postgres",
            password=Secret(password) if password else settings.postgres_password,
            sslmode=query.get("sslmode"),
        )
    else:
        target = PostgresTarget(
            host=settings.postgres_host or "localhost",
            port=settings.postgres_port,
            user=settings.postgres_user or "postgres",
            database="postgres",
            password=settings.postgres_password,
        )
    chosen = database or settings.postgres_db or target.database
    return target.with_database(chosen)


def check_identifier(name: str, what: str = "database name") -> str:
    """Refuse names that would need guessing about quoting or be truncated by the server."""
    if not _IDENTIFIER.fullmatch(name) or len(name.encode()) > _MAX_IDENTIFIER_BYTES:
        raise JarvisError(
            f"{what} {name!r} is not a valid identifier: use letters, digits, '_', '$' or '-', "
            f"starting with a letter or '_', at most {_MAX_IDENTIFIER_BYTES} bytes"
        )
    return name


def _reason(
    error: psycopg.OperationalError, target: PostgresTarget, timeout_s: int = CONNECT_TIMEOUT_S
) -> str:
    text = str(error)
    if target.password is not None:
        text = text.replace(target.password.reveal(), "****")
    if "password authentication failed" in text or "no password supplied" in text:
        return (
            "the server refused the password; check POSTGRES_PASSWORD "
            "(or the password in DATABASE_URL)"
        )
    if "Connection refused" in text:
        return "connection refused: is PostgreSQL running there and listening on TCP?"
    if "resolve host" in text or "could not translate host name" in text:
        return "the host name does not resolve; check POSTGRES_HOST (or DATABASE_URL)"
    if "timeout expired" in text:
        return f"no answer within {timeout_s} s; check the host, port and firewall"
    last_line = text.strip().splitlines()[-1] if text.strip() else type(error).__name__
    return last_line.split("FATAL:", 1)[-1].strip()


def connect(
    target: PostgresTarget,
    database: str | None = None,
    *,
    autocommit: bool = True,
    timeout_s: int = CONNECT_TIMEOUT_S,
) -> psycopg.Connection:
    """A psycopg connection, or an operator-facing error naming host, port, user and database."""
    database = database or target.database
    options = {**target.psycopg_kwargs(database), "connect_timeout": timeout_s}
    try:
        return psycopg.connect(**options, autocommit=autocommit)
    except psycopg.OperationalError as error:
        where = target.describe(database)
        if f'database "{database}" does not exist' in str(error):
            raise DatabaseMissingError(
                f"{where}: the database does not exist; check POSTGRES_DB, --database or "
                "--target-db, or list databases with `psql -l`"
            ) from None
        raise PostgresConnectionError(
            f"cannot connect to {where}: {_reason(error, target, timeout_s)}"
        ) from None


def connect_maintenance(target: PostgresTarget) -> psycopg.Connection:
    """A connection for CREATE/ALTER/DROP DATABASE: `postgres`, else `template1`."""
    missing: DatabaseMissingError | None = None
    for name in MAINTENANCE_DATABASES:
        try:
            return connect(target, name)
        except DatabaseMissingError as error:
            missing = error
    assert missing is not None
    raise missing


def identifier(name: str) -> sql.Identifier:
    return sql.Identifier(name)
