"""`GET /api/backups/schedule/status`: what `jarvis-tui status --json` prints.

The body is the same report's `to_json` (engines/monitoring/status.py), so the API and
the CLI cannot drift apart; the models below only declare its shape for the OpenAPI
document, plus `checked_at`, the moment the report was taken (next runs and ages
depend on it).
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from engines.catalog.times import utc_now
from engines.monitoring.status import collect_status
from jarvis_tui.api.context import ApiContext, api_context
from jarvis_tui.api.iso_time import IsoTime

router = APIRouter(tags=["monitoring"])


class LastRun(BaseModel):
    planned_at: IsoTime
    started_at: IsoTime | None
    outcome: str | None = Field(description="ran, failed, skipped, missed, ...")
    job_id: int | None
    detail: str | None


class ScheduleState(BaseModel):
    name: str
    label: str
    enabled: bool
    cron: str
    words: str = Field(description="the schedule in words, in the configured time zone")
    next_run: IsoTime | None = Field(description="null while the schedule is off")
    last_run: LastRun | None = Field(description="the last attempted run; null: never ran")


class SourceFreshness(BaseModel):
    source: str
    last_good_backup: str | None = Field(description="set id; null: none yet")
    created_at: IsoTime | None
    age_hours: float | None
    too_old: bool = Field(description="no good backup younger than BACKUP_MAX_AGE_HOURS")


class SchedulerHolder(BaseModel):
    """The scheduler lock's record: who runs the schedules for this repository."""

    model_config = ConfigDict(extra="allow")
    pid: int | None = None
    host: str | None = None
    purpose: str | None = None
    started_at: str | None = Field(None, description="as its holder wrote it (ISO 8601)")


class NewestNotOffsite(BaseModel):
    id: str
    created_at: IsoTime
    gaps: list[str] = Field(description="what that set lacks on the destination")


class OffsiteState(BaseModel):
    destination: str
    complete_sets: int
    incomplete_sets: int
    failed_copies: int
    last_copy_at: IsoTime | None
    newest_not_offsite: NewestNotOffsite | None


class ScheduleStatus(BaseModel):
    checked_at: IsoTime
    timezone: str
    schedules: list[ScheduleState]
    sources: list[SourceFreshness]
    scheduler: SchedulerHolder | None = Field(description="null: nobody runs the schedules")
    open_alerts: list[str]
    offsite: list[OffsiteState]


@router.get(
    "/api/backups/schedule/status",
    response_model=ScheduleStatus,
    summary="schedules, next and last runs, who runs them, last good backup per source",
)
def schedule_status(context: Annotated[ApiContext, Depends(api_context)]) -> dict[str, Any]:
    """`jarvis-tui status --json` as of `checked_at`: next runs are in the configured time
    zone (BACKUP_TIMEZONE, else the host's)."""
    now = utc_now()
    report = collect_status(context.settings, context.catalog, now)
    return {"checked_at": now.isoformat(), **report.to_json()}
