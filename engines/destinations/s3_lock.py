"""One deleter per S3 prefix: a lock object written with a conditional put, as a lease.

Several hosts may share a bucket, each under its own S3_PREFIX. On one host the
repository's flock keeps deleters apart, but two processes that write the same
prefix from two hosts meet only in the bucket. Before deleting there (cleanup,
delete, prune) a process writes `<prefix>.s3-lock.json` with `If-None-Match: *`:
S3 lets one writer win and answers 412 to the others, who are told who holds it.

The object is a lease (host, pid, purpose, started, expires, its length), renewed
by a thread with `If-Match` on its ETag while held. A holder that died stops
renewing; once its lease has run out (at once, for a holder on this host whose
process is gone), the next process deletes the object `If-Match` the ETag it read
(a renewal meanwhile wins) and puts its own, saying whose lease it took over. A
lease runs out by the server's clock (its Date against the object's
Last-Modified), so two hosts' clocks are never compared.
"""

import contextlib
import json
import logging
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from engines.destinations.s3 import S3Destination
from engines.destinations.s3_client import (
    CONDITION_FAILED_CODES,
    NOT_FOUND_CODES,
    S3Error,
    error_code,
    failure,
)
from engines.errors import JarvisError, RepositoryLockedError
from engines.plumbing.processes import process_alive

logger = logging.getLogger("jarvis.s3_lock")

LOCK_KEY = ".s3-lock.json"  # a dot-file: never listed, copied or pruned as the repository's
LEASE_SECONDS = 120.0
RENEWALS_PER_LEASE = 4
TAKE_ATTEMPTS = 3  # each lost race re-reads the holder; a third loss means it is busy
RECORD_LIMIT = 64 * 1024
# A conditional write whose target vanished meanwhile answers 404 on some servers.
LOST_CODES = CONDITION_FAILED_CODES | NOT_FOUND_CODES


class S3PrefixLockedError(RepositoryLockedError):
    """Another process holds the prefix's lock; `holder` is its lease record, if readable."""


class LockLostError(JarvisError):
    """The lease ran out or was taken over while held: stop deleting at once."""


@dataclass(frozen=True)
class _Seen:
    """The lock object as read: its record, ETag, and seconds since it was last written."""

    record: dict[str, Any] | None
    etag: str
    age: float
    lease: float

    @property
    def expired(self) -> bool:
        return self.age > self.lease


