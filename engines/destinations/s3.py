"""An S3 bucket (or any S3-compatible store) as a destination, through boto3.

Keys live under S3_PREFIX in the local repository's layout, so `aws s3 sync
BACKUP_DIR s3://bucket/prefix/` and this module agree. Retries are botocore's
("standard" mode), multipart is s3transfer's; every call has bounded timeouts.
A file on this host (`put`) is uploaded as it is; a stream (`open_write`) is spooled to
a private file first. Each request carries our SHA-256 of its body, and an upload only
counts once a HEAD shows the server holds our size and our checksum
(engines/destinations/s3_checksums.py). Reads are ranged GETs, resumed where a body
broke (engines/destinations/s3_reads.py); the client, its limits and its errors are in
engines/destinations/s3_client.py.

boto3 is imported only when a call needs it: the console never loads it.
"""

import contextlib
import io
import os
import secrets
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from engines.destinations.base import StoredObject, validate_key, validate_prefix
from engines.destinations.s3_checksums import SentDigests, confirmation_problem, sha256_as_sent
from engines.destinations.s3_client import (
    CONDITION_FAILED_CODES,
    DEFAULT_LIMITS,
    DENIED_CODES,
    MISSING_BUCKET_CODES,
    NOT_FOUND_CODES,
    Limits,
    S3Error,
    error_code,
    explain,
    failure,
    make_client,
    part_size_for,
    transfer_config,
)
from engines.destinations.s3_reads import RangedObject
from engines.errors import JarvisError, JobCancelledError, NotFoundError
from engines.plumbing.fsutil import (
    FILE_MODE,
    TEMP_MARKER,
    atomic_output,
    ensure_private_dir,
    remove_abandoned_temporaries,
    temporary_path_for,
)
from engines.plumbing.paths import default_cache_dir
from engines.repository.repository_id import ID_FILE, new_repository_id_text, parse_repository_id

if TYPE_CHECKING:
    from engines.config import Settings

MULTIPART_SIZE = 16 * 1024 * 1024
READ_BUFFER = 4 * 1024 * 1024  # a small read still fetches this much in one ranged GET
Progress = Callable[[int], None]  # called with each count of bytes sent (negative on a resend)
ARCHIVE_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE"})


class ArchivedObjectError(JarvisError):
    """The object sits in an archive storage class and must be restored before reading."""


