"""`backup <source> --output PATH`: a copy of the new artifacts and their sidecars elsewhere."""

from pathlib import Path

from engines.catalog import Artifact
from engines.errors import JarvisError
from engines.pipeline.artifacts import sidecar_path_for
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
        source = workspace.repository.path_for(artifact.relpath)
        if output.is_dir():
            destination = output / source.name
        elif index == 0:
            destination = output
        else:
            destination = output.parent / source.name
        for origin, copy in (
            (source, destination),
            (sidecar_path_for(source), sidecar_path_for(destination)),
        ):
            if copy.exists():
                raise JarvisError(
                    f"{copy} already exists; the backup itself is complete in the "
                    "repository, only the copy was skipped"
                )
            with origin.open("rb") as reader, atomic_output(copy) as writer:
                while block := reader.read(COPY_SIZE):
                    writer.write(block)
        copied.append(destination)
    return copied
