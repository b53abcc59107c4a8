"""`restore postgres`: pick the artifacts, check the target, then restore or describe."""

import contextlib

from engines.config import Settings
from engines.errors import JarvisError, NotFoundError
from engines.jobs import JobContext
from engines.postgres.archive import authenticated_archive
from engines.postgres.connection import (
    PostgresTarget,
    check_identifier,
    connect_maintenance,
    target_from_settings,
)
from engines.postgres.dry_run import describe_plan
from engines.postgres.globals import existing_roles, replay_globals, roles_in
from engines.postgres.inspect import DatabaseContents, TableInfo
from engines.postgres.options import PostgresRestoreOptions
from engines.postgres.partial import pick_tables, restore_data, restore_tables
from engines.postgres.privileges import MissingRolesError, PrivilegePlan, plan_for
from engines.postgres.session import open_restore_job
from engines.postgres.swap import restore_whole_database, target_contents
from engines.reports import RestoreReport
from engines.repository.resolve import (
    ResolvedArtifact,
    resolve_file,
    resolve_key,
    resolved_from_catalog,
)
from engines.workspace import Workspace

GLOBALS = "globals"


def _mode(item: ResolvedArtifact) -> str:
    return str(item.metadata.get("mode") or (item.artifact.mode if item.artifact else ""))


def split_artifacts(
    workspace: Workspace, artifacts: list[ResolvedArtifact], want_globals: bool
) -> tuple[ResolvedArtifact | None, ResolvedArtifact | None]:
    """(database dump, globals) among what the operator named; the globals of the same
    backup set are looked up in the catalog when only the dump was named."""
    dumps = [a for a in artifacts if _mode(a) != GLOBALS]
    found_globals = [a for a in artifacts if _mode(a) == GLOBALS]
    if len(dumps) > 1:
        names = ", ".join(a.label for a in dumps)
        raise JarvisError(f"several database dumps match ({names}); name one artifact")
    dump = dumps[0] if dumps else None
    globals_artifact = found_globals[0] if found_globals and want_globals else None
    if want_globals and globals_artifact is None and dump is not None:
        globals_artifact = _globals_of_set(workspace, dump)
    if want_globals and globals_artifact is None:
        raise NotFoundError(
            "--with-globals: this backup has no globals artifact (only full backups store "
            "roles and tablespaces)"
        )
    return dump, globals_artifact


def _globals_of_set(workspace: Workspace, dump: ResolvedArtifact) -> ResolvedArtifact | None:
    set_id = dump.metadata.get("set_id")
    if set_id:
        for artifact in workspace.catalog.artifacts_of(str(set_id)):
            if artifact.mode == GLOBALS and artifact.status == "complete":
                return resolved_from_catalog(workspace, artifact)
        if dump.file is not None:  # a file picked by hand: its set's globals beside it
            for path in sorted(dump.file.parent.glob(f"{set_id}_globals.sql.*.enc")):
                return resolve_file(workspace, path)
        else:
            folder = dump.stored.name.rpartition("/")[0]
            for stored in workspace.reader().list(f"{folder}/{set_id}_globals.sql."):
                if stored.key.endswith(".enc"):
                    return resolve_key(workspace, stored.key)
    return None


def target_database(target_db: str | None, settings: Settings, dumped: str | None) -> str:
    """The database a restore writes: --target-db, else POSTGRES_DB, else the one dumped."""
    return target_db or settings.postgres_db or dumped or "postgres"


def restore_postgres(
    workspace: Workspace,
    artifacts: list[ResolvedArtifact],
    options: PostgresRestoreOptions,
    context: JobContext,
) -> RestoreReport:
    """Every artifact involved is authenticated and every refusal decided before the first
    change on the server; roles (with --with-globals) come before the database."""
    dump, globals_artifact = split_artifacts(
        workspace, artifacts, options.with_globals or all(_mode(a) == GLOBALS for a in artifacts)
    )
    dumped = dump.metadata.get("database") if dump else None
    target_name = target_database(options.target_db, workspace.settings, dumped)
    check_identifier(target_name, "target database name")
    if options.discard_previous and not options.drop_existing:
        raise JarvisError("--discard-previous only applies with --drop-existing")
    if options.jobs < 1:
        raise JarvisError(f"--jobs must be at least 1, got {options.jobs}")
    server = target_from_settings(workspace.settings, target_name)
    report = RestoreReport("postgres", options.dry_run, server.describe())
    with contextlib.ExitStack() as stack:
        job = (
            stack.enter_context(open_restore_job(workspace, dump, server, options, context))
            if dump is not None
            else None
        )
        script = None
        if globals_artifact is not None:
            archive = stack.enter_context(
                authenticated_archive(
                    globals_artifact,
                    workspace.keyring(),
                    workspace.local_root,
                    workspace.catalog,
                    context,
                )
            )
            script = archive.path.read_text(encoding="utf-8")
        current = target_contents(server, target_name) if job is not None else None
        tables: list[TableInfo] = []
        privileges = PrivilegePlan([], None)
        if job is not None and current is not None:
            tables = (
                pick_tables(options.tables, job.expected_tables)
                if options.tables
                else (job.expected_tables)
            )
            if not options.tables and job.mode != "data" and not options.dry_run:
                _refuse_non_empty(server, current, options)
            privileges = plan_for(job, current, tables, script)
            if privileges.refusal and not options.dry_run:
                raise MissingRolesError(f"{privileges.refusal}; nothing was changed")
        if script is not None:
            _restore_globals(server, script, options, report)
        if job is None or current is None:
            return report
        if options.dry_run:
            describe_plan(job, current, tables, report)
            for line in privileges.lines:
                report.add(line)
            if privileges.refusal:
                report.refuse(f"plan: refused: {privileges.refusal}")
            return report
        if options.tables:
            lines = restore_tables(job, current, tables)
        elif job.mode == "data":
            lines = restore_data(job, current)
        else:
            lines = restore_whole_database(job, current)
    for line in lines + privileges.lines:
        report.add(line)
    report.details["tables"] = [t.qualified for t in tables]
    return report


def _refuse_non_empty(
    server: PostgresTarget, current: DatabaseContents, options: PostgresRestoreOptions
) -> None:
    if current.exists and not current.empty and not options.drop_existing:
        raise JarvisError(
            f"{server.describe()} is not empty ({len(current.tables)} tables); nothing was "
            "changed. Use --drop-existing to replace it safely (restored into a scratch "
            "database, checked, then swapped in; the old one is kept as "
            f"{server.database}_pre_restore_<time>), or choose another name with --target-db"
        )


def _restore_globals(
    server: PostgresTarget, script: str, options: PostgresRestoreOptions, report: RestoreReport
) -> None:
    with connect_maintenance(server) as admin:
        if options.dry_run:
            roles = roles_in(script)
            present = existing_roles(admin)
            missing = [r for r in roles if r not in present]
            report.add(
                f"globals: would create role(s) {', '.join(missing) or 'none'}; would keep "
                f"existing {', '.join(r for r in roles if r in present) or 'none'}"
            )
            return
        replay = replay_globals(admin, script)
    report.add(
        f"globals: created role(s) {', '.join(replay.created_roles) or 'none'}; "
        f"kept existing {', '.join(replay.skipped_roles) or 'none'}"
    )
    report.warnings.extend(replay.warnings)