class S3PrefixLock:
    """`with S3PrefixLock(destination, "prune"):` fails fast (S3PrefixLockedError) while
    another process holds the prefix's lock. Call `ensure_held()` between deletions."""

    def __init__(
        self, destination: S3Destination, purpose: str, *, lease_seconds: float = LEASE_SECONDS
    ) -> None:
        self.destination = destination
        self.purpose = purpose
        self.lease_seconds = float(lease_seconds)
        self.key = destination.full_key(LOCK_KEY)
        self.took_over_from: str | None = None
        self._etag: str | None = None
        self._started = ""
        self._token = secrets.token_hex(8)
        self._valid_until = 0.0  # time.monotonic() by which the lease must have been renewed
        self._lost: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._guard = threading.Lock()

    @property
    def where(self) -> str:
        return f"s3://{self.destination.bucket}/{self.key}"

    @property
    def held(self) -> bool:
        return self._etag is not None

    def __enter__(self) -> "S3PrefixLock":
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def acquire(self) -> None:
        if self.held:
            raise RuntimeError(f"{self.where} is already held by this S3PrefixLock")
        self._started = _iso(datetime.now(UTC))
        for _ in range(TAKE_ATTEMPTS):
            if self._put_new():
                break
            seen = self._read()
            if seen is None:
                continue  # released meanwhile
            gone = _gone_from_this_host(seen.record)
            if not seen.expired and not gone:
                raise self._busy(seen)
            if not self._delete_if(seen.etag):
                continue  # renewed or taken over by another meanwhile
            if self._put_new():
                self.took_over_from = _holder_text(seen.record) + (
                    ", whose process on this host is gone"
                    if gone
                    else f", whose lease ran out {seen.age - seen.lease:.0f} s before"
                )
                logger.warning("%s: took over the lock of %s", self.where, self.took_over_from)
                break
        else:
            seen = self._read()
            raise self._busy(seen)
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._renew_while_held, name=f"s3-lock {self.key}", daemon=True
        )
        self._thread.start()

    def ensure_held(self) -> None:
        """Raise LockLostError if the lease was taken over or could not be renewed in time."""
        if self._lost is not None:
            raise LockLostError(
                f"the lock {self.where} was lost: {self._lost}; stopped before deleting more "
                "there, run it again"
            )
        if time.monotonic() > self._valid_until:
            raise LockLostError(
                f"the lease on {self.where} could not be renewed within {self.lease_seconds:.0f} s "
                "(the bucket did not answer); stopped before deleting more there, run it again"
            )

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._guard:
            etag, self._etag = self._etag, None
        if etag is None or self._lost is not None:
            return
        try:
            self._client().delete_object(Bucket=self.destination.bucket, Key=self.key, IfMatch=etag)
        except Exception as error:
            # Taken over (412), or the bucket unreachable: then the lease runs out by itself.
            logger.warning("%s: not released: %s", self.where, self._failure("release", error))

    # --- the lease ------------------------------------------------------------------

    def _renew_while_held(self) -> None:
        interval = self.lease_seconds / RENEWALS_PER_LEASE
        while not self._stop.wait(interval):
            try:
                self._renew()
            except LockLostError:
                return
            except Exception as error:  # transient: the next turn tries again
                logger.warning("%s: lease not renewed: %s", self.where, error)

    def _renew(self) -> None:
        began = time.monotonic()
        with self._guard:
            etag = self._etag
            if etag is None:
                return
            try:
                response = self._client().put_object(
                    Bucket=self.destination.bucket,
                    Key=self.key,
                    Body=self._record_bytes(),
                    IfMatch=etag,
                    ContentType="application/json",
                )
            except Exception as error:
                if error_code(error) not in LOST_CODES:
                    raise self._failure("renewing the lease", error) from None
                self._lost = "taken over by " + self._current_holder_text()
                logger.error("%s: %s", self.where, self._lost)
                raise LockLostError(self._lost) from None
            self._etag = response["ETag"]
            self._valid_until = began + self.lease_seconds

    def _put_new(self) -> bool:
        """Write our record if no lock object exists; False if one does."""
        began = time.monotonic()
        try:
            response = self._client().put_object(
                Bucket=self.destination.bucket,
                Key=self.key,
                Body=self._record_bytes(),
                IfNoneMatch="*",
                ContentType="application/json",
            )
        except Exception as error:
            if error_code(error) in CONDITION_FAILED_CODES:
                return False
            raise self._failure("taking the lock", error) from None
        with self._guard:
            self._etag = response["ETag"]
            self._lost = None
            self._valid_until = began + self.lease_seconds
        return True

    def _delete_if(self, etag: str) -> bool:
        """Delete the lock object only if it is still the one read (ETag `etag`)."""
        try:
            self._client().delete_object(Bucket=self.destination.bucket, Key=self.key, IfMatch=etag)
        except Exception as error:
            if error_code(error) in LOST_CODES:
                return False
            raise self._failure("taking over an expired lock", error) from None
        return True

    def _read(self) -> _Seen | None:
        try:
            response = self._client().get_object(Bucket=self.destination.bucket, Key=self.key)
            body = response["Body"].read(RECORD_LIMIT)
        except Exception as error:
            if error_code(error) in NOT_FOUND_CODES:
                return None
            raise self._failure("reading who holds the lock", error) from None
        record = _parse(body)
        headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        now = _server_time(headers.get("date"))
        age = (now - response["LastModified"]).total_seconds()
        return _Seen(record, response["ETag"], age, _lease_of(record))

    def _current_holder_text(self) -> str:
        try:
            seen = self._read()
        except S3Error:
            return "another process (the bucket did not say which)"
        return _holder_text(seen.record if seen else None)

    def _record_bytes(self) -> bytes:
        now = datetime.now(UTC)
        record = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "purpose": self.purpose,
            "started_at": self._started,
            "renewed_at": _iso(now),
            "expires_at": _iso(now + timedelta(seconds=self.lease_seconds)),
            "lease_seconds": self.lease_seconds,
            "process_space": _process_space(),
            "token": self._token,
        }
        return json.dumps(record).encode()

    def _busy(self, seen: _Seen | None) -> S3PrefixLockedError:
        record = seen.record if seen else None
        left = f"; its lease runs out in {seen.lease - seen.age:.0f} s" if seen else ""
        prefix = f"s3://{self.destination.bucket}/{self.destination.prefix}"
        return S3PrefixLockedError(
            f"S3 prefix {prefix} is locked by {_holder_text(record)}{left}: only one process "
            "deletes there at a time. Wait for it to finish; if that process is gone, the "
            f"next run after its lease has run out takes over (lock: {self.where})",
            record,
        )

    def _client(self) -> Any:
        return self.destination.client()

    def _failure(self, doing: str, error: BaseException) -> S3Error:
        return failure(
            self.destination.bucket, self.destination.region, f"{doing} ({self.key})", error
        )


def _parse(body: bytes) -> dict[str, Any] | None:
    try:
        record = json.loads(body)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _lease_of(record: dict[str, Any] | None) -> float:
    value = (record or {}).get("lease_seconds")
    if isinstance(value, int | float) and value > 0:
        return float(value)
    return LEASE_SECONDS


def _gone_from_this_host(record: dict[str, Any] | None) -> bool:
    """A holder on this host whose process has ended (killed, or its release failed
    because the bucket was unreachable): no need to wait for its lease. Its pid means
    something here only within the same boot and pid namespace (two containers may
    share a host name), so those must match too."""
    if record is None or record.get("host") != socket.gethostname():
        return False
    space = _process_space()
    if space is None or record.get("process_space") != space:
        return False
    pid = record.get("pid")
    return isinstance(pid, int) and pid != os.getpid() and not process_alive(pid)


def _process_space() -> str | None:
    """This boot's id and this pid namespace's inode, where pids are comparable."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        return f"{boot}:{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        return None


def _server_time(date_header: str | None) -> datetime:
    if date_header:
        with contextlib.suppress(TypeError, ValueError):
            return parsedate_to_datetime(date_header).astimezone(UTC)
    return datetime.now(UTC)  # a server that sends no Date: our clock is all there is


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _holder_text(record: dict[str, Any] | None) -> str:
    if record is None:
        return "an unknown holder (its lock record is unreadable)"
    purpose = record.get("purpose", "unknown purpose")
    return (
        f"pid {record.get('pid')} on host {record.get('host')} ({purpose}, started "
        f"{record.get('started_at')})"
    )
