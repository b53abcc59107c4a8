"""`GET|HEAD /api/backups/{id}/download`: a backup's ENCRYPTED stored bytes, never decrypted.

A set of one artifact is that file (`application/octet-stream`); a set of several is a
POSIX tar of them (`application/x-tar`, see `set_tar`); `?artifact=<relpath>` picks one
artifact of a set; the id `latest` is the newest complete set. What is sent is what the
catalog lists as the set's complete artifacts: for a files snapshot, its manifest. The
packs and index files holding a snapshot's data are shared between snapshots, not
catalogued (no size or SHA-256 to check them against) and named only inside the
encrypted manifest, so they are not part of a download.

Headers: `Content-Length`, `Accept-Ranges: bytes`, a strong `ETag`,
`Content-Disposition: attachment`. One artifact: its SHA-256 as `X-Content-SHA256`
(hex) and as RFC 9530 `Repr-Digest: sha-256=:<base64>:`, both of the whole file, also
on a 206. A tar: `X-Artifact-SHA256-<n>: <hex> <relpath>` per member, and its
`SHA256SUMS` member (the tar's own digest is not known before reading it all).

Ranges (`byte_ranges`): one range is a 206 with Content-Range, a resumed download
`bytes=N-`; several ranges get the whole body (200), as RFC 9110 allows; 416 with
`Content-Range: bytes */<length>`. `If-Range` with the ETag keeps the range, anything
else (another ETag, a date) gets the whole body. HEAD answers the headers only.

Trust nothing: each artifact is checked for place and size before a byte is sent
(422 `integrity` naming it and `jarvis-tui verify`), and hashed while sent whole, the
connection cut before its last bytes when the hash is not the catalog's (logged); a
local file this server already hashed whole, unchanged since (`checked_files`: same
device, inode, size, mtime and ctime), is sent without hashing again.
"""

import base64
import logging
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from engines.catalog.rows import Artifact, BackupSet
from engines.plumbing.redaction import redact
from jarvis_tui.api.context import ApiContext, api_context
from jarvis_tui.api.download.body import Body, Stored
from jarvis_tui.api.download.byte_ranges import ByteRange, Unsatisfiable, requested_range
from jarvis_tui.api.download.checked_stream import CheckedStreamResponse
from jarvis_tui.api.download.set_tar import set_tar, tar_etag
from jarvis_tui.api.download.stored_artifact import StoredArtifact, open_stored
from jarvis_tui.api.errors import ApiError, ErrorBody, conflict

logger = logging.getLogger("jarvis.api")
router = APIRouter(tags=["backups"])

PATH = "/api/backups/{backup_id}/download"
_BINARY = {"schema": {"type": "string", "format": "binary"}}
_CONTENT = {"application/octet-stream": _BINARY, "application/x-tar": _BINARY}
RESPONSES: dict[int | str, dict] = {
    200: {"description": "the artifact, or a tar of the set's artifacts", "content": _CONTENT},
    206: {"description": "the one byte range asked for", "content": _CONTENT},
    416: {"model": ErrorBody, "description": "the range starts past the end"},
    422: {"model": ErrorBody, "description": "a stored file fails its check (`integrity`)"},
    503: {"model": ErrorBody, "description": "the copy holding the bytes cannot be read now"},
}
ArtifactQuery = Annotated[
    str | None,
    Query(description="the relpath of one artifact of the set, to download it alone"),
]


@router.get(PATH, response_class=Response, responses=RESPONSES, summary="Download a backup")
def download(
    backup_id: str,
    request: Request,
    context: Annotated[ApiContext, Depends(api_context)],
    artifact: ArtifactQuery = None,
) -> Response:
    return _answer(context, request, backup_id, artifact, head=False)


@router.head(PATH, response_class=Response, responses=RESPONSES, summary="A download's headers")
def download_headers(
    backup_id: str,
    request: Request,
    context: Annotated[ApiContext, Depends(api_context)],
    artifact: ArtifactQuery = None,
) -> Response:
    return _answer(context, request, backup_id, artifact, head=True)


