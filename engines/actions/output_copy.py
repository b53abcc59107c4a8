"""`backup <source> --output PATH`: a copy of the new artifacts and their sidecars
elsewhere on this host, read through the repository's destination. The backup action
makes it, once, for every source that offers `--output`."""

import shutil
from pathlib import Path, PurePosixPath

from engines.catalog import Artifact
from engines.errors import JarvisError
from engines.pipeline.artifacts import SIDECAR_SUFFIX
from engines.plumbing.fsutil import atomic_output
from engines.workspace import Workspace

COPY_SIZE = 1 << 20


def check_output_path(output: Path | None) -> None:
    """Refuse an --output that cannot be written, before any work starts."""
    if output is None:
        return
    folder = output if output.is_dir() else output.parent
    if not folder.is_dir():
        raise JarvisError(f"--output {output}: folder {folder} does not exist; create it first")
    if not output.is_dir() and output.exists():
        raise JarvisError(f"--output {output} already exists; choose another path or remove it")


def copy_artifacts(workspace: Workspace, artifacts: list[Artifact], output: Path) -> list[Path]:
    """Into `output` when it is a folder; else the first artifact under that name and the
    others beside it under their own names."""
    copied = []
    for index, artifact in enumerate(artifacts):
        name = PurePosixPath(artifact.relpath).name
        if output.is_dir():
            destination = output / name
        elif index == 0:
            destination = output
        else:
            destination = output.parent / name
        for key, copy in (
            (artifact.relpath, destination),
            (
                artifact.relpath + SIDECAR_SUFFIX,
                destination.with_name(destination.name + SIDECAR_SUFFIX),
            ),
        ):
            if copy.exists():
                raise JarvisError(
                    f"{copy} already exists; the backup itself is complete in the "
                    "repository, only the copy was skipped"
                )
            with workspace.repository.open_read(key) as reader, atomic_output(copy) as writer:
                shutil.copyfileobj(reader, writer, COPY_SIZE)
        copied.append(destination)
    return copied
