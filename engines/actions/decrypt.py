"""`jarvis-tui decrypt`: an artifact back to the plain `.gz` (or `.zst`) it holds."""

import os
from pathlib import Path, PurePosixPath

from engines.actions.verbs import Request
from engines.errors import JarvisError, NotFoundError
from engines.jobs import JobContext
from engines.pipeline.artifacts import decrypt_artifact, read_sidecar
from engines.pipeline.compression import CODEC_SUFFIXES
from engines.repository.resolve import resolve_artifacts
from engines.workspace import Workspace


def default_output_name(artifact_name: str) -> str:
    return PurePosixPath(artifact_name).name.removesuffix(".enc")


def decrypt_to_file(workspace: Workspace, reference: str, output: Path) -> Path:
    """Authenticate the whole artifact and write its compressed plaintext to `output`.

    Nothing appears at `output` unless every chunk authenticated.
    """
    targets = resolve_artifacts(workspace, reference)
    if len(targets) != 1:
        names = ", ".join(t.label for t in targets)
        raise JarvisError(f"{reference} holds {len(targets)} artifacts ({names}); name one of them")
    source, expected = targets[0].stored, targets[0].expected
    if output.is_dir():
        output = output / default_output_name(source.name)
    if output.exists():
        raise JarvisError(f"{output} already exists; choose another output path or remove it first")
    try:
        codec = read_sidecar(source)["codec"]
    except NotFoundError:
        codec = None
    if codec in CODEC_SUFFIXES and not output.name.endswith(CODEC_SUFFIXES[codec]):
        raise JarvisError(
            f"{output}: the artifact holds a {codec} stream; name the output with "
            f"{CODEC_SUFFIXES[codec]} so tools recognise it"
        )
    return decrypt_artifact(source, output, workspace.keyring(), expected)


def check_outside(folder: Path, repository: Path) -> None:
    """Decrypted data never goes into the repository: a sync copies every file there
    off-site, so an export inside it would be uploaded in the clear."""
    inside, root = Path(os.path.realpath(folder)), Path(os.path.realpath(repository))
    if inside == root or root in inside.parents:
        raise JarvisError(
            f"{folder} is inside the repository ({repository}), whose every file is copied "
            "off-site: name a folder outside it; nothing was written"
        )


def run(workspace: Workspace, request: Request, context: JobContext | None) -> Path:
    """The `decrypt` verb: artifact `request.reference` to `request.output`. No job: it
    writes outside the repository only, and nothing unless every chunk authenticated."""
    assert request.output is not None
    check_outside(Path(request.output), workspace.local_root)
    return decrypt_to_file(workspace, str(request.reference), request.output)
