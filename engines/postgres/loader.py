"""Running pg_restore: a whole archive in parallel, or chosen entries inside one transaction.

The transactional path pipes `pg_restore -f -` into `psql` between our own
BEGIN and a check that raises unless every restored table has the row count
of the backup, then COMMIT: a failure, a wrong count or a killed process rolls
everything back, so the target is changed completely or not at all.
"""

import contextlib
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from engines.jobs import JobContext
from engines.plumbing.processes import widen_pipe
from engines.postgres.connection import PostgresTarget
from engines.postgres.copy_load import LARGE_OBJECTS, load_table_data, loads_in_parallel
from engines.postgres.inspect import TableInfo
from engines.postgres.process import RunningTool, run_tool
from engines.postgres.streamed_archive import StreamedArchive
from engines.postgres.toc import TocEntry
from engines.postgres.tools import ClientTools

COPY_SIZE = 1024 * 1024
# What pg_restore leaves to its last passes, once every object and row is in: grants
# (a REVOKE must not stop the load), then what runs as the objects' owners with them.
AFTER_EVERYTHING = ("ACL", "DEFAULT ACL", "MATERIALIZED VIEW DATA", "EVENT TRIGGER")
_PROGRESS_WORDS = ("finished item", "processing item", "creating ", "processing data")


def list_archive(tools: ClientTools, archive: Path, env: dict[str, str]) -> str:
    return run_tool(
        [tools.path("pg_restore"), "--list", str(archive)],
        env,
        name="pg_restore",
        what="reading the archive's table of contents",
    )


def restore_archive(
    tools: ClientTools,
    server: PostgresTarget,
    database: str,
    archive: Path,
    *,
    jobs: int,
    entries: int,
    context: JobContext,
    sections: tuple[str, ...] = (),
    use_list: Path | None = None,
    privilege_flags: tuple[str, ...] = (),
) -> None:
    """`pg_restore --jobs` of the archive (or of `sections` of it, or of the entries in
    `use_list`) into `database`, stopping at the first error; `privilege_flags`
    (--no-owner, --no-acl) leave out the backup's owners or grants."""
    done = 0

    def on_line(line: str) -> None:
        nonlocal done
        if any(word in line for word in _PROGRESS_WORDS):
            done += 1
            context.progress(min(done, entries), entries, unit="objects")

    argv = [
        *_restore_argv(tools, database, sections, privilege_flags),
        *([f"--use-list={use_list}"] if use_list else []),
        "--verbose",
        f"--jobs={max(1, jobs)}",
        str(archive),
    ]
    tool = RunningTool(argv, server.tool_environment(database), name="pg_restore", on_line=on_line)
    _wait_cancellable(tool, context, f"restoring into {database}")


def restore_streamed(
    tools: ClientTools,
    server: PostgresTarget,
    database: str,
    archive: StreamedArchive,
    *,
    jobs: int,
    entries: list[TocEntry],
    context: JobContext,
    privilege_flags: tuple[str, ...] = (),
) -> None:
    """Schema and data from the artifact as it inflates, then indexes and constraints with
    `--jobs` in parallel, then grants (and what pg_restore runs after them). Table data
    goes through `jobs` COPYs at once where the archive allows it (copy_load), else
    through one pg_restore reading stdin."""
    first = [e for e in entries if e.desc not in AFTER_EVERYTHING]
    last = [e for e in entries if e.desc in AFTER_EVERYTHING]
    first_list = _entry_list(archive.path.with_name("before-grants.list"), first)
    if loads_in_parallel(archive.toc):
        _load_with_copies(tools, server, database, archive, jobs=jobs, entries=first,
                          context=context, privilege_flags=privilege_flags)  # fmt: skip
    else:
        _load_through_pg_restore(tools, server, database, archive, context,
                                 use_list=first_list, privilege_flags=privilege_flags)  # fmt: skip
    context.log(f"schema and data loaded; building indexes and constraints with {jobs} job(s)")
    restore_archive(
        tools, server, database, archive.path, jobs=jobs, entries=len(entries), context=context,
        sections=("post-data",), use_list=first_list, privilege_flags=privilege_flags,
    )  # fmt: skip
    if last:
        context.log(f"applying {len(last)} grant(s) and materialized view refreshes")
        restore_archive(
            tools, server, database, archive.path, jobs=jobs, entries=len(entries),
            context=context, use_list=_entry_list(archive.path.with_name("last.list"), last),
            privilege_flags=privilege_flags,
        )  # fmt: skip


