"""What a restore would do, from the authenticated archive and the target as it is now."""

from engines.postgres.foreign_keys import foreign_keys_into
from engines.postgres.inspect import DatabaseContents, TableInfo
from engines.postgres.partial import replaced_tables
from engines.postgres.swap import RestoreJob
from engines.postgres.toc import summarize
from engines.reports import RestoreReport

MAX_LISTED = 50


def _table_line(table: TableInfo, indexes: list[str]) -> str:
    rows = "structure only" if table.rows is None else f"{table.rows} rows"
    shown = f"; indexes: {', '.join(indexes)}" if indexes else ""
    return f"  {table.qualified}: {rows}{shown}"


def describe_plan(
    job: RestoreJob,
    current: DatabaseContents,
    tables: list[TableInfo],
    report: RestoreReport,
) -> None:
    """Fill `report` with what is in the artifact, what the target holds, and the plan;
    the target and the plan come before the list of tables, which may be long."""
    meta = job.metadata
    summary = summarize(job.entries)
    report.add(
        f"artifact: {meta.get('mode')} backup of database {meta.get('database')} "
        f"(PostgreSQL {meta.get('server_version')}, pg_dump {meta.get('pg_dump_version')}, "
        f"made {meta.get('created_at')}): every chunk authenticated"
    )
    if summary.schemas:
        report.add(f"schemas: {', '.join(summary.schemas)}")
    report.add(_target_line(job, current))
    refusal = _refusal(job, current, tables)
    if refusal:
        report.refuse(f"plan: refused{refusal}")
    else:
        report.add(_plan_line(job, current, tables))
    total_rows = sum(t.rows or 0 for t in tables)
    report.add(
        f"would restore {len(tables)} table(s)"
        + (f" with {total_rows} rows" if job.mode != "schema" else "")
        + f", {sum(len(t.indexes) for t in tables)} index(es), "
        f"{0 if job.options.tables else summary.large_objects} large object(s):"
    )
    for table in tables[:MAX_LISTED]:
        report.add(_table_line(table, list(table.indexes)))
    if len(tables) > MAX_LISTED:
        report.add(f"  ... and {len(tables) - MAX_LISTED} more")
    if not refusal and (job.options.tables or job.mode == "data"):
        _describe_foreign_keys(job, current, tables, report)


def _target_line(job: RestoreJob, current: DatabaseContents) -> str:
    where = job.server.describe()
    if not current.exists:
        return f"target {where}: does not exist"
    if current.empty:
        return f"target {where}: exists and is empty"
    rows = sum(t.rows or 0 for t in current.tables)
    names = ", ".join(t.qualified for t in current.tables[:10])
    more = f" and {len(current.tables) - 10} more" if len(current.tables) > 10 else ""
    return f"target {where}: holds {len(current.tables)} table(s), {rows} rows ({names}{more})"


def _clashing(current: DatabaseContents, tables: list[TableInfo]) -> list[str]:
    present = current.table_names()
    return [t.qualified for t in tables if (t.schema, t.name) in present]


def _refusal(job: RestoreJob, current: DatabaseContents, tables: list[TableInfo]) -> str | None:
    """Why the restore would be refused (to follow "plan: refused"), or None."""
    options = job.options
    if options.tables or job.mode == "data":
        clashing = _clashing(current, tables)
        if not current.exists:
            return ": the target database does not exist"
        if clashing and not options.drop_existing and job.mode != "data":
            return f" without --drop-existing: {', '.join(clashing)} already exist"
        return None
    if current.exists and not current.empty and not options.drop_existing:
        return ": the target is not empty; --drop-existing would replace it safely"
    return None


def _plan_line(job: RestoreJob, current: DatabaseContents, tables: list[TableInfo]) -> str:
    options = job.options
    if options.tables or job.mode == "data":
        if job.mode == "data" and _clashing(current, tables) and not options.drop_existing:
            return (
                "plan: load in one transaction; tables holding rows are refused "
                "without --drop-existing"
            )
        return "plan: restore the tables in one transaction, check row counts, then commit"
    if not current.exists:
        return "plan: restore into a scratch database, check it, rename it to the target"
    keep = "dropped" if current.empty or options.discard_previous else "kept"
    return (
        "plan: restore into a scratch database, check it, swap it in; the previous database "
        f"is {keep} as {job.target}_pre_restore_<UTC time>"
    )


def _describe_foreign_keys(
    job: RestoreJob, current: DatabaseContents, tables: list[TableInfo], report: RestoreReport
) -> None:
    """The foreign keys of other tables into the replaced ones, and what that means."""
    replaced = {(t.schema, t.name) for t in replaced_tables(current, tables)}
    keys = foreign_keys_into(job.server, job.target, replaced)
    if not keys:
        return
    rows = {t.qualified: t.rows for t in current.tables}
    report.add("referencing the replaced tables (dropped and re-created in the same transaction):")
    for key in keys:
        report.add(
            f"  foreign key {key.name} on {key.referencing} ({rows.get(key.referencing)} rows) "
            f"-> {key.referenced}"
        )
    report.add(
        "  re-creating them checks every referencing row: the restore fails and changes "
        "nothing if rows there reference keys the backup lacks; those tables are locked "
        "until it ends"
    )
