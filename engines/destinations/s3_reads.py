"""Reading an S3 object as a stream: ranged GETs, one streaming GET for a sequential read,
and a body cut off mid-way resumed from where it stopped.

A first read (or one after a seek) asks for just the bytes it wants, as artifact readers
look at a header or a trailer; a read that continues the previous one opens one GET for
the rest of the range and keeps reading its body, so a whole-object read is one request
(a request per slice would cost a round trip each, and some servers read the whole
object for every range). Request errors are botocore's to retry; a body that breaks
mid-way is resumed with a ranged GET from the first byte not yet read, `If-Match` the
ETag seen when the object was opened, so a replaced object fails instead of mixing.
"""

import contextlib
import io
import os
from typing import TYPE_CHECKING, Any

from engines.destinations.s3_client import S3Error

if TYPE_CHECKING:
    from engines.destinations.s3 import S3Destination

BODY_BLOCK = 1024 * 1024
BODY_RESUMES = 3  # breaks in a row with no byte between them before the read fails
LARGEST_READALL_PIECE = 16 * 1024 * 1024


class RangedObject(io.RawIOBase):
    """An object's bytes [low, high) fetched by GETs as they are read."""

    def __init__(
        self,
        destination: "S3Destination",
        key: str,
        etag: str | None,
        low: int,
        high: int,
        position: int,
        seekable: bool,
    ) -> None:
        self._destination = destination
        self._key = key
        self._etag = etag
        self._low, self._high = low, high
        self._position = position
        self._seekable = seekable
        self._body: Any = None
        self._body_at = self._body_end = -1  # the open body's next byte and its end
        self._previous_end = -1  # where the last read stopped: a read from there streams
        self._resumes = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self._seekable

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if not self._seekable:
            raise io.UnsupportedOperation("a ranged read of an S3 object does not seek")
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._position, os.SEEK_END: self._high}[whence]
        if base + offset < 0:
            raise ValueError(f"negative seek position {base + offset}")
        self._position = base + offset
        return self._position

    def readall(self) -> bytes:
        # RawIOBase's own asks 8 KiB at a time.
        pieces = bytearray()
        while self._position < self._high:
            piece = bytearray(min(self._high - self._position, LARGEST_READALL_PIECE))
            got = self.readinto(piece)
            if not got:
                break
            pieces += memoryview(piece)[:got]
        return bytes(pieces)

    def readinto(self, buffer) -> int:
        wanted = min(len(buffer), self._high - self._position)
        if wanted <= 0:
            return 0
        view = memoryview(buffer).cast("B")[:wanted]
        if self._body is None or self._body_at != self._position or self._body_at >= self._body_end:
            sequential = self._position == self._previous_end
            self._open(self._position, self._high if sequential else self._position + wanted)
        done = 0
        while done < wanted:
            try:
                chunk = self._body.read(min(wanted - done, BODY_BLOCK))
            except Exception as error:
                self._resume(error)
                continue
            if not chunk:
                if self._body_at < self._body_end:
                    raise S3Error(
                        f"{self._key}: bucket {self._destination.bucket} returned fewer bytes "
                        "than expected; the object changed while it was read, try again"
                    )
                break
            view[done : done + len(chunk)] = chunk
            done += len(chunk)
            self._body_at += len(chunk)
            self._resumes = 0
        self._position += done
        self._previous_end = self._position
        return done

    def close(self) -> None:
        self._close_body()
        super().close()

    def _open(self, start: int, end: int) -> None:
        self._close_body()
        destination = self._destination
        arguments = {"Range": f"bytes={start}-{end - 1}"}
        if self._etag:
            arguments["IfMatch"] = self._etag
        try:
            response = destination.client().get_object(
                Bucket=destination.bucket, Key=destination.full_key(self._key), **arguments
            )
        except Exception as error:
            raise destination.read_failure(self._key, error) from None
        self._body, self._body_at, self._body_end = response["Body"], start, end

    def _resume(self, error: BaseException) -> None:
        """The body broke mid-way: a ranged GET from where it stopped, a few times in a row."""
        if self._resumes >= BODY_RESUMES:
            self._close_body()
            raise self._destination.read_failure(self._key, error) from None
        self._resumes += 1
        self._open(self._body_at, self._body_end)

    def _close_body(self) -> None:
        if self._body is not None:
            body, self._body = self._body, None
            with contextlib.suppress(Exception):  # a broken connection may not even close
                body.close()
