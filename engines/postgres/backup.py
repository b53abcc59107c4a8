"""`backup postgres`: the database dump, the cluster globals and the optional drill."""

from engines.catalog import Artifact, BackupSet
from engines.errors import IntegrityError, JarvisError
from engines.jobs import JobContext
from engines.postgres import archive_stream
from engines.postgres.connection import PostgresTarget, connect, target_from_settings
from engines.postgres.dump import (
    SnapshotCounter,
    StreamRowCounter,
    can_read_role_passwords,
    dump_file_stem,
    dump_metadata,
    start_pg_dump,
    start_pg_dumpall_globals,
    stream_output,
)
from engines.postgres.inspect import server_facts
from engines.postgres.options import MODES, PostgresBackupOptions
from engines.postgres.space import BACKUP_SPACE_FACTOR, require_free_space
from engines.postgres.tools import ClientTools, choose_tools, installed_tools
from engines.postgres.verify import verify_by_restore
from engines.repository.artifacts import store_artifact
from engines.workspace import Workspace


def back_up_postgres(
    workspace: Workspace,
    backup_set: BackupSet,
    options: PostgresBackupOptions,
    context: JobContext,
) -> list[Artifact]:
    if options.mode not in MODES:
        raise JarvisError(f"unknown mode {options.mode!r}; use one of {', '.join(MODES)}")
    target = target_from_settings(workspace.settings, options.database)
    with connect(target) as conn:
        facts = server_facts(conn)
        with_passwords = can_read_role_passwords(conn)
    tools = choose_tools(facts.version_num, facts.version, installed_tools())
    context.log(
        f"{target.describe()}: PostgreSQL {facts.version}, {facts.database_size} bytes; "
        f"pg_dump {tools.version} ({tools.bin_dir})"
    )
    require_free_space(
        workspace.catalog,
        workspace.local_root,
        BACKUP_SPACE_FACTOR * facts.database_size,
        purpose=f"a backup of database {target.database} (2x its size, as the guide advises)",
        advice="free space (`jarvis-tui` retention, or delete old backups) or point BACKUP_DIR "
        "at a larger disk",
    )
    artifacts = [_dump_database(workspace, backup_set, target, tools, facts, options, context)]
    if options.mode == "full":
        artifacts.append(
            _dump_globals(workspace, backup_set, target, tools, facts, with_passwords, context)
        )
    verify = options.drill_after(workspace.settings.verify_restore)
    if verify and options.mode != "data":
        try:
            verify_by_restore(workspace, artifacts[0], context)
        except IntegrityError as error:
            workspace.catalog.record_alert("critical", "verification", str(error))
            raise
    elif verify:
        context.log("restore drill skipped: a data-only backup needs the schema to load into")
    return artifacts


def _dump_database(
    workspace: Workspace,
    backup_set: BackupSet,
    target: PostgresTarget,
    tools: ClientTools,
    facts,
    options: PostgresBackupOptions,
    context: JobContext,
) -> Artifact:
    with_rows = options.mode != "schema"
    streamed_counts = StreamRowCounter() if with_rows and archive_stream.AVAILABLE else None
    with SnapshotCounter(target, count=with_rows and streamed_counts is None) as counter:
        context.log(f"pg_dump --format=custom ({options.mode}) in snapshot {counter.snapshot_id}")
        tool = start_pg_dump(tools, target, options.mode, counter.snapshot_id)
        counter.start()
        stream = stream_output(tool, f"dumping {target.describe()}")
        if streamed_counts is not None:
            stream = streamed_counts.watch(stream)

        def metadata() -> dict:
            tables, large_objects = counter.result()
            if streamed_counts is not None:
                if not streamed_counts.complete:
                    context.log(
                        "the dump's format is not one the row-count walk knows; rows were "
                        "counted on the server, in the dump's snapshot",
                        "warning",
                    )
                tables = streamed_counts.fill_in(tables, counter)
            return dump_metadata(target, facts, tools, options.mode, tables, large_objects)

        try:
            artifact = store_artifact(
                workspace,
                backup_set,
                context,
                source="postgres",
                mode=options.mode,
                name=f"{dump_file_stem(target.database, options.mode)}.dump",
                stream=stream,
                metadata=metadata,
            )
        finally:
            tool.stop()
    meta = artifact.metadata
    context.log(
        f"database {target.database}: {meta.get('table_count')} tables"
        + (f", {meta.get('total_rows')} rows" if meta.get("total_rows") is not None else "")
        + f", {meta.get('large_objects')} large objects"
    )
    return artifact


def _dump_globals(
    workspace: Workspace,
    backup_set: BackupSet,
    target: PostgresTarget,
    tools: ClientTools,
    facts,
    with_passwords: bool,
    context: JobContext,
) -> Artifact:
    if not with_passwords:
        context.log(
            f'user "{target.user}" cannot read role passwords; globals are stored without '
            "them (roles restored from this backup need new passwords)",
            "warning",
        )
    tool = start_pg_dumpall_globals(tools, target, with_passwords=with_passwords)
    try:
        return store_artifact(
            workspace,
            backup_set,
            context,
            source="postgres",
            mode="globals",
            name="globals.sql",
            stream=stream_output(
                tool, f"dumping roles and tablespaces of {target.host}:{target.port}"
            ),
            metadata={
                "content": "globals",
                "format": "pg_dumpall --globals-only",
                "database": target.database,
                "host": target.host,
                "port": target.port,
                "user": target.user,
                "role_passwords": with_passwords,
                **facts.to_metadata(),
                "pg_dump_version": tools.version,
            },
        )
    finally:
        tool.stop()