def _entry_list(path: Path, entries: list[TocEntry]) -> Path:
    """A `--use-list` file of `entries`."""
    path.write_text("".join(entry.line + "\n" for entry in entries))
    return path


def _load_with_copies(
    tools: ClientTools,
    server: PostgresTarget,
    database: str,
    archive: StreamedArchive,
    *,
    jobs: int,
    entries: list[TocEntry],
    context: JobContext,
    privilege_flags: tuple[str, ...],
) -> None:
    """Everything but the data blocks from the table of contents alone, then table data
    through COPYs while a second pg_restore loads the large objects from its stdin: the
    table of contents followed by the large-object blocks, as they stream past."""
    with_data = {e.dump_id: e.desc for e in archive.toc.entries if e.has_data}
    schema_list = _entry_list(
        archive.path.with_name("schema-and-sequences.list"),
        [e for e in entries if e.dump_id not in with_data],
    )
    restore_archive(
        tools, server, database, archive.path, jobs=1, entries=len(entries), context=context,
        sections=("pre-data", "data"), use_list=schema_list, privilege_flags=privilege_flags,
    )  # fmt: skip
    objects = [e for e in entries if with_data.get(e.dump_id) == LARGE_OBJECTS]
    context.log(
        f"schema created; loading table data through {jobs} COPY connection(s)"
        + (" and large objects through pg_restore" if objects else "")
    )
    if not objects:
        rows = load_table_data(server, database, archive, jobs=jobs, context=context)
    else:
        objects_list = _entry_list(archive.path.with_name("large-objects.list"), objects)
        argv = [
            *_restore_argv(tools, database, ("data",), privilege_flags),
            f"--use-list={objects_list}",
        ]
        what = f"loading large objects into {database}"
        with _pg_restore_reading(argv, server, database, context, what) as stdin:
            stdin.write(archive.path.read_bytes())
            rows = load_table_data(
                server, database, archive, jobs=jobs, context=context, large_objects=stdin
            )
    context.log(f"COPY loaded {sum(rows.values())} rows into {len(rows)} tables")


def _load_through_pg_restore(
    tools: ClientTools,
    server: PostgresTarget,
    database: str,
    archive: StreamedArchive,
    context: JobContext,
    *,
    use_list: Path,
    privilege_flags: tuple[str, ...],
) -> None:
    total = archive.metadata.get("plain_size")
    argv = [
        *_restore_argv(tools, database, ("pre-data", "data"), privilege_flags),
        f"--use-list={use_list}",
    ]
    what = f"loading schema and data into {database}"
    fed = 0
    with _pg_restore_reading(argv, server, database, context, what) as stdin:
        for block in archive.plain_blocks():
            stdin.write(block)
            fed += len(block)
            context.progress(fed, total)
            context.raise_if_cancelled()


@contextlib.contextmanager
def _pg_restore_reading(
    argv: list[str], server: PostgresTarget, database: str, context: JobContext, what: str
) -> Iterator[BinaryIO]:
    """pg_restore with its stdin open to the block; once the block is done, stdin is
    closed and pg_restore waited for. A broken pipe means it stopped: its exit status
    and stderr say why."""
    tool = RunningTool(argv, server.tool_environment(database), name="pg_restore",
                       stdin=subprocess.PIPE)  # fmt: skip
    assert tool.process.stdin is not None
    widen_pipe(tool.process.stdin.fileno(), COPY_SIZE)
    try:
        try:
            with tool.process.stdin as stdin:
                yield stdin
        except BrokenPipeError:
            tool.check(what)
            raise
        _wait_cancellable(tool, context, what)
    finally:
        tool.stop()


