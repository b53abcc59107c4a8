"""What `GET /api/backups` and `GET /api/backups/{id}` answer: the OpenAPI document's
models (built from catalog rows in backup_views.py).

A list item is compact (counts, states, one summary of where the set lives); the
detail adds each artifact with its copies and verification.
"""

from typing import Any, Literal

from pydantic import BaseModel, Field

from jarvis_tui.api.iso_time import IsoTime

PartState = Literal["ok", "warning", "failed", "skipped", "running"]
CopyWord = Literal["stored", "missing", "failed"]


class Part(BaseModel):
    source: str
    state: PartState = Field(
        description="ok; warning (stored, but left something out); failed; skipped (the "
        "source is not configured); running"
    )


class VerificationSummary(BaseModel):
    state: Literal["ok", "failed"] | None = Field(
        description="failed if an artifact failed its check; ok once every complete "
        "artifact passed one; null otherwise"
    )
    verified: int = Field(description="complete artifacts whose last check passed")
    failed: int = Field(description="complete artifacts whose last check failed")
    unverified: int = Field(description="complete artifacts never checked")
    last_verified_at: IsoTime | None


class DestinationCount(BaseModel):
    complete: bool = Field(description="every complete artifact is stored there")
    stored: int
    missing: int
    failed: int


class Whereabouts(BaseModel):
    summary: str = Field(
        description="as `jarvis-tui list`'s WHERE: `local`, `local+s3`, "
        "`local, s3 missing 2`, `s3 only`; `-` without a complete artifact"
    )
    artifacts: int = Field(description="complete artifacts (those that are copied)")
    local: int = Field(description="of them, in the repository")
    complete_offsite: bool | None = Field(
        description="every complete artifact stored on every copy destination; null "
        "when no copy destination is configured"
    )
    destinations: dict[str, DestinationCount] = Field(
        description="per configured copy destination (`s3`)"
    )


class BackupSetSummary(BaseModel):
    id: str
    kind: str = Field(description="full, or the one source it backs up")
    tier: str | None
    status: Literal["running", "complete", "partial", "failed"]
    created_at: IsoTime
    finished_at: IsoTime | None
    size: int = Field(description="bytes stored in the repository (with a files snapshot's packs)")
    artifact_count: int
    error: str | None
    deleting_since: IsoTime | None = Field(description="its deletion began and is not finished")
    parts: list[Part]
    where: Whereabouts
    verification: VerificationSummary


class CopyState(BaseModel):
    state: CopyWord
    error: str | None = Field(description="why the copy failed (secrets masked)")
    updated_at: IsoTime | None


class ArtifactVerification(BaseModel):
    state: Literal["ok", "failed"] | None
    verified_at: IsoTime | None
    detail: str | None


class ArtifactDetail(BaseModel):
    id: int
    relpath: str = Field(description="its path in the repository and on every destination")
    source: str
    mode: str
    status: Literal["writing", "complete", "failed"]
    size: int | None = Field(description="stored (encrypted) bytes")
    plain_size: int | None
    sha256: str | None = Field(description="of the stored file")
    compression: str | None
    key_id: str | None = Field(description="the encryption key's id (never the key)")
    created_at: IsoTime
    error: str | None
    metadata: dict[str, Any]
    verification: ArtifactVerification
    copies: dict[str, CopyState] = Field(
        description="`local` (the repository) and each copy destination; empty for an "
        "artifact that is not complete (never copied)"
    )


class BackupSetDetail(BackupSetSummary):
    note: str | None = Field(description="what each part of a multi-source set did")
    job_id: int | None
    artifacts: list[ArtifactDetail]
    gaps: list[str] = Field(description="one line per copy that is not confirmed, with why")
