"""The console's export: a set's artifacts decrypted into a fresh folder, all or nothing.

Each artifact becomes its plain compressed stream (PostgreSQL ones, if asked, plain
SQL), and a files snapshot a standard tarball (`tar -xzf`), as `export files --tar`
writes it. Everything is written into a temporary folder beside the destination and
renamed to it at the end: a failure or a cancel leaves nothing, and a destination that
holds anything already is refused before any work.
"""

from pathlib import Path, PurePosixPath

from engines.actions.decrypt import check_outside, decrypt_to_file
from engines.actions.verbs import Request
from engines.errors import JarvisError
from engines.jobs import JobContext
from engines.plumbing.fsutil import atomic_folder
from engines.plumbing.os_errors import explain_os_error
from engines.store.layout import SNAPSHOT_NAME, is_snapshot_key
from engines.workspace import Workspace

TARBALL_SUFFIX = ".tar.gz"


def tarball_name(relpath: str) -> str:
    """`files/files_2026-05-01_093000_snapshot.json.zst.enc` -> `files_2026-…_files.tar.gz`."""
    return PurePosixPath(relpath).name.split(f"_{SNAPSHOT_NAME}")[0] + "_files" + TARBALL_SUFFIX


def check_fresh(folder: Path) -> None:
    """An export goes into a folder of its own: a file there, or a folder with anything in
    it (an earlier export of the same set, say), is refused before anything is written."""
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise JarvisError(f"{folder} is a file; name a new folder to export into")
    if folder.is_dir() and any(folder.iterdir()):
        raise JarvisError(
            f"{folder} already holds files (an earlier export?); an export goes into a new "
            "folder: name another one or remove it, nothing was written"
        )


def _export_one(
    workspace: Workspace, relpath: str, folder: Path, as_sql: bool, context: JobContext
) -> Path:
    if is_snapshot_key(relpath):
        from engines.store.export import export_tar

        return export_tar(workspace, relpath, folder / tarball_name(relpath), context).output
    if as_sql:
        from engines.postgres.plain_sql import decrypt_to_sql

        return decrypt_to_sql(workspace, relpath, folder, context)
    return decrypt_to_file(workspace, relpath, folder)


def run(workspace: Workspace, request: Request, context: JobContext) -> list[Path]:
    """The `export` verb: each of `request.relpaths` into the new folder `request.output`
    (its plain .gz, a files snapshot as a tarball, with `request.as_sql` PostgreSQL as
    SQL); the paths written, under their final names."""
    folder = request.output
    assert folder is not None
    folder = Path(folder).absolute()
    check_outside(folder, workspace.local_root)
    check_fresh(folder)
    names = []
    try:
        with atomic_folder(folder) as staging:
            for relpath in request.relpaths:
                context.raise_if_cancelled()
                written = _export_one(workspace, relpath, staging, request.as_sql, context)
                context.log(f"{relpath}: {written.name} ready")
                names.append(written.name)
    except OSError as error:
        explained = explain_os_error(OSError(error.errno, error.strerror), where=folder)
        raise type(explained)(f"{explained}; nothing was exported") from None
    context.log(f"exported {len(names)} file(s) into {folder}")
    return [folder / name for name in names]
