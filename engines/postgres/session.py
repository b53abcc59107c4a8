"""Gathering what a restore needs, in the order that keeps bad input from changing anything:
server reachable, tools new enough, artifact fully authenticated, archive readable."""

import contextlib
from collections.abc import Iterator
from typing import Any

from engines.jobs import JobContext
from engines.postgres import archive_stream, databases
from engines.postgres.archive import WORK_PURPOSE, PlainArchive, authenticated_archive
from engines.postgres.connection import PostgresTarget, connect_maintenance
from engines.postgres.loader import list_archive
from engines.postgres.options import PostgresRestoreOptions
from engines.postgres.streamed_archive import StreamedArchive, authenticated_stream
from engines.postgres.swap import RestoreJob
from engines.postgres.toc import parse_toc
from engines.postgres.tools import choose_restore_tools, installed_tools
from engines.repository.resolve import ResolvedArtifact
from engines.workspace import Workspace

# The biggest table's share of all rows from which a streamed load beats a parallel one.
STREAMING_SHARE = 0.8


@contextlib.contextmanager
def open_restore_job(
    workspace: Workspace,
    resolved: ResolvedArtifact,
    server: PostgresTarget,
    options: PostgresRestoreOptions,
    context: JobContext,
) -> Iterator[RestoreJob]:
    with connect_maintenance(server) as admin:
        version_num = admin.info.server_version
        version = admin.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        dump_major = resolved.metadata.get("pg_dump_major")
        tools = choose_restore_tools(version_num, version, dump_major, installed_tools())
        context.log(
            f"server {server.host}:{server.port} runs PostgreSQL {version}; "
            f"using pg_restore {tools.version}"
        )
        if not options.dry_run:
            for name in databases.abandoned_scratch_databases(admin):
                context.log(f"dropping scratch database {name} left by an interrupted restore")
                databases.drop_database(admin, name)
        with (
            _authenticated(workspace, resolved, options, context) as archive,
            workspace.work_folder(WORK_PURPOSE) as work_folder,
        ):
            entries = parse_toc(list_archive(tools, archive.path, server.tool_environment()))
            yield RestoreJob(server, tools, admin, archive, entries, options, context, work_folder)


def _authenticated(
    workspace: Workspace,
    resolved: ResolvedArtifact,
    options: PostgresRestoreOptions,
    context: JobContext,
) -> contextlib.AbstractContextManager[PlainArchive | StreamedArchive]:
    """A dry run only needs the artifact authenticated and its table of contents; a whole
    database streams into its scratch database when that loads faster; a restore of chosen
    tables or of data only runs pg_restore on entries of a plain copy."""
    keyring, root = workspace.keyring(), workspace.local_root
    partial = options.tables or resolved.metadata.get("mode") == "data"
    if options.dry_run or (not partial and loads_faster_streamed(resolved.metadata, options.jobs)):
        return authenticated_stream(resolved, keyring, root, context)
    return authenticated_archive(resolved, keyring, root, workspace.catalog, context)


def loads_faster_streamed(metadata: dict[str, Any], jobs: int) -> bool:
    """Streamed, table data goes through `jobs` COPYs at once as the artifact inflates
    (copy_load), which needs the C chunk walker. Without it one pg_restore loads the
    stream table after table, while from a plain copy `pg_restore --jobs` loads several
    tables at once once the copy is written: that cannot end before the biggest table
    is in, so streaming still wins with one job or when one table holds most of the
    rows (rows stand in for bytes here)."""
    if archive_stream.AVAILABLE:
        return True
    rows = [table.get("rows") or 0 for table in metadata.get("tables", [])]
    total = sum(rows)
    return jobs <= 1 or total == 0 or max(rows) >= STREAMING_SHARE * total
