"""Backing up a database: pg_dump's custom format streamed into the artifact pipeline.

One REPEATABLE READ transaction exports a snapshot and pg_dump runs with `--snapshot`,
so the recorded row counts are exactly what the dump holds: counted from the COPY data
as it streams past (archive_stream), or, without the C chunk walker, by count(*) in
the same transaction while pg_dump runs. The transaction stays open until pg_dump has
finished, which keeps the exported snapshot valid.
"""

import contextlib
import re
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import replace
from typing import Any

import psycopg

from engines.plumbing.processes import widen_pipe
from engines.postgres.archive_stream import ArchiveWalker, BlockEnd
from engines.postgres.connection import PostgresTarget, connect
from engines.postgres.inspect import (
    ServerFacts,
    TableInfo,
    count_large_objects,
    count_rows,
    list_tables,
)
from engines.postgres.process import RunningTool
from engines.postgres.tools import ClientTools, low_priority_prefix

READ_SIZE = 1024 * 1024
MODE_FLAGS = {"full": [], "schema": ["--schema-only"], "data": ["--data-only"]}


def dump_file_stem(database: str, mode: str) -> str:
    """A file-system-safe name part: `jarvis_db_full`."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", database).strip("._") or "database"
    return f"{safe}_{mode}"


def stream_output(tool: RunningTool, what: str) -> Iterator[bytes]:
    """The tool's stdout in blocks; at the end its exit status is checked, so a failed
    dump raises inside the artifact writer and never becomes a complete artifact."""
    try:
        while block := tool.stdout.read(READ_SIZE):
            yield block
        tool.check(what)
    finally:
        tool.stop()


class SnapshotCounter:
    """The exporting transaction and, on a thread, the table counts inside it."""

    def __init__(self, target: PostgresTarget, *, count: bool):
        self._conn = connect(target, autocommit=False)
        self._conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        self._conn.read_only = True
        row = self._conn.execute("SELECT pg_export_snapshot()").fetchone()
        assert row is not None
        self.snapshot_id: str = row[0]
        self._count = count
        self._result: Future[tuple[list[TableInfo], int]] = Future()
        self._thread = threading.Thread(target=self._run, name="pg-row-counts", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            tables = list_tables(self._conn)
            if self._count:
                tables = count_rows(self._conn, tables)
            self._result.set_result((tables, count_large_objects(self._conn)))
        except BaseException as error:
            self._result.set_exception(error)

    def result(self) -> tuple[list[TableInfo], int]:
        return self._result.result()

    def count_on_server(self, tables: list[TableInfo]) -> list[TableInfo]:
        """count(*) of `tables` in the snapshot (once the thread is done)."""
        return count_rows(self._conn, tables)

    def close(self) -> None:
        if self._thread.is_alive():
            # On failure or cancellation: stop the count so the thread ends with the connection.
            with contextlib.suppress(Exception):
                self._conn.cancel()
            self._thread.join()
        with contextlib.suppress(Exception):
            self._conn.rollback()
        self._conn.close()

    def __enter__(self) -> "SnapshotCounter":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class StreamRowCounter:
    """The rows of each table, counted from its COPY data as the dump streams past.

    An archive the walker does not know (a newer pg_dump's format) is not a failed
    backup: counting stops, and the rows are counted on the server instead."""

    def __init__(self) -> None:
        self._walker: ArchiveWalker | None = ArchiveWalker()
        self.rows: dict[tuple[str, str], int] = {}

    def watch(self, blocks: Iterator[bytes]) -> Iterator[bytes]:
        for block in blocks:
            self._count(block)
            yield block
        if self._walker is not None:
            try:
                self._walker.finish()
            except ValueError:
                self._walker = None

    def _count(self, block: bytes) -> None:
        if self._walker is None:
            return
        try:
            events = self._walker.feed(block)
        except ValueError:
            self._walker = None
            return
        for event in events:
            if isinstance(event, BlockEnd) and event.rows is not None:
                table = (event.entry.schema, event.entry.tag)
                self.rows[table] = self.rows.get(table, 0) + event.rows

    @property
    def complete(self) -> bool:
        """False when the walk stopped at something it does not know."""
        return self._walker is not None

    def fill_in(self, tables: list[TableInfo], snapshot: SnapshotCounter) -> list[TableInfo]:
        """`tables` with their streamed counts; any table without one (none, unless the
        walk stopped) is counted on the server in the dump's snapshot."""
        rows = self.rows if self.complete else {}
        counted = [
            replace(t, rows=rows.get((t.schema, t.name))) if not t.partitioned else t
            for t in tables
        ]
        missing = [t for t in counted if t.rows is None and not t.partitioned]
        recounted = {t.qualified: t for t in snapshot.count_on_server(missing)} if missing else {}
        return [recounted.get(t.qualified, t) for t in counted]


def start_pg_dump(
    tools: ClientTools, target: PostgresTarget, mode: str, snapshot_id: str
) -> RunningTool:
    argv = [
        *low_priority_prefix(),
        tools.path("pg_dump"),
        "--format=custom",
        "--compress=0",  # the artifact pipeline compresses; pg_dump's zlib would only slow it
        # Owners and grants are kept: the restore leaves them out on request (--no-owner,
        # --no-acl), for a server without the backup's roles.
        f"--snapshot={snapshot_id}",
        *MODE_FLAGS[mode],
    ]
    tool = RunningTool(argv, target.tool_environment(), name="pg_dump", stdout=-1)
    widen_pipe(tool.stdout.fileno(), READ_SIZE)
    return tool


def can_read_role_passwords(conn: psycopg.Connection) -> bool:
    row = conn.execute("SELECT has_table_privilege('pg_catalog.pg_authid', 'SELECT')").fetchone()
    return bool(row and row[0])


def start_pg_dumpall_globals(
    tools: ClientTools, target: PostgresTarget, *, with_passwords: bool
) -> RunningTool:
    argv = [
        *low_priority_prefix(),
        tools.path("pg_dumpall"),
        "--globals-only",
        f"--database={target.database}",
    ]
    if not with_passwords:
        argv.append("--no-role-passwords")
    return RunningTool(argv, target.tool_environment(), name="pg_dumpall", stdout=-1)


def dump_metadata(
    target: PostgresTarget,
    facts: ServerFacts,
    tools: ClientTools,
    mode: str,
    tables: list[TableInfo],
    large_objects: int,
) -> dict[str, Any]:
    counted = [t.rows for t in tables if t.rows is not None]
    return {
        "content": "database",
        "format": "pg_dump custom",
        "database": target.database,
        "host": target.host,
        "port": target.port,
        "user": target.user,
        **facts.to_metadata(),
        "pg_dump_version": tools.version,
        "pg_dump_major": tools.major,
        "tables": [t.to_metadata() for t in tables],
        "table_count": len(tables),
        "total_rows": sum(counted) if mode != "schema" else None,
        "large_objects": large_objects,
    }
