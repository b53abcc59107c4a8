"""The console's export: chosen artifacts decrypted into a folder, each as its plain
compressed stream, or PostgreSQL ones as plain SQL."""

from pathlib import Path

from engines.actions.decrypt import decrypt_to_file
from engines.actions.verbs import Request
from engines.jobs import JobContext
from engines.workspace import Workspace


def run(workspace: Workspace, request: Request, context: JobContext) -> list[Path]:
    """The `export` verb: each of `request.relpaths` into the folder `request.output`,
    its plain .gz, or with `request.as_sql` PostgreSQL as SQL."""
    folder = request.output
    assert folder is not None
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for relpath in request.relpaths:
        context.raise_if_cancelled()
        if request.as_sql:
            from engines.postgres.plain_sql import decrypt_to_sql

            path = decrypt_to_sql(workspace, relpath, folder, context)
        else:
            path = decrypt_to_file(workspace, relpath, folder)
        context.log(f"wrote {path}")
        written.append(path)
    return written
