"""A backup set of several artifacts as one POSIX tar (pax), laid out before it is read.

Every header comes from the catalog alone (name `<set id>/<relpath>`, its catalogued
size, mtime its creation time, mode 0600, owner 0 and no names), written by the
standard library's `tarfile.TarInfo.tobuf`, so the same set gives the same tar, byte
for byte, and its length is known up front: per member a 512-byte header (more for a
long name or a size past ustar's 8 GiB, as pax extended headers), its data padded to
512, then 1024 zero bytes. The artifacts' bytes are streamed, never built in memory or
on disk.

The tar's own SHA-256 is not given: it could only be known by reading every artifact
before answering. The tar's bytes are determined by its members' bytes, whose SHA-256s
are known (the catalog's): they are in the headers (`X-Artifact-SHA256-<n>: <hex>
<relpath>`, n from 1 in tar order) and in the tar's first member, `<set id>/SHA256SUMS`
(`cd <set id> && sha256sum -c SHA256SUMS` after extracting). Each member read whole
is hashed as it is sent (see `download.body`).
"""

import hashlib
import tarfile
from collections.abc import Sequence
from datetime import datetime

from engines.catalog.rows import BackupSet
from jarvis_tui.api.download.body import Body, Literal, Piece, Stored
from jarvis_tui.api.download.stored_artifact import StoredArtifact

BLOCK = tarfile.BLOCKSIZE
SUMS_NAME = "SHA256SUMS"


def set_tar(backup: BackupSet, members: Sequence[StoredArtifact]) -> Body:
    sums = "".join(f"{m.sha256}  {m.relpath}\n" for m in members).encode()
    pieces: list[Piece] = [
        Literal(_header(f"{backup.id}/{SUMS_NAME}", len(sums), backup.created_at)),
        Literal(sums + _padding(len(sums))),
    ]
    for member in members:
        name = f"{backup.id}/{member.relpath}"
        pieces.append(Literal(_header(name, member.size, member.artifact.created_at)))
        pieces.append(Stored(member))
        if _padding(member.size):
            pieces.append(Literal(_padding(member.size)))
    pieces.append(Literal(bytes(2 * BLOCK)))
    return Body(pieces)


def tar_etag(body: Body) -> str:
    """A strong ETag: the layout's bytes and every member's catalogued SHA-256."""
    digest = hashlib.sha256(b"jarvis-set-tar/1\n")
    for piece in body.pieces:
        digest.update(piece.data if isinstance(piece, Literal) else piece.stored.sha256.encode())
    return f'"tar-{digest.hexdigest()}"'


def _header(name: str, size: int, mtime: datetime) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = int(mtime.timestamp())
    info.mode = 0o600
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def _padding(size: int) -> bytes:
    return bytes(-size % BLOCK)
