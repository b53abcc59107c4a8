"""A small but awkward database for the PostgreSQL tests, and a fingerprint to compare copies.

Several schemas, serial and identity columns, a free-standing sequence, JSON,
non-ASCII text, a view, an index, a foreign key, a comment and a large object.
"""

import contextlib
import secrets
from collections.abc import Iterator
from pathlib import Path

from jarvis_tui.cli import main
from tests.support.postgres import PostgresServer

KEY = "0123456789abcdef" * 4
PASSWORD = "pg-secret-Hunter2"

SEED_SQL = """
CREATE SCHEMA app;
CREATE TABLE app.users (
    id serial PRIMARY KEY,
    email text UNIQUE NOT NULL,
    name text NOT NULL,
    profile jsonb,
    created_at timestamptz NOT NULL DEFAULT '2024-01-01 00:00:00+00'
);
CREATE INDEX users_name_idx ON app.users (name);
CREATE TABLE public.orders (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id int NOT NULL REFERENCES app.users (id),
    amount numeric(12, 2) NOT NULL,
    note text
);
CREATE TABLE public.empty_table (k int);
CREATE SEQUENCE public.invoice_numbers START 1000;
SELECT setval('public.invoice_numbers', 4242);
CREATE VIEW public.big_orders AS SELECT * FROM public.orders WHERE amount > 100;
COMMENT ON TABLE app.users IS 'Benutzer – ユーザー';
INSERT INTO app.users (email, name, profile)
SELECT 'user' || g || '@example.com',
       (ARRAY['Zoë', 'Grüße', '東京', 'Ørsted', '🎵 Müsic', 'plain'])[1 + g % 6] || ' ' || g,
       jsonb_build_object('n', g, 'tags', jsonb_build_array('a', 'ü'))
FROM generate_series(1, {users}) AS g;
INSERT INTO public.orders (user_id, amount, note)
SELECT 1 + g % {users}, (g % 500) + 0.25, CASE WHEN g % 3 = 0 THEN NULL ELSE 'naïve café ' || g END
FROM generate_series(1, {orders}) AS g;
SELECT lo_from_bytea(0, convert_to('large object: ünïcödé', 'UTF8'));
"""


def seed_database(
    server: PostgresServer, name: str, *, users: int = 300, orders: int = 900
) -> None:
    server.drop_database(name)
    server.create_database(name)
    server.execute(SEED_SQL.format(users=users, orders=orders), dbname=name)


def unique_name(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(3)}"


@contextlib.contextmanager
def seeded_template(server: PostgresServer, extra_sql: str) -> Iterator[str]:
    """A database seeded as a PgCase's source, `extra_sql` run in it, for
    `PgCase(template=...)` to copy: CREATE DATABASE copies its files in a fraction of
    the time a big table's SQL takes to run again for every test."""
    server.start()  # no-op while it runs; a test before may have stopped the shared one
    name = unique_name("jarvis_template")
    seed_database(server, name)
    server.execute(extra_sql, dbname=name)
    try:
        yield name
    finally:
        server.drop_database(name)


def copy_database(server: PostgresServer, template: str, name: str) -> None:
    from psycopg import sql

    statement = sql.SQL("CREATE DATABASE {} TEMPLATE {}")
    server.execute(statement.format(sql.Identifier(name), sql.Identifier(template)))


FINGERPRINT_SQL = """
SELECT n.nspname || '.' || c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'v', 'S', 'i') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%'
ORDER BY 1
"""


def fingerprint(server: PostgresServer, database: str) -> dict:
    """Relations, every table's rows (hashed in a stable order), sequences, large objects."""
    relations = [r[0] for r in server.execute(FINGERPRINT_SQL, dbname=database)]
    tables = server.execute(
        "SELECT schemaname, tablename FROM pg_tables WHERE schemaname NOT IN "
        "('pg_catalog', 'information_schema') ORDER BY 1, 2",
        dbname=database,
    )
    contents = {}
    for schema, table in tables:
        rows = server.execute(
            f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) "
            f'FROM "{schema}"."{table}" t',
            dbname=database,
        )
        contents[f"{schema}.{table}"] = rows[0]
    sequences = server.execute(
        "SELECT schemaname || '.' || sequencename, last_value FROM pg_sequences ORDER BY 1",
        dbname=database,
    )
    large_objects = server.execute(
        "SELECT convert_from(lo_get(oid), 'UTF8') FROM pg_largeobject_metadata ORDER BY oid",
        dbname=database,
    )
    comment = server.execute("SELECT obj_description('app.users'::regclass)", dbname=database)
    return {
        "relations": relations,
        "contents": contents,
        "sequences": sequences,
        "large_objects": large_objects,
        "comment": comment,
    }


def database_names(server: PostgresServer) -> set[str]:
    return {r[0] for r in server.execute("SELECT datname FROM pg_database")}


def write_env_file(
    path: Path, tmp_path: Path, server: PostgresServer, database: str, **extra: str
) -> Path:
    lines = {
        "BACKUP_DIR": str(tmp_path / "repo"),
        "BACKUP_CATALOG_PATH": str(tmp_path / "catalog.sqlite3"),
        "BACKUP_LOG_DIR": str(tmp_path / "logs"),
        "BACKUP_ENCRYPTION_KEY": KEY,
        "POSTGRES_HOST": server.host,
        "POSTGRES_PORT": str(server.port),
        "POSTGRES_USER": server.user,
        "POSTGRES_DB": database,
        **extra,
    }
    path.write_text("".join(f"{k}={v}\n" for k, v in lines.items()))
    return path


# Base backups' settings: gzip-9 of a whole cluster costs seconds.
BASE_BACKUP_SETTINGS = {"BACKUP_COMPRESSION": "zstd"}


class PgCase:
    """One test's seeded source database, its settings file, and the CLI to run against it."""

    def __init__(
        self, server: PostgresServer, tmp_path: Path, *, template: str | None = None, **extra: str
    ):
        self.server = server
        self.tmp_path = tmp_path
        self.source = unique_name("jarvis_src")
        if template is None:
            seed_database(server, self.source)
        else:
            copy_database(server, template, self.source)
        self.env_file = write_env_file(
            tmp_path / "jarvis.env", tmp_path, server, self.source, **extra
        )
        self._databases_before = database_names(server) - {self.source}

    def cli(self, *argv: str) -> int:
        return main(["--env-file", str(self.env_file), *argv])

    def workspace(self):
        from engines.config import load_settings
        from engines.workspace import Workspace

        return Workspace.open(load_settings(env_file=self.env_file))

    def fingerprint(self, database: str | None = None) -> dict:
        return fingerprint(self.server, database or self.source)

    def databases(self) -> set[str]:
        return database_names(self.server)

    def job_log(self) -> str:
        """The log file of every job so far (BACKUP_LOG_DIR/backup.log)."""
        return (self.tmp_path / "logs" / "backup.log").read_text()

    def cleanup(self) -> None:
        for name in database_names(self.server) - self._databases_before:
            self.server.drop_database(name)