def _answer(
    context: ApiContext, request: Request, backup_id: str, relpath: str | None, *, head: bool
) -> Response:
    backup = context.catalog.get_backup_set(backup_id)
    if backup.deleting_since is not None:  # its files may vanish mid-stream, as verify says
        raise conflict(f"backup set {backup.id} is being deleted; there is nothing to download")
    chosen = _artifacts(context, backup, relpath)
    opened: list[StoredArtifact] = []
    try:
        for artifact in chosen:
            opened.append(open_stored(context.workspace, artifact, context.checked_files))
    except BaseException as error:
        for stored in opened:
            stored.close()
        if isinstance(error, ApiError) and error.code == "integrity":
            logger.warning("API: download refused: %s", redact(error.message))
        raise
    if len(opened) == 1:
        body, headers = Body([Stored(opened[0])]), _one_artifact_headers(opened[0])
        media_type = "application/octet-stream"
    else:
        body, headers = set_tar(backup, opened), _set_headers(backup, opened)
        media_type = "application/x-tar"
        headers["ETag"] = tar_etag(body)
    length = body.length
    headers["Accept-Ranges"] = "bytes"
    try:
        wanted = None if head else _range(request, headers["ETag"], length)
    except Unsatisfiable:
        body.close()
        return _unsatisfiable(length)
    if wanted is None:
        headers["Content-Length"] = str(length)
    else:
        headers["Content-Length"] = str(wanted.length)
        headers["Content-Range"] = wanted.content_range(length)
    return CheckedStreamResponse(
        body,
        wanted,
        status_code=200 if wanted is None else 206,
        headers=headers,
        media_type=media_type,
        head=head,
        what=f"backup {backup.id}" + (f" ({relpath})" if relpath else ""),
    )


def _artifacts(context: ApiContext, backup: BackupSet, relpath: str | None) -> list[Artifact]:
    complete = [a for a in context.catalog.artifacts_of(backup.id) if a.status == "complete"]
    if relpath is not None:
        picked = [a for a in complete if a.relpath == relpath]
        if not picked:
            held = ", ".join(a.relpath for a in complete) or "none"
            raise ApiError(
                404,
                "not_found",
                f"backup {backup.id} holds no complete artifact {relpath!r}; its artifacts: {held}",
                field="artifact",
            )
        return picked
    if not complete:
        raise conflict(f"backup {backup.id} ({backup.status}) holds no complete artifact")
    return complete


def _range(request: Request, etag: str, length: int) -> ByteRange | None:
    if_range = request.headers.get("if-range")
    if if_range is not None and if_range.strip() != etag:
        return None  # changed since (or a date, which we cannot compare): all of it
    return requested_range(request.headers.get("range"), length)


def _unsatisfiable(length: int) -> JSONResponse:
    message = f"the range asked for starts past the end: the body is {length} bytes long"
    body = ErrorBody(code="range_not_satisfiable", message=message)
    return JSONResponse(
        status_code=416,
        content=body.model_dump(exclude_none=True),
        headers={"Content-Range": f"bytes */{length}"},
    )


def _one_artifact_headers(stored: StoredArtifact) -> dict[str, str]:
    digest = bytes.fromhex(stored.sha256)
    return {
        "Content-Disposition": _attachment(stored.relpath.rsplit("/", 1)[-1]),
        "X-Content-SHA256": stored.sha256,
        "Repr-Digest": f"sha-256=:{base64.b64encode(digest).decode()}:",
        "ETag": f'"{stored.sha256}"',
        "Cache-Control": "private, no-transform",
    }


def _set_headers(backup: BackupSet, members: list[StoredArtifact]) -> dict[str, str]:
    headers = {
        "Content-Disposition": _attachment(f"{backup.id}.tar"),
        "Cache-Control": "private, no-transform",
    }
    for number, member in enumerate(members, start=1):
        headers[f"X-Artifact-SHA256-{number}"] = f"{member.sha256} {quote(member.relpath)}"
    return headers


def _attachment(name: str) -> str:
    """RFC 6266: an ASCII fallback and the exact name in UTF-8."""
    fallback = "".join(_plain(c) for c in name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name)}"


def _plain(char: str) -> str:
    return char if char.isascii() and char.isprintable() and char not in '"\\' else "_"
