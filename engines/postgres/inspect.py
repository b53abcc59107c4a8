"""What a database holds: server facts, its tables with exact row counts, and whether a
restore target is empty. Row counts for a backup are taken inside the snapshot pg_dump uses.
"""

import time
from dataclasses import dataclass, field, replace
from typing import Any

import psycopg
from psycopg import sql

# Tables pg_dump writes data for: ordinary and partitioned tables outside the system
# schemas that no extension owns (extension tables are recreated by CREATE EXTENSION).
_USER_TABLES = """
SELECT n.nspname, c.relname, c.relkind,
       ARRAY(SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
             WHERE x.indrelid = c.oid ORDER BY 1) AS indexes,
       ARRAY(SELECT s.relname FROM pg_depend d JOIN pg_class s ON s.oid = d.objid
             WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
               AND d.refobjid = c.oid AND s.relkind = 'S' AND d.deptype IN ('a', 'i')
             ORDER BY 1) AS sequences
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
  AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
  AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = 'pg_class'::regclass
                  AND e.objid = c.oid AND e.deptype = 'e')
ORDER BY 1, 2
"""

_OTHER_USER_OBJECTS = """
SELECT
  (SELECT count(*) FROM pg_namespace WHERE nspname <> 'public'
     AND nspname <> 'information_schema' AND nspname !~ '^pg_')
  + (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname <> 'information_schema' AND n.nspname !~ '^pg_')
  + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
       AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = 'pg_proc'::regclass
                       AND e.objid = p.oid AND e.deptype = 'e'))
  + (SELECT count(*) FROM pg_largeobject_metadata)
"""


STATS_SETTLE_S = 3.0


@dataclass(frozen=True)
class TableInfo:
    schema: str
    name: str
    rows: int | None = None  # None: not counted (schema-only backups, partitioned parents)
    indexes: tuple[str, ...] = ()
    sequences: tuple[str, ...] = ()
    partitioned: bool = False  # its rows live in (and are counted with) its partitions

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    def to_metadata(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "name": self.name,
            "rows": self.rows,
            "indexes": list(self.indexes),
            "sequences": list(self.sequences),
            "partitioned": self.partitioned,
        }

    @classmethod
    def from_metadata(cls, item: dict[str, Any]) -> "TableInfo":
        return cls(
            item["schema"],
            item["name"],
            item.get("rows"),
            tuple(item.get("indexes", ())),
            tuple(item.get("sequences", ())),
            bool(item.get("partitioned", False)),
        )


@dataclass(frozen=True)
class ServerFacts:
    version: str
    version_num: int
    database_size: int
    encoding: str
    collate: str
    ctype: str

    def to_metadata(self) -> dict[str, Any]:
        return {
            "server_version": self.version,
            "server_version_num": self.version_num,
            "database_size": self.database_size,
            "encoding": self.encoding,
            "lc_collate": self.collate,
            "lc_ctype": self.ctype,
        }


def server_facts(conn: psycopg.Connection) -> ServerFacts:
    row = conn.execute(
        "SELECT current_setting('server_version'), current_setting('server_version_num')::int,"
        " pg_database_size(current_database()), pg_encoding_to_char(d.encoding),"
        " d.datcollate, d.datctype FROM pg_database d WHERE d.datname = current_database()"
    ).fetchone()
    assert row is not None
    return ServerFacts(*row)


def list_tables(conn: psycopg.Connection) -> list[TableInfo]:
    return [
        TableInfo(schema, name, None, tuple(indexes), tuple(sequences), kind == "p")
        for schema, name, kind, indexes, sequences in conn.execute(_USER_TABLES).fetchall()
    ]


def count_rows(conn: psycopg.Connection, tables: list[TableInfo]) -> list[TableInfo]:
    """Exact `count(*)` of every ordinary table, in the connection's current transaction."""
    counted = []
    for table in tables:
        rows = None
        if not table.partitioned:
            statement = sql.SQL("SELECT count(*) FROM {}.{}").format(
                sql.Identifier(table.schema), sql.Identifier(table.name)
            )
            row = conn.execute(statement).fetchone()
            rows = row[0] if row else 0
        counted.append(replace(table, rows=rows))
    return counted


def count_large_objects(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT count(*) FROM pg_largeobject_metadata").fetchone()
    return row[0] if row else 0


@dataclass
class DatabaseContents:
    """What a restore target holds now."""

    exists: bool
    tables: list[TableInfo] = field(default_factory=list)
    user_objects: int = 0

    @property
    def empty(self) -> bool:
        return self.exists and self.user_objects == 0

    def table_names(self) -> set[tuple[str, str]]:
        return {(t.schema, t.name) for t in self.tables}


def describe_contents(conn: psycopg.Connection, *, with_counts: bool = True) -> DatabaseContents:
    tables = list_tables(conn)
    if with_counts:
        tables = count_rows(conn, tables)
    row = conn.execute(_OTHER_USER_OBJECTS).fetchone()
    return DatabaseContents(True, tables, row[0] if row else 0)


@dataclass
class Comparison:
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    count_mismatches: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.count_mismatches)

    def problems(self) -> list[str]:
        found = []
        if self.missing:
            found.append(f"tables missing after restore: {', '.join(self.missing)}")
        if self.unexpected:
            found.append(f"tables not in the backup: {', '.join(self.unexpected)}")
        found += self.count_mismatches
        return found


def compare_tables(
    expected: list[TableInfo], actual: list[TableInfo], *, check_counts: bool
) -> Comparison:
    """Table list and (with `check_counts`) row counts, as recorded vs as restored."""
    restored = {t.qualified: t for t in actual}
    comparison = Comparison()
    for table in expected:
        found = restored.pop(table.qualified, None)
        if found is None:
            comparison.missing.append(table.qualified)
        elif check_counts and table.rows is not None and found.rows != table.rows:
            comparison.count_mismatches.append(
                f"{table.qualified}: {found.rows} rows restored, {table.rows} in the backup"
            )
    comparison.unexpected = sorted(restored)
    return comparison


def fresh_database_counts(
    conn: psycopg.Connection,
    tables: list[TableInfo],
    expected: dict[str, int | None],
    *,
    settle_s: float = STATS_SETTLE_S,
) -> list[TableInfo]:
    """Row counts of a database that has only ever been loaded (a scratch restore).

    There every table's `n_tup_ins` is its row count, so a table whose counter equals
    the expected count needs no scan (on a freshly loaded table count(*) also has to set
    every hint bit, which costs as much as a second load). Counters of pg_restore's
    workers arrive as those backends exit, so they get `settle_s` to arrive; any table
    still unsettled (or track_counts off) is counted exactly with count(*).
    """
    settled: dict[str, TableInfo] = {}
    deadline = time.monotonic() + settle_s
    while True:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        inserted = {
            (schema, name): rows
            for schema, name, rows in conn.execute(
                "SELECT schemaname, relname, n_tup_ins FROM pg_stat_user_tables"
            ).fetchall()
        }
        for table in tables:
            rows = inserted.get((table.schema, table.name))
            if rows is not None and rows == expected.get(table.qualified):
                settled[table.qualified] = replace(table, rows=rows)
        waiting = [
            t
            for t in tables
            if t.qualified not in settled
            and not t.partitioned
            and (inserted.get((t.schema, t.name)) or 0) < (expected.get(t.qualified) or 0)
        ]
        if not waiting or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    unsettled = [t for t in tables if t.qualified not in settled and not t.partitioned]
    recounted = {t.qualified: t for t in count_rows(conn, unsettled)}
    return [settled.get(t.qualified) or recounted.get(t.qualified, t) for t in tables]
