"""`GET /api/backups/stats/overview`: the catalog at a glance (engines/monitoring/overview.py).

Counts and sizes per source and tier, each source's last good backup and its age,
verification coverage, the repository's usage and each copy destination's, read
from grouped queries and the catalog's copy records (no bucket is listed).
"""

from typing import Annotated

from anyio import to_thread
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from engines.catalog.times import utc_now
from engines.monitoring.overview import Overview as OverviewReport
from engines.monitoring.overview import collect_overview
from jarvis_tui.api.context import ApiContext, api_context
from jarvis_tui.api.iso_time import IsoTime
from jarvis_tui.api.shared_run import SharedRun

router = APIRouter(tags=["monitoring"])


class _FromReport(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class LastGood(_FromReport):
    set_id: str
    created_at: IsoTime = Field(description="when the set was started: when its data was read")
    age_seconds: float


class SourceStats(_FromReport):
    source: str
    configured: bool = Field(description="false: only older backups of it remain")
    sets: int = Field(description="sets holding a complete artifact of it")
    artifacts: int = Field(description="its complete artifacts")
    stored_bytes: int = Field(description="what they take in the repository (packs included)")
    plain_bytes: int = Field(description="their size before compression and encryption")
    last_good: LastGood | None = Field(description="the newest complete or partial set; null: none")
    too_old: bool = Field(description="configured, with no good backup younger than max_age_hours")


class TierStats(_FromReport):
    tier: str | None = Field(description="manual, daily, weekly, monthly; null: none recorded")
    sets: int
    complete: int
    partial: int
    failed: int
    running: int
    stored_bytes: int


class VerificationStats(_FromReport):
    artifacts: int = Field(description="complete artifacts")
    artifacts_ok: int
    artifacts_failed: int
    artifacts_never: int = Field(description="complete artifacts never verified")
    sets: int = Field(description="complete and partial sets")
    sets_ok: int
    sets_failed: int
    sets_never: int
    oldest_verified_at: IsoTime | None = Field(description="the least recently verified's check")
    newest_verified_at: IsoTime | None


class RepositoryStats(_FromReport):
    location: str
    artifacts: int
    stored_bytes: int = Field(description="what the complete artifacts take, by the catalog")
    free_bytes: int = Field(description="free on the repository's file system")
    total_bytes: int
    free_percent: float
    min_free_percent: int = Field(description="BACKUP_MIN_FREE_PERCENT: alert below")
    low: bool


class NotOffsite(_FromReport):
    id: str
    created_at: IsoTime
    gaps: list[str] = Field(description="what that set lacks there")


class DestinationStats(_FromReport):
    destination: str
    artifacts: int = Field(description="complete artifacts recorded stored there")
    stored_bytes: int
    complete_sets: int = Field(description="finished sets whose every complete artifact is there")
    incomplete_sets: int
    failed_copies: int
    last_copy_at: IsoTime | None
    newest_not_offsite: NotOffsite | None


class Totals(_FromReport):
    sets: int
    artifacts: int = Field(description="complete artifacts")
    stored_bytes: int


class Overview(_FromReport):
    checked_at: IsoTime = Field(description="the moment ages are counted from")
    max_age_hours: int = Field(description="BACKUP_MAX_AGE_HOURS")
    totals: Totals
    sources: list[SourceStats]
    tiers: list[TierStats]
    verification: VerificationStats
    repository: RepositoryStats
    destinations: list[DestinationStats] = Field(description="each copy destination (S3)")


def read_overview(context: ApiContext) -> OverviewReport:
    """The overview now (in a thread of the pool: it reads the catalog and the disk)."""
    return collect_overview(context.settings, context.catalog, utc_now())


@router.get(
    "/api/backups/stats/overview",
    response_model=Overview,
    summary="counts and sizes per source and tier, last good backups, verification, usage",
)
async def overview(
    request: Request, context: Annotated[ApiContext, Depends(api_context)]
) -> Overview:
    """Sizes count complete artifacts (a files snapshot with the packs it wrote); ages are
    seconds from `checked_at`; destinations are read from the catalog's copy records.
    Requests arriving while the overview is being read share that reading, when it was
    begun under the catalog's change marker they read (never one from before a write)."""
    shared = getattr(request.app.state, "overview_run", None)
    if shared is None:  # one per application, created on its event loop
        shared = request.app.state.overview_run = SharedRun(lambda: read_overview(context))
    marker = await to_thread.run_sync(context.catalog.change_marker)
    return Overview.model_validate(await shared.answer(after=marker))
