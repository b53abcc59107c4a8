"""Restores into a live database: chosen tables (`--table`) and data-only backups.

Both run in one transaction that also checks the restored row counts, so the
target database ends up either fully restored or exactly as it was.
"""

from engines.errors import JarvisError
from engines.postgres.inspect import DatabaseContents, TableInfo
from engines.postgres.loader import (
    qualified,
    restore_entries_in_transaction,
    row_count_check,
)
from engines.postgres.restore import RestoreJob
from engines.postgres.toc import select_tables


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


def _require_target(job: RestoreJob, current: DatabaseContents) -> None:
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


def restore_tables(
    job: RestoreJob, current: DatabaseContents, tables: list[TableInfo]
) -> list[str]:
    _require_target(job, current)
    present = current.table_names()
    clashing = [t for t in tables if (t.schema, t.name) in present]
    if job.mode == "data":
        return _load_data(job, current, tables)
    if clashing and not job.options.drop_existing:
        names = ", ".join(t.qualified for t in clashing)
        raise JarvisError(
            f"table(s) {names} already exist in database {job.target}; nothing was changed. "
            "Use --drop-existing to replace them (in one transaction: the old tables stay "
            "if anything fails)"
        )
    entries = select_tables(
        job.entries,
        [(t.schema, t.name) for t in tables],
        indexes={(t.schema, t.name): list(t.indexes) for t in tables},
        sequences={(t.schema, t.name): list(t.sequences) for t in tables},
    )
    existing_schemas = {schema for schema, _ in present} | {"public"}
    needed_schemas = {t.schema for t in tables} - existing_schemas
    schema_entries = [e for e in job.entries if e.desc == "SCHEMA" and e.name in needed_schemas]
    drops = "".join(f"DROP TABLE {qualified(t.schema, t.name)};\n" for t in clashing)
    restore_entries_in_transaction(
        job.tools,
        job.server,
        job.target,
        job.archive.path,
        schema_entries + entries,
        before=drops,
        after=row_count_check(tables),
        work_folder=job.work_folder,
        context=job.context,
    )
    lines = [f"restored table {t.qualified} ({_rows(t)})" for t in tables]
    if clashing:
        lines.append("replaced: " + ", ".join(t.qualified for t in clashing))
    return lines


def restore_data(job: RestoreJob, current: DatabaseContents) -> list[str]:
    _require_target(job, current)
    return _load_data(job, current, job.expected_tables)


def _load_data(job: RestoreJob, current: DatabaseContents, tables: list[TableInfo]) -> list[str]:
    """Data-only archive: the tables must exist; non-empty ones are emptied only with
    --drop-existing, inside the same transaction that loads and checks them."""
    by_name = {(t.schema, t.name): t for t in current.tables}
    missing = [t.qualified for t in tables if (t.schema, t.name) not in by_name]
    if missing:
        raise JarvisError(
            f"database {job.target} lacks table(s) {', '.join(missing)} that this data-only "
            "backup fills; restore a schema or full backup first. Nothing was changed"
        )
    filled = [t for t in tables if by_name[(t.schema, t.name)].rows]
    if filled and not job.options.drop_existing:
        names = ", ".join(t.qualified for t in filled)
        raise JarvisError(
            f"table(s) {names} in database {job.target} already hold rows; nothing was changed. "
            "Use --drop-existing to empty them first (in the same transaction as the load)"
        )
    entries = select_tables(
        job.entries,
        [(t.schema, t.name) for t in tables],
        indexes={},
        sequences={(t.schema, t.name): list(t.sequences) for t in tables},
    )
    if len(tables) == len(job.expected_tables):
        entries += [e for e in job.entries if e.desc in ("BLOB", "BLOBS", "LARGE OBJECT")]
    truncate = ""
    if filled:
        names = ", ".join(qualified(t.schema, t.name) for t in filled)
        truncate = f"TRUNCATE {names};\n"
    restore_entries_in_transaction(
        job.tools,
        job.server,
        job.target,
        job.archive.path,
        sorted(entries, key=job.entries.index),
        before=truncate,
        after=row_count_check([t for t in tables if not t.partitioned]),
        work_folder=job.work_folder,
        context=job.context,
    )
    lines = [f"loaded {t.qualified} ({_rows(t)})" for t in tables if not t.partitioned]
    if filled:
        lines.append("emptied first: " + ", ".join(t.qualified for t in filled))
    return lines


def _rows(table: TableInfo) -> str:
    return "structure only" if table.rows is None else f"{table.rows} rows, count checked"
