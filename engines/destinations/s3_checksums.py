"""An upload's SHA-256, ours and the server's: what confirms that the bucket holds the
bytes we sent before a copy counts as present.

Ours is taken by `SentDigests` from each request's body as it goes out (the PutObject,
or every UploadPart of a multipart upload) and set as that request's
`x-amz-checksum-sha256`, so botocore sends it instead of hashing the body again, and the
server checks each part against it. After the upload, the server's checksum (HEAD with
ChecksumMode) must be ours: the whole object's for a single PUT, the SHA-256 of the
parts' SHA-256s for a multipart one. Should a request go out without our handler (some
other route through botocore), the file is hashed the way s3transfer cut it instead.
"""

import base64
import hashlib
import itertools
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

HASH_BLOCK = 1024 * 1024
HEADER = "x-amz-checksum-sha256"
EVENTS = ("before-call.s3.PutObject", "before-call.s3.UploadPart")
_handler_ids = itertools.count()


class SentDigests:
    """Within its block, the SHA-256 of every request body sent for `bucket`/`key` on
    `client`, by part number (0 for a single PUT)."""

    def __init__(self, client: Any, bucket: str, key: str) -> None:
        self._events = client.meta.events
        self._paths = {f"/{bucket}/{key}", f"/{key}"}  # path-style, virtual-hosted
        self._unique = f"jarvis-sha256-{next(_handler_ids)}"
        self.parts: dict[int, bytes] = {}

    def __enter__(self) -> "SentDigests":
        for event in EVENTS:
            self._events.register(event, self._on_call, unique_id=f"{self._unique}-{event}")
        return self

    def __exit__(self, *exc_info: object) -> None:
        for event in EVENTS:
            self._events.unregister(event, unique_id=f"{self._unique}-{event}")

    def _on_call(self, params: dict, **_: Any) -> None:
        if unquote(urlsplit(params.get("url", "")).path) not in self._paths:
            return  # another object's request on the same client
        algorithm = params.get("context", {}).get("checksum", {}).get("request_algorithm")
        if not isinstance(algorithm, dict) or algorithm.get("name") != HEADER:
            return
        digest = _digest_of(params["body"])
        params["headers"][HEADER] = base64.b64encode(digest).decode()
        self.parts[int(params.get("query_string", {}).get("partNumber", 0))] = digest

    def as_sent(self, multipart: bool) -> tuple[str, int] | None:
        """(the SHA-256 S3 shows, base64; the count of parts, 0 for a single PUT), or None
        when not every request went through our handler."""
        numbers = sorted(self.parts)
        if not multipart:
            return (base64.b64encode(self.parts[0]).decode(), 0) if numbers == [0] else None
        if not numbers or numbers != list(range(1, len(numbers) + 1)):
            return None
        composite = hashlib.sha256(b"".join(self.parts[n] for n in numbers)).digest()
        return base64.b64encode(composite).decode(), len(numbers)


def sha256_as_sent(source: Path, size: int, threshold: int, part_size: int) -> tuple[str, int]:
    """The same from the file, in one pass: below `threshold` its own SHA-256 (0 parts),
    from it up the SHA-256 of each `part_size` part's SHA-256 in order."""
    multipart = size >= threshold
    step = part_size if multipart else max(size, 1)
    digests = []
    with open(source, "rb") as handle:
        while True:
            part = hashlib.sha256()
            left = step
            while left:
                block = handle.read(min(left, HASH_BLOCK))
                if not block:
                    break
                part.update(block)
                left -= len(block)
            if left == step:
                break
            digests.append(part.digest())
    if multipart:
        value = hashlib.sha256(b"".join(digests)).digest()
    else:
        value = digests[0] if digests else hashlib.sha256(b"").digest()
    return base64.b64encode(value).decode(), len(digests) if multipart else 0


def confirmation_problem(size: int, head: dict, ours: tuple[str, int]) -> str | None:
    """Why the server's HEAD does not confirm our upload, or None when it does."""
    if head.get("ContentLength") != size:
        return f"the bucket holds {head.get('ContentLength')} bytes, we sent {size}"
    theirs = head.get("ChecksumSHA256")
    if not theirs:
        # A server that keeps no checksum (some S3-compatible stores) is confirmed by
        # size alone.
        return None
    value, _, parts = theirs.partition("-")
    digest, count = ours
    if value != digest or (parts and int(parts) != count):
        return f"SHA-256 {theirs} in the bucket, ours {digest}"
    return None


def _digest_of(body: Any) -> bytes:
    """The SHA-256 of a request body, leaving a stream where it was (s3transfer's part
    reader counts a read as progress and a seek back as its undoing)."""
    if isinstance(body, bytes | bytearray):
        return hashlib.sha256(body).digest()
    start = body.tell()
    digest = hashlib.sha256()
    while block := body.read(HASH_BLOCK):
        digest.update(block)
    body.seek(start)
    return digest.digest()
