"""`POST /api/backups` and `POST /api/backups/{id}/verify`: jobs started from the API.

Each starts the same verb the CLI runs, as a job of the console's detached job process
(job_start), and answers 202 with the job and `Location: /api/jobs/{id}` to poll.

A running job that conflicts (jarvis_tui/api/job_conflicts.py: another backup or a
complete system restore; for a verification, the same set's making, verification or
deletion) is 409 naming it, whoever started it.
"""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from engines.actions.verbs import VERBS, Request
from engines.postgres.options import MODES, PostgresBackupOptions
from engines.sources import get_source, source_kinds
from jarvis_tui.api.context import ApiContext, api_context
from jarvis_tui.api.errors import ApiError, ErrorBody, bad_request, conflict
from jarvis_tui.api.job_conflicts import backup_conflicts, verify_conflicts
from jarvis_tui.api.job_start import JobAccepted, start_job
from jarvis_tui.job_process import ActionSpec

router = APIRouter(tags=["backups"])

BackupType = Literal[("full", "incremental", *source_kinds())]  # type: ignore[valid-type]
PostgresMode = Literal[MODES]  # type: ignore[valid-type]

# The answer to a job start, for the OpenAPI document: its Location and the 503 of a
# job process that did not start in time.
STARTED_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {
        "description": "the job started; poll its status_url (also in Location)",
        "headers": {
            "Location": {"description": "/api/jobs/{job_id}", "schema": {"type": "string"}}
        },
    },
    503: {"model": ErrorBody, "description": "the job's process did not start in time"},
}


class BackupBody(BaseModel):
    """What to back up: `full` (every source, one set), `incremental` (the files), or one
    source, with the CLI's options for it."""

    model_config = ConfigDict(extra="forbid", strict=True)

    type: BackupType
    mode: PostgresMode | None = Field(
        None, description="postgres: full (default), schema, data, or base (pg_basebackup)"
    )
    database: str | None = Field(
        None,
        min_length=1,
        max_length=63,
        pattern=r"^[^=/\x00]+$",  # never a connection string in place of a name
        description="postgres: the database to dump (default: POSTGRES_DB / DATABASE_URL)",
    )
    verify_restore: bool | None = Field(
        None,
        description="postgres: restore into a scratch database (or folder, for base) and "
        "compare (default: VERIFY_RESTORE)",
    )
    incremental: bool | None = Field(
        None, description="files: skip files unchanged since the previous snapshot"
    )


class VerifyBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    read_data: bool = Field(
        False, description="files snapshots: also read and authenticate every chunk"
    )


# Which backup type each option belongs to.
_OPTION_OF = {
    "mode": "postgres",
    "database": "postgres",
    "verify_restore": "postgres",
    "incremental": "files",
}


def _check_options(body: BackupBody) -> None:
    for name, owner in _OPTION_OF.items():
        if getattr(body, name) is not None and body.type != owner:
            raise bad_request(
                f"{name}: only a {owner} backup takes it, not type {body.type!r}", name
            )


def backup_spec(body: BackupBody) -> ActionSpec:
    """The verb and request the CLI's `backup <type>` runs, job words included."""
    _check_options(body)
    if body.type == "full":
        return ActionSpec("backup-full", Request())
    options: Any = None
    label = None
    kind = body.type
    if kind in ("files", "incremental"):
        from engines.store.backup import FilesBackupOptions

        incremental = kind == "incremental" or bool(body.incremental)
        kind = "files"
        options = FilesBackupOptions(incremental=incremental)
        label = "backup files" + (" (incremental)" if incremental else "")
    elif kind == "postgres":
        mode = body.mode or "full"
        options = PostgresBackupOptions(
            mode=mode, database=body.database, verify_restore=body.verify_restore
        )
        label = f"backup postgres ({mode})"
    elif kind == "redis":
        from engines.redis.options import RedisBackupOptions

        options = RedisBackupOptions()
    return ActionSpec("backup", Request(kind=kind, options=options, label=label))


def _refused_here(context: ApiContext, spec: ActionSpec) -> None:
    """Refusals known before any job starts: browsing another host, a source not set up."""
    VERBS[spec.verb].refuse_while_browsing(context.workspace)
    kind = spec.request.kind
    if kind is not None:
        reason = get_source(kind).configured(context.settings)
        if reason:
            raise ApiError(409, "not_configured", f"{kind} backup skipped: {reason}")


def _accepted(response: Response, accepted: JobAccepted) -> JobAccepted:
    response.headers["Location"] = accepted.status_url
    return accepted


@router.post(
    "/api/backups",
    status_code=202,
    response_model=JobAccepted,
    responses=STARTED_RESPONSES,
    summary="start a backup job",
)
def start_backup(
    response: Response,
    body: BackupBody,
    context: Annotated[ApiContext, Depends(api_context)],
) -> JobAccepted:
    spec = backup_spec(body)
    _refused_here(context, spec)
    return _accepted(response, start_job(context, spec, backup_conflicts))


@router.post(
    "/api/backups/{set_id}/verify",
    status_code=202,
    response_model=JobAccepted,
    responses=STARTED_RESPONSES,
    summary="start a verification job of a backup set (or `latest`)",
)
def start_verify(
    response: Response,
    set_id: str,
    context: Annotated[ApiContext, Depends(api_context)],
    body: Annotated[VerifyBody | None, Body()] = None,
) -> JobAccepted:
    backup_set = context.catalog.get_backup_set(set_id)  # 404 before any job
    if backup_set.deleting_since is not None:
        raise conflict(f"backup set {backup_set.id} is being deleted; there is nothing to verify")
    read_data = body.read_data if body is not None else False
    spec = ActionSpec("verify-strict", Request(reference=backup_set.id, read_data=read_data))
    return _accepted(response, start_job(context, spec, verify_conflicts(backup_set.id)))
