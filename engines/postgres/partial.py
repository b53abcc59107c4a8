"""Restores into a live database: chosen tables (`--table`) and data-only backups.

Tables missing from the target are created whole (definition, data, indexes,
constraints, owned sequences). Tables that exist keep their definition, and so
the views, grants and foreign keys around them: their rows are replaced, and
only with --drop-existing when they hold rows. Foreign keys of other tables
that reference a replaced table are dropped first and re-created (so checked) after
the load (foreign_keys). Everything runs in one transaction that checks the restored
row counts before COMMIT, so the target ends up either fully restored or exactly as
it was.
"""

from engines.errors import JarvisError
from engines.postgres.foreign_keys import (
    drop_statements,
    foreign_keys_into,
    recreate_statements,
)
from engines.postgres.inspect import DatabaseContents, TableInfo
from engines.postgres.loader import qualified, restore_entries_in_transaction, row_count_check
from engines.postgres.process import ToolFailedError
from engines.postgres.swap import RestoreJob
from engines.postgres.toc import TocEntry, select_tables

DATA_ENTRIES = ("TABLE DATA", "SEQUENCE SET")
LARGE_OBJECT_ENTRIES = ("BLOB", "BLOBS", "LARGE OBJECT")


def pick_tables(requested: tuple[str, ...], available: list[TableInfo]) -> list[TableInfo]:
    """`users` or `app.users` to the backup's tables; unknown or ambiguous names refused."""
    chosen: list[TableInfo] = []
    for name in requested:
        schema, _, table = name.rpartition(".")
        matches = [t for t in available if t.name == table and (not schema or t.schema == schema)]
        if not matches:
            known = ", ".join(t.qualified for t in available) or "none"
            raise JarvisError(f"table {name!r} is not in this backup; it holds: {known}")
        if len(matches) > 1:
            options = ", ".join(t.qualified for t in matches)
            raise JarvisError(f"table {name!r} is in several schemas ({options}); name one")
        if matches[0] not in chosen:
            chosen.append(matches[0])
    return chosen


def _entries_of(job: RestoreJob, tables: list[TableInfo], *, whole: bool) -> list[TocEntry]:
    keys = [(t.schema, t.name) for t in tables]
    chosen = select_tables(
        job.entries,
        keys,
        indexes={(t.schema, t.name): list(t.indexes) for t in tables} if whole else {},
        sequences={(t.schema, t.name): list(t.sequences) for t in tables},
    )
    return chosen if whole else [e for e in chosen if e.desc in DATA_ENTRIES]


def restore_tables(
    job: RestoreJob, current: DatabaseContents, tables: list[TableInfo], *, everything: bool = False
) -> list[str]:
    """Restore `tables` into the existing target; `everything` adds the large objects and
    the free-standing sequences (a whole data-only backup)."""
    if not current.exists:
        raise JarvisError(
            f"{job.server.describe()}: the database does not exist; "
            + (
                "a data-only backup loads into existing tables: restore a full or schema "
                "backup first"
                if job.mode == "data"
                else "create it first, or restore the whole backup without --table"
            )
        )
    rows_now = {(t.schema, t.name): t.rows for t in current.tables}
    existing = [t for t in tables if (t.schema, t.name) in rows_now]
    new = [t for t in tables if (t.schema, t.name) not in rows_now]
    if new and job.mode == "data":
        raise JarvisError(
            f"database {job.target} lacks table(s) {', '.join(t.qualified for t in new)} that "
            "this data-only backup fills; restore a schema or full backup first. "
            "Nothing was changed"
        )
    filled = replaced_tables(current, tables)
    if filled and not job.options.drop_existing:
        names = ", ".join(t.qualified for t in filled)
        raise JarvisError(
            f"table(s) {names} in database {job.target} already hold rows; nothing was changed. "
            "Use --drop-existing to replace their rows (in one transaction: they stay as they "
            "are if anything fails)"
        )
    entries = entries_to_restore(job, current, tables, everything=everything)
    keys = foreign_keys_into(job.server, job.target, {(t.schema, t.name) for t in filled})
    truncate = drop_statements(keys)
    if filled:
        truncate += f"TRUNCATE {', '.join(qualified(t.schema, t.name) for t in filled)};\n"
    oids = [e.name for e in entries if e.desc in LARGE_OBJECT_ENTRIES and e.name.isdigit()]
    if oids and job.options.drop_existing:
        truncate += (
            "SELECT lo_unlink(oid) FROM pg_largeobject_metadata "
            f"WHERE oid IN ({', '.join(oids)});\n"
        )
    try:
        restore_entries_in_transaction(
            job.tools,
            job.server,
            job.target,
            job.archive.path,
            entries,
            before=truncate,
            after=row_count_check([t for t in tables if not t.partitioned])
            + recreate_statements(keys),
            work_folder=job.work_folder,
            context=job.context,
            privilege_flags=job.options.privilege_flags,
        )
    except ToolFailedError as error:  # psql stopped: the transaction was rolled back
        raise ToolFailedError(f"{error}; nothing was changed in database {job.target}") from None
    lines = [f"created table {t.qualified} ({_rows(t)})" for t in new]
    lines += [f"loaded table {t.qualified} ({_rows(t)})" for t in existing if not t.partitioned]
    if filled:
        lines.append("their previous rows were replaced: " + ", ".join(t.qualified for t in filled))
    lines += [f"re-created and checked foreign key {k.name} on {k.referencing}" for k in keys]
    return lines


def entries_to_restore(
    job: RestoreJob, current: DatabaseContents, tables: list[TableInfo], *, everything: bool
) -> list[TocEntry]:
    """The archive entries a restore of `tables` runs, in archive order: the whole of a
    table the target lacks (with its schema, if that is missing too), the data of one it
    has; `everything` adds the large objects and the free-standing sequences."""
    present = current.table_names()
    existing = [t for t in tables if (t.schema, t.name) in present]
    new = [t for t in tables if (t.schema, t.name) not in present]
    needed_schemas = {t.schema for t in new} - {schema for schema, _ in present} - {"public"}
    schema_objects = {("SCHEMA", name) for name in needed_schemas} | {
        (desc, f"SCHEMA {name}") for name in needed_schemas for desc in ("ACL", "COMMENT")
    }
    entries = [e for e in job.entries if (e.desc, e.name) in schema_objects]
    entries += _entries_of(job, new, whole=True) + _entries_of(job, existing, whole=False)
    if everything:
        entries += [e for e in job.entries if e.desc in LARGE_OBJECT_ENTRIES]
        entries += [e for e in job.entries if e.desc == "SEQUENCE SET"]
    order = {entry.dump_id: position for position, entry in enumerate(job.entries)}
    return sorted(set(entries), key=lambda e: order[e.dump_id])


def replaced_tables(current: DatabaseContents, tables: list[TableInfo]) -> list[TableInfo]:
    """The tables among `tables` whose rows in the target a restore replaces."""
    rows_now = {(t.schema, t.name): t.rows for t in current.tables}
    return [t for t in tables if rows_now.get((t.schema, t.name))]


def restore_data(job: RestoreJob, current: DatabaseContents) -> list[str]:
    return restore_tables(job, current, job.expected_tables, everything=True)


def _rows(table: TableInfo) -> str:
    return "structure only" if table.rows is None else f"{table.rows} rows, count checked"
