"""Talking to an S3 bucket: a boto3 client whose every call is bounded in time and
retried by botocore's "standard" mode, s3transfer's settings for large objects, and
the bucket's failures in one operator line each, never carrying a credential.

boto3 is imported only when a client is made: the console never loads it.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from engines.errors import JarvisError
from engines.plumbing.redaction import redact

CONNECT_TIMEOUT_S = 10
READ_TIMEOUT_S = 60
ATTEMPTS = 4  # botocore's standard mode: the first try and three retries with backoff
PROBE_TIMEOUT_S = 5
PROBE_ATTEMPTS = 2
POOL_CONNECTIONS = 16
NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
MISSING_BUCKET_CODES = frozenset({"NoSuchBucket"})
DENIED_CODES = frozenset({"403", "AccessDenied", "Forbidden", "AllAccessDisabled"})
CREDENTIAL_CODES = frozenset({"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"})
CONDITION_FAILED_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412"})


@dataclass(frozen=True)
class Limits:
    """How long a call may take: seconds to connect, seconds of silence while waiting for
    or reading an answer, and tries in all (botocore's standard mode backs off between)."""

    connect_s: float = CONNECT_TIMEOUT_S
    read_s: float = READ_TIMEOUT_S
    attempts: int = ATTEMPTS

    def for_probe(self) -> "Limits":
        return Limits(
            min(self.connect_s, PROBE_TIMEOUT_S),
            min(self.read_s, PROBE_TIMEOUT_S),
            min(self.attempts, PROBE_ATTEMPTS),
        )


DEFAULT_LIMITS = Limits()


class S3Error(JarvisError, OSError):
    """A call to the bucket failed. An OSError too: like a disk's, the failure is of I/O,
    and callers that tell the operator about an unwritable destination catch both."""

    def __str__(self) -> str:
        # The message alone, even when a caller sets `filename` as it does for an OSError.
        return str(self.args[0]) if self.args else ""


def make_client(
    *,
    region: str | None,
    endpoint_url: str | None,
    access_key: str | None,
    secret_key: str | None,
    limits: Limits = DEFAULT_LIMITS,
) -> Any:
    """A client for the bucket's calls, each bounded by `limits`. With no keys, boto3's
    own credential chain (instance role, profile) applies."""
    import boto3.session
    import botocore.session
    from botocore.config import Config

    core = botocore.session.Session()
    # A listing of 10,000 objects spent more time in dateutil than on the wire.
    parsers = core.get_component("response_parser_factory")
    parsers.set_parser_defaults(timestamp_parser=parse_timestamp)
    session = boto3.session.Session(
        botocore_session=core,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=region,
    )
    config = Config(
        connect_timeout=limits.connect_s,
        read_timeout=limits.read_s,
        retries={"mode": "standard", "max_attempts": limits.attempts},
        max_pool_connections=POOL_CONNECTIONS,
        # S3-compatible servers (MinIO, moto) answer path-style requests.
        s3={"addressing_style": "path"} if endpoint_url else None,
    )
    return session.client("s3", endpoint_url=endpoint_url, config=config)


def parse_timestamp(text: str) -> datetime:
    """S3's timestamps: ISO 8601 in listings ("2026-12-05T22:14:35.000Z") at once, anything
    else (HEAD's "Sat, 05 Dec 2026 22:14:35 GMT") by botocore's own parser."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        from botocore.utils import parse_timestamp as parse_any

        return parse_any(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def transfer_config(part_size: int) -> Any:
    """s3transfer's settings: parts of `part_size` from that size up."""
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(multipart_threshold=part_size, multipart_chunksize=part_size)


def part_size_for(part_size: int, size: int) -> int:
    """The part size s3transfer really uses for an object of `size` bytes (it grows the
    parts of a very large object to stay within S3's 10,000 parts)."""
    from s3transfer.utils import ChunksizeAdjuster

    return ChunksizeAdjuster().adjust_chunksize(part_size, size)


def error_code(error: BaseException) -> str:
    """S3's error code of a botocore ClientError ("NoSuchKey", "503"), else ""."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def explain(
    error: BaseException, bucket: str, region: str | None, read_timeout_s: float = READ_TIMEOUT_S
) -> str:
    """The error in a line with what to do; botocore's text can echo a request's parts,
    so it goes through `redact` like everything else that leaves the process."""
    from botocore.exceptions import (
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        ReadTimeoutError,
    )

    code = error_code(error)
    text = redact(str(error))
    if code in MISSING_BUCKET_CODES or (code == "404" and "HeadBucket" in text):
        return f"no such bucket ({code}); create it, or correct S3_BUCKET and AWS_REGION ({region})"
    if code in DENIED_CODES | CREDENTIAL_CODES:
        return (
            f"{text}; check S3_ACCESS_KEY and S3_SECRET_KEY (or the host's role) and the "
            "bucket's policy"
        )
    if isinstance(error, NoCredentialsError):
        return (
            "no AWS credentials found; set S3_ACCESS_KEY and S3_SECRET_KEY, or give the "
            "host a role or profile"
        )
    if isinstance(error, EndpointConnectionError | ConnectTimeoutError):
        return f"{text}; check S3_ENDPOINT_URL and the network"
    if isinstance(error, ReadTimeoutError):
        return f"{text}; the server did not answer in {read_timeout_s:g}s, try again later"
    if isinstance(error, JarvisError):
        return text
    return f"{text}; try again later" if code else f"{type(error).__name__}: {text}; try again"


def failure(
    bucket: str,
    region: str | None,
    doing: str,
    error: BaseException,
    read_timeout_s: float = READ_TIMEOUT_S,
) -> S3Error:
    reason = explain(error, bucket, region, read_timeout_s)
    return S3Error(f"S3 bucket {bucket}: {doing} failed: {reason}")
