"""`GET /api/jobs`, `GET /api/jobs/{id}` and `POST /api/jobs/{id}/cancel`.

Every job of the catalog, whoever started it (the CLI, the console, the scheduler, this
API): its status, progress, the set it made and the tail of its log. A job whose
process died is marked failed before it is shown, so `running` means running. Cancel
asks the job's process to stop at its next check, as the console's cancel does.
"""

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field

from engines.catalog import Catalog
from engines.catalog.rows import EVENT_LEVELS, JOB_STATUSES, Job, JobEvent
from jarvis_tui.api.context import ApiContext, api_context
from jarvis_tui.api.errors import conflict
from jarvis_tui.api.iso_time import IsoTime

router = APIRouter(tags=["jobs"])

JobStatus = Literal[JOB_STATUSES]  # type: ignore[valid-type]
EventLevel = Literal[EVENT_LEVELS]  # type: ignore[valid-type]
JobId = Annotated[int, Path(ge=1, le=2**63 - 1, description="the job's id")]  # SQLite's range
TAIL_DEFAULT = 50
TAIL_MAX = 1000
LIST_DEFAULT = 50
LIST_MAX = 1000


class JobProgress(BaseModel):
    done: int
    total: int | None = Field(description="unknown until the job has counted its work")
    unit: str
    percent: float | None = Field(description="when the total is known")


class JobLogEvent(BaseModel):
    time: IsoTime
    level: EventLevel
    message: str


class JobSummary(BaseModel):
    id: int
    kind: str
    description: str
    status: JobStatus
    host: str | None
    started_at: IsoTime | None
    finished_at: IsoTime | None
    elapsed_s: float | None = Field(description="until it finished, or until now")
    progress: JobProgress
    error: str | None
    cancel_requested: bool
    set_id: str | None = Field(description="the backup set the job made")
    set_url: str | None


class JobDetail(JobSummary):
    log: list[JobLogEvent] = Field(description="the last `tail` events, oldest first")


def _percent(job: Job) -> float | None:
    if not job.progress_total:
        return None
    return round(min(100.0, 100.0 * job.progress_done / job.progress_total), 1)


def _elapsed(job: Job) -> float | None:
    if job.started_at is None:
        return None
    end = job.finished_at or datetime.now(UTC)
    return round(max(0.0, (end - job.started_at).total_seconds()), 3)


def summary_of(job: Job) -> JobSummary:
    return JobSummary(
        id=job.id,
        kind=job.kind,
        description=job.description,
        status=job.status,  # type: ignore[arg-type]
        host=job.host,
        started_at=job.started_at,
        finished_at=job.finished_at,
        elapsed_s=_elapsed(job),
        progress=JobProgress(
            done=job.progress_done,
            total=job.progress_total,
            unit=job.progress_unit,
            percent=_percent(job),
        ),
        error=job.error,
        cancel_requested=job.cancel_requested,
        set_id=job.set_id,
        set_url=None if job.set_id is None else f"/api/backups/{job.set_id}",
    )


def _event(event: JobEvent) -> JobLogEvent:
    return JobLogEvent(time=event.at, level=event.level, message=event.message)  # type: ignore[arg-type]


def _current(catalog: Catalog, job_id: int) -> Job:
    """The job, marked failed first if it looks running but its process is gone."""
    job = catalog.get_job(job_id)  # NotFoundError: 404
    if not job.finished and catalog.mark_orphaned_jobs():
        job = catalog.get_job(job_id)
    return job


def _detail(catalog: Catalog, job: Job, tail: int) -> JobDetail:
    events = catalog.job_events_tail(job.id, tail) if tail else []
    return JobDetail(**summary_of(job).model_dump(), log=[_event(e) for e in events])


@router.get("/api/jobs", response_model=list[JobSummary], summary="jobs, newest first")
def list_jobs(
    context: Annotated[ApiContext, Depends(api_context)],
    limit: Annotated[int, Query(ge=1, le=LIST_MAX)] = LIST_DEFAULT,
    status: Annotated[JobStatus | None, Query(description="only the jobs in this status")] = None,
) -> list[JobSummary]:
    catalog = context.catalog
    jobs = catalog.list_jobs(limit, status=status)
    # Marking orphans writes; only a list showing a job as unfinished needs it.
    if any(not job.finished for job in jobs) and catalog.mark_orphaned_jobs():
        jobs = catalog.list_jobs(limit, status=status)
    return [summary_of(job) for job in jobs]


@router.get(
    "/api/jobs/{job_id}",
    response_model=JobDetail,
    summary="a job: status, progress, the set it made, its log's tail",
)
def get_job(
    job_id: JobId,
    context: Annotated[ApiContext, Depends(api_context)],
    tail: Annotated[int, Query(ge=0, le=TAIL_MAX, description="log events to show")] = TAIL_DEFAULT,
) -> JobDetail:
    catalog = context.catalog
    return _detail(catalog, _current(catalog, job_id), tail)


@router.post(
    "/api/jobs/{job_id}/cancel",
    status_code=202,
    response_model=JobDetail,
    summary="ask a running job to stop (it stops at its next check)",
)
def cancel_job(
    job_id: JobId,
    context: Annotated[ApiContext, Depends(api_context)],
) -> JobDetail:
    catalog = context.catalog
    job = _current(catalog, job_id)
    if job.finished or not catalog.request_job_cancel(job_id):
        finished = catalog.get_job(job_id)
        raise conflict(f"job {job_id} has already finished ({finished.status}); nothing to cancel")
    return _detail(catalog, catalog.get_job(job_id), TAIL_DEFAULT)
