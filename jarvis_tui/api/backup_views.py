"""Catalog rows as the API's backup models (backup_models.py).

Where a set lives is engines/repository/whereabouts.py's reading, the same as
`jarvis-tui list`; a multi-source set's parts are read from its note, which says what
each part did (skipped ones have no artifact to tell).
"""

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from engines.catalog import Artifact, BackupSet
from engines.plumbing.redaction import redact
from engines.repository.whereabouts import LOCAL, ArtifactPlaces, SetPlaces
from engines.sources import source_kinds
from jarvis_tui.api.backup_models import (
    ArtifactDetail,
    ArtifactVerification,
    BackupSetDetail,
    BackupSetSummary,
    CopyState,
    DestinationCount,
    Part,
    PartState,
    VerificationSummary,
    Whereabouts,
)

# A multi-source set's note says what each part did: `postgres: ok (1 artifact); redis:
# skipped (...)` (engines/actions/backup_full.py PartResult.summary).
_PART_IN_NOTE = re.compile(
    r"(?:^|; )(?P<source>" + "|".join(map(re.escape, source_kinds())) + r"): "
    r"(?P<state>ok|warning|failed|skipped)\b"
)
_SINGLE_PART_STATE: dict[str, PartState] = {
    "complete": "ok",
    "partial": "warning",
    "failed": "failed",
    "running": "running",
}


class ArtifactStates(Protocol):
    """What a summary reads of an artifact: an `Artifact` or a lighter `ArtifactState`."""

    @property
    def source(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def verify_state(self) -> str | None: ...
    @property
    def verified_at(self) -> datetime | None: ...


def _optional(text: str | None) -> str | None:
    return None if text is None else redact(text)


def parts_of(backup_set: BackupSet, artifacts: Sequence[ArtifactStates]) -> list[Part]:
    if backup_set.kind in source_kinds():
        return [Part(source=backup_set.kind, state=_SINGLE_PART_STATE[backup_set.status])]
    noted = [Part(**m.groupdict()) for m in _PART_IN_NOTE.finditer(backup_set.note or "")]
    if noted:
        return noted
    # A full set still running (its note comes at the end): what its artifacts say so far.
    states: dict[str, PartState] = {}
    for artifact in artifacts:
        word = {"complete": "ok", "writing": "running"}.get(artifact.status, "failed")
        if states.get(artifact.source) in (None, "ok"):
            states[artifact.source] = word  # type: ignore[assignment]
    return [Part(source=source, state=state) for source, state in states.items()]


def verification_of(
    backup_set: BackupSet, artifacts: Sequence[ArtifactStates]
) -> VerificationSummary:
    complete = [a for a in artifacts if a.status == "complete"]
    times = [a.verified_at for a in complete if a.verified_at is not None]
    return VerificationSummary(
        state=backup_set.verified_state,  # type: ignore[arg-type]
        verified=sum(a.verify_state == "ok" for a in complete),
        failed=sum(a.verify_state == "failed" for a in complete),
        unverified=sum(a.verify_state is None for a in complete),
        last_verified_at=max(times, default=None),
    )


def whereabouts_of(places: SetPlaces) -> Whereabouts:
    # One pass over the artifacts (SetPlaces.on walks them once per question).
    counts = {name: {"stored": 0, "missing": 0, "failed": 0} for name in places.destinations}
    for artifact in places.artifacts:
        for name, count in counts.items():
            count[artifact.state_on(name)] += 1
    total = len(places.artifacts)
    return Whereabouts(
        summary=places.summary,
        artifacts=total,
        local=places.local_count,
        complete_offsite=all(c["stored"] == total for c in counts.values()) and total > 0
        if places.destinations
        else None,
        destinations={
            name: DestinationCount(complete=total > 0 and count["stored"] == total, **count)
            for name, count in counts.items()
        },
    )


def summary_of(
    backup_set: BackupSet, artifacts: Sequence[ArtifactStates], places: SetPlaces
) -> BackupSetSummary:
    return BackupSetSummary(**_summary_fields(backup_set, artifacts, places))


def _summary_fields(
    backup_set: BackupSet, artifacts: Sequence[ArtifactStates], places: SetPlaces
) -> dict[str, Any]:
    return {
        "id": backup_set.id,
        "kind": backup_set.kind,
        "tier": backup_set.tier,
        "status": backup_set.status,
        "created_at": backup_set.created_at,
        "finished_at": backup_set.finished_at,
        "size": backup_set.stored_size,
        "artifact_count": backup_set.artifact_count,
        "error": _optional(backup_set.error),
        "deleting_since": backup_set.deleting_since,
        "parts": parts_of(backup_set, artifacts),
        "where": whereabouts_of(places),
        "verification": verification_of(backup_set, artifacts),
    }


def _copies(placed: ArtifactPlaces | None) -> dict[str, CopyState]:
    if placed is None:
        return {}
    copies = {
        LOCAL: CopyState(state="stored" if placed.local else "missing", error=None, updated_at=None)
    }
    for name, copy in placed.copies.items():
        copies[name] = CopyState(
            state=placed.state_on(name),  # type: ignore[arg-type]
            error=_optional(placed.error_on(name)),
            updated_at=None if copy is None else copy.updated_at,
        )
    return copies


def artifact_detail(artifact: Artifact, placed: ArtifactPlaces | None) -> ArtifactDetail:
    return ArtifactDetail(
        id=artifact.id,
        relpath=artifact.relpath,
        source=artifact.source,
        mode=artifact.mode,
        status=artifact.status,  # type: ignore[arg-type]
        size=artifact.stored_size,
        plain_size=artifact.plain_size,
        sha256=artifact.checksum,
        compression=artifact.codec,
        key_id=artifact.key_id,
        created_at=artifact.created_at,
        error=_optional(artifact.error),
        metadata=artifact.metadata,
        verification=ArtifactVerification(
            state=artifact.verify_state,  # type: ignore[arg-type]
            verified_at=artifact.verified_at,
            detail=_optional(artifact.verify_detail),
        ),
        copies=_copies(placed),
    )


def detail_of(
    backup_set: BackupSet, artifacts: list[Artifact], places: SetPlaces
) -> BackupSetDetail:
    placed = {a.relpath: a for a in places.artifacts}
    return BackupSetDetail(
        **_summary_fields(backup_set, artifacts, places),
        note=_optional(backup_set.note),
        job_id=backup_set.job_id,
        artifacts=[artifact_detail(a, placed.get(a.relpath)) for a in artifacts],
        gaps=[redact(line) for line in places.gaps()],
    )
