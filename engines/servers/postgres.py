"""A PostgreSQL cluster of our own (initdb, postgres) on a free loopback port."""

import os
import shutil
import signal
import subprocess
import urllib.parse
from pathlib import Path
from typing import Any

from engines.servers.process import (
    LOOPBACK,
    Account,
    ProcessServer,
    child_environment,
    chown_tree,
    credentials,
)


def _major_version(bin_dir: Path) -> int:
    name = bin_dir.parent.name
    return int(name) if name.isdigit() else -1


def find_postgres_bin_dir() -> Path:
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        found = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if found.returncode == 0 and found.stdout.strip():
            candidates.append(Path(found.stdout.strip()))
    installed = Path("/usr/lib/postgresql").glob("*/bin")
    candidates += sorted(installed, key=_major_version, reverse=True)
    for bin_dir in candidates:
        if (bin_dir / "initdb").is_file() and (bin_dir / "postgres").is_file():
            return bin_dir
    raise RuntimeError(
        "PostgreSQL server binaries (initdb, postgres) not found; install the `postgresql` "
        "package, or run ./scripts/test.sh which installs it when run as root"
    )


HBA_RULES = """\
local   all          all                 trust
host    all          all   127.0.0.1/32  trust
local   replication  all                 trust
host    replication  all   127.0.0.1/32  trust
"""


class PostgresServer(ProcessServer):
    """A private PostgreSQL cluster: trust auth on loopback, WAL archived (for PITR).

    `data_source` starts from a copy of an existing data directory (a restored
    base backup, say) instead of a fresh `initdb`. Settings we need are appended
    to postgresql.conf; `ALTER SYSTEM` still overrides them.
    """

    kind = "pg"
    stop_signal = signal.SIGINT  # "fast" shutdown; SIGTERM would wait for clients
    user = "postgres"

    def __init__(
        self,
        base_dir: Path,
        account: Account | None,
        *,
        bin_dir: Path | None = None,
        data_source: Path | None = None,
        settings: dict[str, str] | None = None,
        detached: bool = False,
    ) -> None:
        self.bin_dir = bin_dir or find_postgres_bin_dir()
        super().__init__(base_dir, account, detached=detached)
        self.data_dir = self.base_dir / "data"
        self.socket_dir = self.base_dir / "socket"
        self.wal_archive_dir = self.base_dir / "wal-archive"
        for folder in (self.socket_dir, self.wal_archive_dir):
            folder.mkdir(mode=0o700)
            chown_tree(folder, self.account)
        if data_source is None:
            self._initdb()
        else:
            self._adopt(data_source)
        self._configure(settings or {})

    def binary(self, name: str) -> str:
        return str(self.bin_dir / name)

    def _initdb(self) -> None:
        result = subprocess.run(
            [
                self.binary("initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                self.user,
                "-E",
                "UTF8",
                "--locale=C",
                "--auth=trust",
                "--no-sync",
            ],
            cwd=self.base_dir,
            env=child_environment(self.account, self.base_dir),
            capture_output=True,
            text=True,
            **credentials(self.account),
        )
        if result.returncode != 0:
            output = result.stdout + result.stderr
            raise RuntimeError(f"initdb failed ({result.returncode}):\n{output}")

    def _adopt(self, source: Path) -> None:
        shutil.copytree(source, self.data_dir, symlinks=True)
        for leftover in ("postmaster.pid", "postmaster.opts"):
            (self.data_dir / leftover).unlink(missing_ok=True)
        chown_tree(self.data_dir, self.account)
        os.chmod(self.data_dir, 0o700)

    def _configure(self, extra: dict[str, str]) -> None:
        archive = self.wal_archive_dir
        settings = {
            "wal_level": "replica",
            "max_wal_senders": "4",
            "max_replication_slots": "4",
            "archive_mode": "on",
            "archive_command": f"'test ! -f {archive}/%f && cp %p {archive}/%f'",
            "shared_buffers": "32MB",
            "max_connections": "50",
            "timezone": "'UTC'",
            "log_timezone": "'UTC'",
            **extra,
        }
        lines = "".join(f"{name} = {value}\n" for name, value in settings.items())
        with open(self.data_dir / "postgresql.conf", "a") as conf:
            conf.write(f"\n# jarvis throwaway server\n{lines}")
        (self.data_dir / "pg_hba.conf").write_text(HBA_RULES)

    def _argv(self, port: int) -> list[str]:
        return [
            self.binary("postgres"),
            "-D",
            str(self.data_dir),
            "-k",
            str(self.socket_dir),
            "-p",
            str(port),
            "-c",
            f"listen_addresses={LOOPBACK}",
            "-c",
            "fsync=off",
        ]

    def _answers(self, port: int) -> bool:
        import psycopg

        try:
            with psycopg.connect(self._dsn(port, "postgres"), connect_timeout=2) as conn:
                row = conn.execute("SHOW data_directory").fetchone()
        except psycopg.OperationalError:
            return False
        return row is not None and os.path.realpath(row[0]) == os.path.realpath(self.data_dir)

    def _dsn(self, port: int, dbname: str) -> str:
        from psycopg.conninfo import make_conninfo

        return make_conninfo(host=self.host, port=port, user=self.user, dbname=dbname)

    def dsn(self, dbname: str = "postgres") -> str:
        return self._dsn(self.port, dbname)

    def url(self, dbname: str = "postgres") -> str:
        database = urllib.parse.quote(dbname, safe="")
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def env(self) -> dict[str, str]:
        """libpq variables for `pg_dump` and friends; merge into a copy of os.environ."""
        return {"PGHOST": self.host, "PGPORT": str(self.port), "PGUSER": self.user}

    def execute(self, sql: Any, params: Any = None, dbname: str = "postgres") -> list[tuple]:
        """Run one statement in autocommit mode; the rows it returned, if any."""
        import psycopg

        with psycopg.connect(self.dsn(dbname), autocommit=True) as conn:
            cursor = conn.execute(sql, params)
            return cursor.fetchall() if cursor.description else []

    def create_database(self, name: str) -> None:
        from psycopg import sql

        self.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def drop_database(self, name: str) -> None:
        from psycopg import sql

        statement = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
        self.execute(statement.format(sql.Identifier(name)))

    def give_access(self, path: Path) -> None:
        """Hand `path` to the server's OS account (e.g. an archive folder for archive_command)."""
        chown_tree(path, self.account)
