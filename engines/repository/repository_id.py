"""The repository's id: made once, kept in the repository, bound into every artifact.

A copy of the repository (rsync, a bucket) keeps the file, so its artifacts
still read there; an artifact copied in from another repository does not.
"""

import contextlib
import os
import re
import secrets
from pathlib import Path

from engines.errors import IntegrityError
from engines.plumbing.fsutil import atomic_output, fsync_directory, temporary_path_for

ID_FILE = ".repository-id"
_ID = re.compile(r"[0-9a-f]{32}")


def read_repository_id(root: Path) -> str | None:
    """The id kept in `root`, or None when it has none yet (nothing is created)."""
    path = Path(root) / ID_FILE
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    except UnicodeDecodeError:
        text = ""
    return parse_repository_id(text, str(path))


def parse_repository_id(text: str, where: str) -> str:
    """The id in a `.repository-id`'s text (read from a folder or a bucket), or
    IntegrityError naming `where`."""
    text = text.strip()
    if not _ID.fullmatch(text):
        raise IntegrityError(
            f"{where}: not a repository id (expected 32 hex characters); restore the file "
            "from a copy of the repository"
        )
    return text


def new_repository_id_text(adopted: str | None = None) -> bytes:
    """A new id's text; with `adopted`, that id (a copy or a rebuilt host keeps the
    repository's own), checked first."""
    if adopted is not None:
        return parse_repository_id(adopted, "the adopted repository id").encode() + b"\n"
    return secrets.token_hex(16).encode() + b"\n"


def ensure_repository_id(root: Path, adopted: str | None = None) -> str:
    """The id kept in `root`, made now (as `adopted`, when given) if it has none; two
    processes agree on one. An id already there is kept and returned."""
    existing = read_repository_id(root)
    if existing is not None:
        return existing
    path = Path(root) / ID_FILE
    staged = temporary_path_for(path)
    with atomic_output(staged) as out:
        out.write(new_repository_id_text(adopted))
    try:
        # A hard link never replaces: whoever links first made the id everyone keeps.
        with contextlib.suppress(FileExistsError):
            os.link(staged, path)
        fsync_directory(path.parent)
    finally:
        staged.unlink(missing_ok=True)
    return read_repository_id(root) or ""
