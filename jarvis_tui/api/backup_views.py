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
from engines.catalog.set_pages import ListedArtifact
from engines.plumbing.redaction import redact
from engines.repository.whereabouts import (
    LOCAL,
    ArtifactPlaces,
    SetPlaces,
    copy_word,
    is_local,
    places_summary,
)
from engines.sources import source_kinds
from jarvis_tui.api.backup_models import (
    ArtifactDetail,
    ArtifactVerification,
    BackupSetDetail,
    BackupSetSummary,
    CopyState,
    PartState,
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


def parts_of(backup_set: BackupSet, artifacts: Sequence[ArtifactStates]) -> list[dict[str, str]]:
    """`Part`s, as plain values (the list page writes them without validating)."""
    if backup_set.kind in source_kinds():
        return [{"source": backup_set.kind, "state": _SINGLE_PART_STATE[backup_set.status]}]
    noted = [
        {"source": m["source"], "state": m["state"]}
        for m in _PART_IN_NOTE.finditer(backup_set.note or "")
    ]
    if noted:
        return noted
    # A full set still running (its note comes at the end): what its artifacts say so far.
    states: dict[str, PartState] = {}
    for artifact in artifacts:
        word = {"complete": "ok", "writing": "running"}.get(artifact.status, "failed")
        if states.get(artifact.source) in (None, "ok"):
            states[artifact.source] = word  # type: ignore[assignment]
    return [{"source": source, "state": state} for source, state in states.items()]


def verification_of(backup_set: BackupSet, artifacts: Sequence[ArtifactStates]) -> dict[str, Any]:
    """A `VerificationSummary`, as plain values."""
    complete = [a for a in artifacts if a.status == "complete"]
    times = [a.verified_at for a in complete if a.verified_at is not None]
    return {
        "state": backup_set.verified_state,
        "verified": sum(a.verify_state == "ok" for a in complete),
        "failed": sum(a.verify_state == "failed" for a in complete),
        "unverified": sum(a.verify_state is None for a in complete),
        "last_verified_at": max(times, default=None),
    }


def _whereabouts(
    summary: str, total: int, local: int, counts: dict[str, dict[str, int]]
) -> dict[str, Any]:
    """A `Whereabouts`, as plain values; `counts`: per configured copy destination, its
    complete artifacts stored, missing and failed there."""
    return {
        "summary": summary,
        "artifacts": total,
        "local": local,
        "complete_offsite": all(c["stored"] == total for c in counts.values()) and total > 0
        if counts
        else None,
        "destinations": {
            name: {"complete": total > 0 and count["stored"] == total, **count}
            for name, count in counts.items()
        },
    }


def whereabouts_of(places: SetPlaces) -> dict[str, Any]:
    # One pass over the artifacts (SetPlaces.on walks them once per question).
    counts = {name: {"stored": 0, "missing": 0, "failed": 0} for name in places.destinations}
    for artifact in places.artifacts:
        for name, count in counts.items():
            count[artifact.state_on(name)] += 1
    return _whereabouts(places.summary, len(places.artifacts), places.local_count, counts)


def listed_whereabouts(
    artifacts: Sequence[ListedArtifact], destinations: Sequence[str]
) -> dict[str, Any]:
    """`whereabouts_of` from a listing's artifacts (their copy states, read with them)."""
    counts = {name: {"stored": 0, "missing": 0, "failed": 0} for name in destinations}
    total = local = 0
    for artifact in artifacts:
        if artifact.status != "complete":
            continue
        total += 1
        local += is_local(artifact.copies)
        for name, count in counts.items():
            count[copy_word(artifact.copies.get(name))] += 1
    summary = places_summary(
        total, local, [(name, c["failed"], c["missing"]) for name, c in counts.items()]
    )
    return _whereabouts(summary, total, local, counts)


def summary_of(
    backup_set: BackupSet, artifacts: Sequence[ArtifactStates], places: SetPlaces
) -> BackupSetSummary:
    return BackupSetSummary(**_summary_fields(backup_set, artifacts, whereabouts_of(places)))


def list_item(
    backup_set: BackupSet, artifacts: Sequence[ListedArtifact], destinations: Sequence[str]
) -> dict[str, Any]:
    """A `BackupSetSummary` as plain values, in its fields' order, for the list page to
    write without validating (tests/test_api_backup_views.py: equal to `summary_of`)."""
    return _summary_fields(backup_set, artifacts, listed_whereabouts(artifacts, destinations))


def _summary_fields(
    backup_set: BackupSet, artifacts: Sequence[ArtifactStates], where: dict[str, Any]
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
        "where": where,
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
        **_summary_fields(backup_set, artifacts, whereabouts_of(places)),
        note=_optional(backup_set.note),
        job_id=backup_set.job_id,
        artifacts=[artifact_detail(a, placed.get(a.relpath)) for a in artifacts],
        gaps=[redact(line) for line in places.gaps()],
    )
