"""Gathering what a restore needs, in the order that keeps bad input from changing anything:
server reachable, tools new enough, artifact fully authenticated, archive readable."""

import contextlib
from collections.abc import Iterator

from engines.fsutil import private_work_folder
from engines.jobs import JobContext
from engines.postgres import databases
from engines.postgres.archive import WORK_PURPOSE, PlainArchive, authenticated_archive
from engines.postgres.connection import PostgresTarget, connect_maintenance
from engines.postgres.loader import list_archive
from engines.postgres.options import PostgresRestoreOptions
from engines.postgres.restore import RestoreJob
from engines.postgres.streamed_archive import StreamedArchive, authenticated_stream
from engines.postgres.toc import parse_toc
from engines.postgres.tools import choose_restore_tools, installed_tools
from engines.resolve import ResolvedArtifact
from engines.workspace import Workspace


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
            private_work_folder(workspace.repository.root, WORK_PURPOSE) as work_folder,
        ):
            entries = parse_toc(list_archive(tools, archive.path, server.tool_environment()))
            yield RestoreJob(server, tools, admin, archive, entries, options, context, work_folder)


def _authenticated(
    workspace: Workspace,
    resolved: ResolvedArtifact,
    options: PostgresRestoreOptions,
    context: JobContext,
) -> contextlib.AbstractContextManager[PlainArchive | StreamedArchive]:
    """Whole databases stream into their scratch database; a restore of chosen tables or
    of data only runs pg_restore on entries of a plain copy."""
    keyring, root = workspace.keyring(), workspace.repository.root
    if (options.tables or resolved.metadata.get("mode") == "data") and not options.dry_run:
        return authenticated_archive(resolved, keyring, root, workspace.catalog, context)
    return authenticated_stream(resolved, keyring, root, context)
