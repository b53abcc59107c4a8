"""Restoring a database dump without ever losing the database in place.

Order of events: check the names and the server, authenticate the whole
artifact, look at the target, and only then change anything. Whole databases go
through a scratch database that is checked (tables and row counts against the
sealed metadata) before it is swapped in; table and data-only restores run
inside one transaction that checks the counts before COMMIT.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from engines.errors import IntegrityError, JarvisError, JobCancelledError
from engines.jobs import JobContext
from engines.postgres import databases
from engines.postgres.archive import PlainArchive
from engines.postgres.connection import (
    DatabaseMissingError,
    PostgresTarget,
    connect,
)
from engines.postgres.inspect import (
    DatabaseContents,
    TableInfo,
    compare_tables,
    count_large_objects,
    describe_contents,
    fresh_database_counts,
)
from engines.postgres.loader import restore_archive, restore_streamed
from engines.postgres.options import PostgresRestoreOptions
from engines.postgres.streamed_archive import StreamedArchive
from engines.postgres.toc import TocEntry
from engines.postgres.tools import ClientTools


class RestoreCheckError(JarvisError):
    """The restored copy does not match what the backup recorded."""


@dataclass
class RestoreJob:
    """Everything a restore step needs, gathered once."""

    server: PostgresTarget  # its .database is the restore target
    tools: ClientTools
    admin: psycopg.Connection  # autocommit, on a maintenance database
    archive: PlainArchive | StreamedArchive
    entries: list[TocEntry]
    options: PostgresRestoreOptions
    context: JobContext
    work_folder: Path

    @property
    def target(self) -> str:
        return self.server.database

    @property
    def metadata(self) -> dict[str, Any]:
        return self.archive.metadata

    @property
    def mode(self) -> str:
        return str(self.metadata.get("mode", "full"))

    @property
    def expected_tables(self) -> list[TableInfo]:
        return [TableInfo.from_metadata(t) for t in self.metadata.get("tables", [])]


def target_contents(server: PostgresTarget, name: str) -> DatabaseContents:
    try:
        with connect(server, name) as conn:
            return describe_contents(conn)
    except DatabaseMissingError:
        return DatabaseContents(exists=False)


def restore_into_scratch(job: RestoreJob, purpose: str) -> str:
    """Create a scratch database, restore the whole archive into it and check it.

    Returns its name; on any failure the scratch database is dropped and the error
    raised. Nothing else on the server is touched.
    """
    scratch = databases.scratch_name(purpose)
    job.context.log(f"restoring into scratch database {scratch} with {job.options.jobs} job(s)")
    databases.create_database(
        job.admin, scratch, encoding=job.metadata.get("encoding"), scratch=True
    )
    try:
        if isinstance(job.archive, StreamedArchive):
            restore_streamed(
                job.tools,
                job.server,
                scratch,
                job.archive,
                jobs=job.options.jobs,
                entries=job.entries,
                context=job.context,
                privilege_flags=job.options.privilege_flags,
            )
        else:
            restore_archive(
                job.tools,
                job.server,
                scratch,
                job.archive.path,
                jobs=job.options.jobs,
                entries=len(job.entries),
                context=job.context,
                privilege_flags=job.options.privilege_flags,
            )
        job.context.log(f"pg_restore finished; checking {scratch} against the backup")
        check_restored(job, scratch)
    except BaseException:
        try:
            databases.drop_database(job.admin, scratch)
        except psycopg.Error as error:
            job.context.log(f"could not drop scratch database {scratch}: {error}", "warning")
        raise
    return scratch


def check_restored(job: RestoreJob, database: str) -> None:
    """Compare tables, row counts and large objects of `database` with the sealed metadata."""
    with connect(job.server, database) as conn:
        actual = describe_contents(conn, with_counts=False)
        if job.mode != "schema":
            expected = {t.qualified: t.rows for t in job.expected_tables}
            actual.tables = fresh_database_counts(conn, actual.tables, expected)
        large_objects = count_large_objects(conn)
    comparison = compare_tables(
        job.expected_tables, actual.tables, check_counts=job.mode != "schema"
    )
    problems = comparison.problems()
    expected_objects = job.metadata.get("large_objects")
    if job.mode != "schema" and expected_objects not in (None, large_objects):
        problems.append(f"{large_objects} large objects restored, {expected_objects} in the backup")
    if problems:
        raise RestoreCheckError(
            "the restored copy does not match the backup: " + "; ".join(problems)
        )
    rows = sum(t.rows or 0 for t in actual.tables)
    job.context.log(
        f"check passed: {len(actual.tables)} tables"
        + (f", {rows} rows" if job.mode != "schema" else "")
        + f", {large_objects} large objects match the backup"
    )


def restore_whole_database(job: RestoreJob, current: DatabaseContents) -> list[str]:
    """Full or schema archive: scratch restore, check, then put it under the target name."""
    lines: list[str] = []
    try:
        scratch = restore_into_scratch(job, "restore")
    except JobCancelledError:
        raise
    except JarvisError as error:
        kind = IntegrityError if isinstance(error, IntegrityError) else JarvisError  # exit code
        raise kind(f"{error}; {_untouched(job, current)}") from error
    if not current.exists:
        databases.rename_database(job.admin, scratch, job.target)
        lines.append(f"created database {job.target} from the backup")
        return lines
    previous = databases.unused_previous_name(job.admin, job.target)
    try:
        databases.swap_databases(job.admin, job.target, scratch, previous)
    except (JarvisError, psycopg.Error) as error:
        databases.drop_database(job.admin, scratch)
        raise JarvisError(f"swap failed ({error}); {_untouched(job, current)}") from error
    job.context.log(f"swapped in the restored database; previous one kept as {previous}")
    lines.append(f"restored database {job.target} (checked copy swapped in)")
    if current.empty or job.options.discard_previous:
        databases.drop_database(job.admin, previous)
        why = "it was empty" if current.empty else "--discard-previous"
        lines.append(f"dropped the previous database {previous} ({why})")
    else:
        lines.append(
            f"previous database kept as {previous}; drop it when satisfied: "
            f'DROP DATABASE "{previous}";'
        )
    return lines


def _untouched(job: RestoreJob, current: DatabaseContents) -> str:
    if current.exists:
        return f"database {job.target} was not changed"
    return f"database {job.target} was not created"
