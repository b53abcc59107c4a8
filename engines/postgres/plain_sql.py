"""`decrypt --sql`: a PostgreSQL artifact as a plain `.sql.gz`, for `gunzip -c | grep`.

The artifact is authenticated completely first; the output appears only once
the whole SQL has been written (temporary name, fsync, rename).
"""

import gzip
from pathlib import Path, PurePosixPath

from engines.catalog import LATEST
from engines.errors import JarvisError
from engines.jobs import JobContext
from engines.pipeline.artifacts import READ_SIZE
from engines.pitr.base_choice import newest_postgres
from engines.plumbing.fsutil import atomic_output
from engines.postgres.archive import authenticated_archive
from engines.postgres.process import RunningTool
from engines.postgres.tools import installed_tools
from engines.repository.resolve import resolve_artifacts
from engines.workspace import Workspace

SQL_SUFFIX = ".sql.gz"


def decrypt_to_sql(workspace: Workspace, reference: str, output: Path, context: JobContext) -> Path:
    if reference == LATEST:  # a base backup (a cluster's files) holds no SQL
        reference = newest_postgres(workspace.catalog, base=False).id
    targets = resolve_artifacts(workspace, reference, "postgres")
    if len(targets) != 1:
        names = ", ".join(t.label for t in targets)
        raise JarvisError(f"{reference} holds {len(targets)} artifacts ({names}); name one of them")
    if output.is_dir():
        stem = PurePosixPath(targets[0].stored.name).name.split(".", 1)[0]
        output = output / (stem + SQL_SUFFIX)
    if not output.name.endswith(SQL_SUFFIX):
        raise JarvisError(
            f"{output}: name the output with {SQL_SUFFIX} (it is gzip-compressed SQL)"
        )
    if output.exists():
        raise JarvisError(f"{output} already exists; choose another output path or remove it first")
    with (
        authenticated_archive(
            targets[0], workspace.keyring(), workspace.local_root, workspace.catalog, context
        ) as archive,
        atomic_output(output) as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as sql_out,
    ):
        if archive.metadata.get("content") == "globals":
            with archive.path.open("rb") as script:
                while block := script.read(READ_SIZE):
                    sql_out.write(block)
        else:
            _write_sql(archive.path, archive.metadata.get("pg_dump_major"), sql_out)
    return output


def _write_sql(archive: Path, dump_major: int | None, sink: gzip.GzipFile) -> None:
    available = installed_tools()
    usable = [t for t in available if dump_major is None or t.major >= dump_major]
    if not usable:
        raise JarvisError(
            f"pg_restore {dump_major} or newer is needed to read this archive; install the "
            f"PostgreSQL {dump_major} client tools"
        )
    tool = RunningTool(
        [usable[0].path("pg_restore"), "--no-owner", "--no-acl", "--file=-", str(archive)],
        {},
        name="pg_restore",
        stdout=-1,
    )
    try:
        while block := tool.stdout.read(READ_SIZE):
            sink.write(block)
        tool.check("writing plain SQL")
    finally:
        tool.stop()
