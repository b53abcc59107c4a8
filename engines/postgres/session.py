"""Gathering what a restore needs, in the order that keeps bad input from changing anything:
server reachable, tools new enough, artifact fully authenticated, archive readable."""

import contextlib
from collections.abc import Iterator

from engines.fsutil import private_work_folder
from engines.jobs import JobContext
from engines.postgres import databases
from engines.postgres.archive import WORK_PURPOSE, authenticated_archive
from engines.postgres.connection import PostgresTarget, connect_maintenance
from engines.postgres.loader import list_archive
from engines.postgres.options import PostgresRestoreOptions
from engines.postgres.restore import RestoreJob
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
            authenticated_archive(
                resolved, workspace.keyring(), workspace.repository.root, workspace.catalog, context
            ) as archive,
            private_work_folder(workspace.repository.root, WORK_PURPOSE) as work_folder,
        ):
            entries = parse_toc(list_archive(tools, archive.path, server.tool_environment()))
            yield RestoreJob(server, tools, admin, archive, entries, options, context, work_folder)