def _restore_argv(
    tools: ClientTools, database: str, sections: tuple[str, ...], privilege_flags: tuple[str, ...]
) -> list[str]:
    return [
        tools.path("pg_restore"),
        *privilege_flags,
        "--exit-on-error",
        *(f"--section={section}" for section in sections),
        f"--dbname={database}",
    ]


def _wait_cancellable(tool: RunningTool, context: JobContext, what: str) -> None:
    try:
        while True:
            try:
                tool.process.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                context.raise_if_cancelled()
        tool.check(what)
    finally:
        tool.stop()


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def qualified(schema: str, name: str) -> str:
    return f"{quote_identifier(schema)}.{quote_identifier(name)}"


def row_count_check(tables: list[TableInfo]) -> str:
    """A DO block that raises (and so rolls back) unless each table has its recorded count."""
    checks = []
    for table in tables:
        if table.rows is None:
            continue
        checks.append(
            f"  SELECT count(*) INTO n FROM {qualified(table.schema, table.name)};\n"
            f"  IF n <> {int(table.rows)} THEN RAISE EXCEPTION "
            f"'restore check failed: % has % rows, the backup has %', "
            f"{quote_literal(table.qualified)}, n, {int(table.rows)}; END IF;\n"
        )
    if not checks:
        return ""
    body = "".join(checks)
    return f"DO $jarvis_check$\nDECLARE n bigint;\nBEGIN\n{body}END\n$jarvis_check$;\n"


def restore_entries_in_transaction(
    tools: ClientTools,
    server: PostgresTarget,
    database: str,
    archive: Path,
    entries: list[TocEntry],
    *,
    before: str,
    after: str,
    work_folder: Path,
    context: JobContext,
    privilege_flags: tuple[str, ...] = (),
) -> None:
    """BEGIN; `before`; the chosen archive entries; `after`; COMMIT — or nothing at all."""
    list_file = work_folder / "selected.list"
    list_file.write_text("".join(entry.line + "\n" for entry in entries))
    restore = RunningTool(
        [
            tools.path("pg_restore"),
            *privilege_flags,
            f"--use-list={list_file}",
            "--file=-",
            str(archive),
        ],
        server.tool_environment(database),
        name="pg_restore",
        stdout=subprocess.PIPE,
    )
    psql = RunningTool(
        [
            tools.path("psql"),
            "--no-psqlrc",
            "--quiet",
            "--set=ON_ERROR_STOP=1",
            f"--dbname={database}",
            "--file=-",
        ],
        server.tool_environment(database),
        name="psql",
        stdin=subprocess.PIPE,
    )
    feeder = threading.Thread(
        target=_feed, args=(restore, psql, before, after), name="psql-feed", daemon=True
    )
    feeder.start()
    try:
        _wait_cancellable(psql, context, f"restoring into {database}")
        restore.check("writing the SQL of the chosen entries")
    finally:
        restore.stop()
        feeder.join()


def _feed(restore: RunningTool, psql: RunningTool, before: str, after: str) -> None:
    sink = psql.process.stdin
    assert sink is not None
    try:
        sink.write(f"BEGIN;\n{before}\n".encode())
        while block := restore.stdout.read(COPY_SIZE):
            sink.write(block)
        # Only a complete SQL stream may be committed; otherwise psql sees end of input
        # inside the transaction and the server rolls it back.
        if restore.wait() == 0:
            sink.write(f"\n{after}\nCOMMIT;\n".encode())
    except (BrokenPipeError, ValueError):
        pass  # psql stopped at an error; its stderr says which
    finally:
        with contextlib.suppress(BrokenPipeError, OSError):
            sink.close()