class S3Destination:
    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        region: str | None = None,
        endpoint_url: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        storage_class: str | None = None,
        sse: str | None = None,
        sse_kms_key_id: str | None = None,
        spool_dir: Path | None = None,
        multipart_size: int = MULTIPART_SIZE,
        limits: Limits = DEFAULT_LIMITS,
        name: str = "s3",
    ) -> None:
        self.bucket = bucket
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self.region = region
        self.endpoint_url = endpoint_url
        self.name = name
        self.spool_dir = Path(spool_dir) if spool_dir else default_cache_dir() / "s3-upload"
        self.multipart_size = multipart_size
        self.limits = limits
        self._credentials = (access_key, secret_key)
        self._upload_args: dict[str, str] = {"ChecksumAlgorithm": "SHA256"}
        if storage_class:
            self._upload_args["StorageClass"] = storage_class
        if sse:
            self._upload_args["ServerSideEncryption"] = sse
        if sse_kms_key_id:
            self._upload_args["SSEKMSKeyId"] = sse_kms_key_id
        self._clients: dict[bool, Any] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"S3Destination(bucket={self.bucket!r}, prefix={self.prefix!r})"

    @classmethod
    def from_settings(cls, settings: "Settings") -> "S3Destination | None":
        if not settings.s3_enabled or not settings.s3_bucket:
            return None
        return cls.of_prefix(settings, settings.s3_prefix or "")

    @classmethod
    def of_prefix(cls, settings: "Settings", prefix: str) -> "S3Destination":
        """The settings' bucket under `prefix`: this host's S3_PREFIX, or another host's
        that is browsed (S3_BUCKET set, whether or not this host copies there)."""
        keys = (settings.s3_access_key, settings.s3_secret_key)
        access_key, secret_key = (key.reveal() if key else None for key in keys)
        return cls(
            settings.s3_bucket,
            prefix=prefix,
            region=settings.aws_region,
            endpoint_url=settings.s3_endpoint_url,
            access_key=access_key,
            secret_key=secret_key,
            storage_class=settings.s3_storage_class,
            sse=settings.s3_sse,
            sse_kms_key_id=settings.s3_sse_kms_key_id,
        )

    # --- the face ----------------------------------------------------------------------

    @contextlib.contextmanager
    def open_write(self, key: str) -> Iterator[BinaryIO]:
        validate_key(key)
        ensure_private_dir(self.spool_dir)
        remove_abandoned_temporaries(self.spool_dir)  # spools of a killed process
        spool_path = temporary_path_for(self.spool_dir / "upload")
        fd = os.open(spool_path, os.O_RDWR | os.O_CREAT | os.O_EXCL, FILE_MODE)
        try:
            with os.fdopen(fd, "w+b") as spool:
                yield spool
                spool.flush()
                self._upload(spool_path, key)
        finally:
            spool_path.unlink(missing_ok=True)

    def put(self, local_path: Path, key: str, progress: Progress | None = None) -> None:
        validate_key(key)
        self._upload(Path(local_path), key, progress)

    def open_read(self, key: str, offset: int = 0, length: int | None = None) -> BinaryIO:
        head = self._head_for_reading(validate_key(key))
        size = head["ContentLength"]
        if length is None:
            low, high, position = 0, size, offset
        else:
            low = min(offset, size)
            low, high, position = low, min(size, offset + length), low
        raw = RangedObject(self, key, head.get("ETag"), low, high, position, length is None)
        return io.BufferedReader(raw, READ_BUFFER)  # type: ignore[return-value]

    def get(self, key: str, local_path: Path) -> None:
        head = self._head_for_reading(validate_key(key))
        local_path = Path(local_path)
        local_path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(local_path) as output:
            try:
                self.client().download_fileobj(
                    self.bucket, self.full_key(key), output, Config=self._transfer_config()
                )
            except Exception as error:
                raise self._failure(f"downloading {key}", error) from None
            output.flush()
            received = os.fstat(output.fileno()).st_size  # parts land out of order
            if received != head["ContentLength"]:
                raise S3Error(
                    f"{key}: the download from bucket {self.bucket} stopped at {received} "
                    f"of {head['ContentLength']} bytes; try again"
                )

    def list(self, prefix: str = "") -> Iterator[StoredObject]:
        return self._list(validate_prefix(prefix))  # a bad prefix fails at once

    def stat(self, key: str) -> StoredObject | None:
        head = self._head(validate_key(key))
        return None if head is None else _stored(key, head["ContentLength"], head["LastModified"])

    def delete(self, key: str) -> None:
        validate_key(key)
        try:
            self.client().delete_object(Bucket=self.bucket, Key=self.full_key(key))
        except Exception as error:  # an absent key is no error on S3: it answers 204
            raise self._failure(f"deleting {key}", error) from None

    def local_path(self, key: str) -> None:
        validate_key(key)
        return None

    def probe(self) -> Sequence[str]:
        client = self.client(quick=True)
        try:
            client.head_bucket(Bucket=self.bucket)
        except Exception as error:
            return [self._probe_line("cannot be reached", error)]
        probe_key = f"{self.prefix}.probe-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            client.put_object(Bucket=self.bucket, Key=probe_key, Body=b"jarvis probe\n")
        except Exception as error:
            return [self._probe_line("refused a test write", error)]
        try:
            client.delete_object(Bucket=self.bucket, Key=probe_key)
        except Exception as error:
            return [self._probe_line(f"refused to delete the test object {probe_key}", error)]
        return []

    def repository_id(self) -> str | None:
        where = f"s3://{self.bucket}/{self.prefix}{ID_FILE}"
        try:
            response = self.client().get_object(Bucket=self.bucket, Key=self.prefix + ID_FILE)
            text = response["Body"].read()
        except Exception as error:
            if error_code(error) in NOT_FOUND_CODES | MISSING_BUCKET_CODES:
                return None
            raise self._failure("reading the repository id", error) from None
        return parse_repository_id(text.decode("ascii", "replace"), where)

    def ensure_repository_id(self, adopted: str | None = None) -> str:
        existing = self.repository_id()
        if existing is not None:
            return existing
        try:
            # If-None-Match: whoever writes first made the id everyone keeps.
            self.client().put_object(
                Bucket=self.bucket,
                Key=self.prefix + ID_FILE,
                Body=new_repository_id_text(adopted),
                IfNoneMatch="*",
            )
        except Exception as error:
            if error_code(error) not in CONDITION_FAILED_CODES:
                raise self._failure("storing the repository id", error) from None
        return self.repository_id() or ""

    # --- uploads -----------------------------------------------------------------------

    def _upload(self, source: Path, key: str, progress: Progress | None = None) -> None:
        full = self.full_key(key)
        size = source.stat().st_size
        client = self.client()
        try:
            with SentDigests(client, self.bucket, full) as sent:
                client.upload_file(
                    str(source),
                    self.bucket,
                    full,
                    ExtraArgs=self._upload_args,
                    Config=self._transfer_config(),
                    Callback=progress,
                )
            head = client.head_object(Bucket=self.bucket, Key=full, ChecksumMode="ENABLED")
        except JobCancelledError:
            raise
        except Exception as error:
            # s3transfer aborts a multipart upload that failed, so no object appears.
            raise self._failure(f"uploading {key}", error) from None
        multipart = size >= self.multipart_size  # s3transfer's threshold
        ours = sent.as_sent(multipart) or sha256_as_sent(
            source, size, self.multipart_size, self._part_size(size)
        )
        problem = confirmation_problem(size, head, ours)
        if problem:
            with contextlib.suppress(Exception):
                client.delete_object(Bucket=self.bucket, Key=full)
            raise S3Error(
                f"{key}: the upload to bucket {self.bucket} was not confirmed ({problem}) and "
                "was removed; the copy counts as failed, try again"
            )

    def _part_size(self, size: int) -> int:
        return part_size_for(self.multipart_size, size)

    def _transfer_config(self) -> Any:
        return transfer_config(self.multipart_size)

    # --- reads -------------------------------------------------------------------------

    def _head(self, key: str) -> dict | None:
        try:
            return self.client().head_object(Bucket=self.bucket, Key=self.full_key(key))
        except Exception as error:
            if error_code(error) in NOT_FOUND_CODES:
                return None
            raise self._failure(f"looking up {key}", error) from None

    def _head_for_reading(self, key: str) -> dict:
        head = self._head(key)
        if head is None:
            raise NotFoundError(f"{key}: no such object in bucket {self.bucket}")
        restored = 'ongoing-request="false"' in (head.get("Restore") or "")
        if head.get("StorageClass") in ARCHIVE_CLASSES and not restored:
            raise self._archived(key, head["StorageClass"])
        return head

    def _archived(self, key: str, storage_class: str) -> ArchivedObjectError:
        request = '{"Days":7,"GlacierJobParameters":{"Tier":"Standard"}}'
        return ArchivedObjectError(
            f"{key}: stored in S3 storage class {storage_class} in bucket {self.bucket}, which "
            "cannot be read until it is restored; run `aws s3api restore-object --bucket "
            f"{self.bucket} --key {self.full_key(key)} --restore-request '{request}'`, wait "
            "until it is done (hours; DEEP_ARCHIVE takes up to 48) and try again"
        )

    def read_failure(self, key: str, error: BaseException) -> JarvisError:
        """What a failed GET of `key` says: an archived object explained, else the failure."""
        if error_code(error) == "InvalidObjectState":
            return self._archived(key, "GLACIER or DEEP_ARCHIVE")
        return self._failure(f"reading {key}", error)

    def _list(self, prefix: str) -> Iterator[StoredObject]:
        pages = self.client().get_paginator("list_objects_v2")
        try:
            for page in pages.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
                for item in page.get("Contents", ()):
                    key = item["Key"][len(self.prefix) :]
                    if _visible(key):
                        yield _stored(key, item["Size"], item["LastModified"])
        except Exception as error:
            if error_code(error) in MISSING_BUCKET_CODES:
                return  # like a folder that is not there: nothing stored
            raise self._failure(f"listing {prefix or 'the prefix'}", error) from None

    # --- plumbing ----------------------------------------------------------------------

    def full_key(self, key: str) -> str:
        """The object's key in the bucket: `key` under S3_PREFIX."""
        return self.prefix + key

    def client(self, *, quick: bool = False) -> Any:
        """The boto3 client of this destination's bucket (made once; `quick` for probes)."""
        with self._lock:
            if quick not in self._clients:
                access_key, secret_key = self._credentials
                self._clients[quick] = make_client(
                    region=self.region,
                    endpoint_url=self.endpoint_url,
                    access_key=access_key,
                    secret_key=secret_key,
                    limits=self.limits.for_probe() if quick else self.limits,
                )
            return self._clients[quick]

    def _failure(self, doing: str, error: BaseException) -> S3Error:
        return failure(self.bucket, self.region, doing, error, self.limits.read_s)

    def _probe_line(self, what: str, error: BaseException) -> str:
        code = error_code(error)
        if what == "refused a test write" and code in DENIED_CODES:
            return (
                f"S3 bucket {self.bucket} is read-only for these credentials ({code}); grant "
                f"s3:PutObject and s3:DeleteObject on {self.prefix or 'the bucket'}"
            )
        return f"S3 bucket {self.bucket} {what}: {self._explain(error)}"

    def _explain(self, error: BaseException) -> str:
        return explain(error, self.bucket, self.region, self.limits.read_s)


def _visible(key: str) -> bool:
    """Names the face reserves (dot-files, temporaries) are the repository's own."""
    parts = key.split("/")
    return bool(key) and all(p and not p.startswith(".") and TEMP_MARKER not in p for p in parts)


def _stored(key: str, size: int, modified: datetime) -> StoredObject:
    # Listings carry milliseconds and HEAD whole seconds: keep what both agree on.
    return StoredObject(key, size, modified.astimezone(UTC).replace(microsecond=0))
