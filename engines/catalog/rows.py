"""The catalog's rows as small frozen dataclasses, and the words each column allows."""

import json
import socket
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engines.catalog.times import parse_iso, parse_optional
from engines.plumbing.processes import job_process_gone

SET_KINDS_PATTERN = r"[a-z0-9][a-z0-9_-]*"
SET_TIERS = ("daily", "weekly", "monthly", "manual")
SET_STATUSES = ("running", "complete", "partial", "failed")
SET_FINAL_STATUSES = ("complete", "partial", "failed")
ARTIFACT_STATUSES = ("writing", "complete", "failed")
COPY_STATES = ("pending", "stored", "failed", "deleted")
JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
JOB_FINAL_STATUSES = ("succeeded", "failed", "cancelled")
EVENT_LEVELS = ("debug", "info", "warning", "error")
ALERT_SEVERITIES = ("info", "warning", "critical")

# Artifact.added_bytes in SQL, over the artifacts table aliased `a`: the sums of set
# listings, the overview and GET /metrics all read it from here.
ADDED_BYTES_SQL = (
    "COALESCE(a.stored_size, 0) + CASE WHEN a.source = 'files'"
    " THEN COALESCE(json_extract(a.metadata_json, '$.snapshot.stored_bytes'), 0) ELSE 0 END"
)


def require_one_of(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


@dataclass(frozen=True)
class BackupSet:
    id: str
    kind: str
    tier: str | None
    status: str
    created_at: datetime
    finished_at: datetime | None
    error: str | None
    job_id: int | None
    verified_state: str | None
    note: str | None
    artifact_count: int = 0
    stored_size: int = 0
    # Not stored: the sources the running backup means to back up, sealed into each of
    # its artifacts so that a rebuilt catalog can tell a partial set from a complete one.
    parts: tuple[str, ...] = ()
    # When its deletion began, if it has and is not finished (the next cleanup finishes it).
    deleting_since: datetime | None = None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "BackupSet":
        return cls(
            id=row["id"],
            kind=row["kind"],
            tier=row["tier"],
            status=row["status"],
            created_at=parse_iso(row["created_at"]),
            finished_at=parse_optional(row["finished_at"]),
            error=row["error"],
            job_id=row["job_id"],
            verified_state=row["verified_state"],
            note=row["note"],
            artifact_count=row["artifact_count"],
            stored_size=row["stored_size"],
            deleting_since=parse_optional(row["deleting_since"]),
        )


BASE_MODE = "base"  # a PostgreSQL base backup (pg_basebackup), restored unlike a dump


def counted_as(source: str, mode: str) -> str:
    """The kind a backup counts as for "newest" and retention: a base backup is its own."""
    return f"{source} base backup" if mode == BASE_MODE else source


@dataclass(frozen=True)
class Artifact:
    id: int
    set_id: str
    source: str
    mode: str
    relpath: str
    status: str
    checksum: str | None
    stored_size: int | None
    plain_size: int | None
    key_id: str | None
    codec: str | None
    metadata: dict[str, Any]
    created_at: datetime
    error: str | None
    verify_state: str | None
    verified_at: datetime | None
    verify_detail: str | None

    @property
    def added_bytes(self) -> int:
        """What this artifact added to the repository: its file and, for a files
        snapshot (whose artifact is the manifest), the packs it wrote."""
        packs = (
            self.metadata.get("snapshot", {}).get("stored_bytes", 0)
            if self.source == "files"
            else 0
        )
        return (self.stored_size or 0) + int(packs or 0)

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "Artifact":
        return cls(
            id=row["id"],
            set_id=row["set_id"],
            source=row["source"],
            mode=row["mode"],
            relpath=row["relpath"],
            status=row["status"],
            checksum=row["checksum"],
            stored_size=row["stored_size"],
            plain_size=row["plain_size"],
            key_id=row["key_id"],
            codec=row["codec"],
            metadata=json.loads(row["metadata_json"]),
            created_at=parse_iso(row["created_at"]),
            error=row["error"],
            verify_state=row["verify_state"],
            verified_at=parse_optional(row["verified_at"]),
            verify_detail=row["verify_detail"],
        )

    @property
    def counted_as(self) -> str:
        return counted_as(self.source, self.mode)


@dataclass(frozen=True)
class Copy:
    artifact_id: int
    destination: str
    state: str
    updated_at: datetime
    error: str | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "Copy":
        return cls(
            artifact_id=row["artifact_id"],
            destination=row["destination"],
            state=row["state"],
            updated_at=parse_iso(row["updated_at"]),
            error=row["error"],
        )


@dataclass(frozen=True)
class PlacedArtifact:
    """A complete artifact of a set with the copies the catalog records of it."""

    artifact_id: int
    set_id: str
    relpath: str
    copies: tuple[Copy, ...]


@dataclass(frozen=True)
class SetCopyCount:
    """A finished set's complete artifacts and how many of them one destination holds."""

    set_id: str
    artifacts: int
    stored: int
    failed: int


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    description: str
    status: str
    pid: int | None
    host: str | None
    started_at: datetime | None
    finished_at: datetime | None
    progress_done: int
    progress_total: int | None
    progress_unit: str
    error: str | None
    cancel_requested: bool
    set_id: str | None

    @property
    def finished(self) -> bool:
        return self.status in JOB_FINAL_STATUSES

    def gone_here(self) -> bool:
        """Its process ran on this host and runs no more (a row `mark_orphaned_jobs` has
        not reached yet)."""
        return (
            self.host == socket.gethostname()
            and bool(self.pid)
            and job_process_gone(self.pid, self.started_at)
        )

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "Job":
        return cls(
            id=row["id"],
            kind=row["kind"],
            description=row["description"],
            status=row["status"],
            pid=row["pid"],
            host=row["host"],
            started_at=parse_optional(row["started_at"]),
            finished_at=parse_optional(row["finished_at"]),
            progress_done=row["progress_done"],
            progress_total=row["progress_total"],
            progress_unit=row["progress_unit"],
            error=row["error"],
            cancel_requested=bool(row["cancel_requested"]),
            set_id=row["set_id"],
        )


@dataclass(frozen=True)
class JobEvent:
    id: int
    job_id: int
    at: datetime
    level: str
    message: str

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "JobEvent":
        return cls(
            id=row["id"],
            job_id=row["job_id"],
            at=parse_iso(row["at"]),
            level=row["level"],
            message=row["message"],
        )


@dataclass(frozen=True)
class Alert:
    id: int
    at: datetime
    severity: str
    kind: str
    message: str
    delivery: dict[str, Any]

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "Alert":
        return cls(
            id=row["id"],
            at=parse_iso(row["at"]),
            severity=row["severity"],
            kind=row["kind"],
            message=row["message"],
            delivery=json.loads(row["delivery_json"]),
        )
