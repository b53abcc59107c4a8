"""`POST /api/backups/{id}/restore`: a restore as a job, or a dry run's plan.

The body names the type of restore and the CLI's options for it (restore_request); a
restore that replaces data also needs `confirm` (restore_confirm). The restore runs as
the same verb the CLI and the console run (`restore`, `restore-full`), in the console's
detached job process:

- a real restore answers 202 once its job has its catalog row; poll `status_url`.
- a dry run (`"dry_run": true`) is read-only and quick (it authenticates the artifacts,
  as the CLI's does, and plans), so it is answered with its plan: 200 once its job has
  ended, up to DRY_RUN_WAIT_S. A dry run still running then is answered 202 like a
  restore; its plan is written into its job's log when it ends.

409 when a running job conflicts: another restore of the same type into the same target
(or one whose target its description does not name, the CLI's and the console's), a
complete system restore beside any restore or backup, and the other way round.
"""

import threading
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel

from engines.actions.verbs import VERBS, Request
from engines.catalog import LATEST
from engines.catalog.rows import Job
from engines.errors import JarvisError
from engines.plumbing.redaction import redact
from engines.sources import get_source
from jarvis_tui.api.context import ApiContext, api_context
from jarvis_tui.api.errors import ApiError, bad_request
from jarvis_tui.api.job_start import JobAccepted, start_job_watched
from jarvis_tui.api.restore_confirm import check_confirmation, target_of
from jarvis_tui.api.restore_request import TYPES, FullRestore, RestoreBody
from jarvis_tui.api.routes.actions import STARTED_RESPONSES
from jarvis_tui.job_process import ActionSpec, Outcome
from jarvis_tui.pitr_choices import RestoreChoiceError

DRY_RUN_WAIT_S = 300.0
INTO = " into "  # the job's description names the target after it
DRY_WORDS = ("(dry run)", "--dry-run")


class PlanStep(BaseModel):
    title: str
    state: str  # would, done, by hand, failed
    lines: list[str]


class DryRunReport(BaseModel):
    """A dry run's plan: what the restore would write where, and what would stop it."""

    job_id: int
    status_url: str
    type: str
    would_succeed: bool  # no error and no refusal: the restore would go ahead
    target: str | None = None
    lines: list[str] = []
    warnings: list[str] = []
    refusal: str | None = None  # why the restore would be refused
    error: str | None = None  # the dry run failed (an artifact failed authentication, ...)
    steps: list[PlanStep] = []  # a complete system restore: each step's plan


class _UntaggedErrors(APIRoute):
    """Validation errors of the body name the field (`flush`), not the union's branch
    (`files.flush`), and say which options a type takes."""

    def get_route_handler(self) -> Any:
        handler = super().get_route_handler()

        async def route(request: Any) -> Any:
            try:
                return await handler(request)
            except RequestValidationError as error:
                raise RequestValidationError(
                    [_untagged(e) for e in error.errors()], body=error.body
                ) from None

        return route


def _untagged(error: dict[str, Any]) -> dict[str, Any]:
    loc = tuple(error.get("loc", ()))
    kinds = ", ".join(TYPES)
    if error.get("type") in ("union_tag_not_found", "union_tag_invalid"):
        return {**error, "loc": ("body", "type"), "msg": f"give the type of restore: {kinds}"}
    if len(loc) >= 3 and loc[0] == "body" and loc[1] in TYPES:
        error = {**error, "loc": ("body", *loc[2:])}
        if error.get("type") == "extra_forbidden":
            error["msg"] = f"not an option of a {loc[1]} restore"
    return error


router = APIRouter(tags=["restore"], route_class=_UntaggedErrors)


def _conflicts(kind: str, target: str):
    full = kind == "full"

    def conflicts(job: Job) -> bool:
        words = job.description
        if job.kind == "restore" and words.startswith("restore full"):
            return not words.endswith(DRY_WORDS)  # the whole system is being replaced
        if full:
            return job.kind in ("restore", "backup")
        if job.kind != "restore" or words.endswith(DRY_WORDS):
            return False
        if not words.startswith(f"restore {kind} "):
            return False
        _, into, named = words.partition(INTO)
        return not into or named == target

    return conflicts


def _spec(body: Any, set_id: str, env_file: Any, target: str) -> ActionSpec:
    options = body.options(env_file, set_id)
    if isinstance(body, FullRestore):
        request = Request(reference=set_id, options=options, dry_run=body.dry_run)
        return ActionSpec("restore-full", request)
    request = Request(kind=body.type, reference=set_id, options=options)
    label = VERBS["restore"].describe(request) + INTO + target
    return ActionSpec(
        "restore", Request(kind=body.type, reference=set_id, options=options, label=label)
    )


def _report(accepted: JobAccepted, body: Any, outcome: Outcome) -> DryRunReport:
    common = {"job_id": accepted.job_id, "status_url": accepted.status_url, "type": body.type}
    if outcome.error is not None:
        return DryRunReport(**common, would_succeed=False, error=redact(outcome.error))
    value = outcome.value
    if isinstance(body, FullRestore):
        steps = [
            PlanStep(title=s.title, state=s.state, lines=[redact(x) for x in s.lines])
            for s in value.steps
        ]
        return DryRunReport(**common, would_succeed=True, steps=steps)
    return DryRunReport(
        **common,
        would_succeed=value.refusal is None,
        target=redact(value.target),
        lines=[redact(line) for line in value.lines],
        warnings=[redact(line) for line in value.warnings],
        refusal=None if value.refusal is None else redact(value.refusal),
    )


def _log_plan(context: ApiContext, report: DryRunReport) -> None:
    """The plan into its job's log, so a caller answered 202 finds it there."""
    lines = [f"plan: {line}" for line in report.lines]
    lines += [f"plan: {step.title}: {step.state}" for step in report.steps]
    lines += [f"plan: refused: {report.refusal}"] if report.refusal else []
    for line in lines:
        context.catalog.add_job_event(report.job_id, "info", line)


def _when_ended(context: ApiContext, accepted: JobAccepted, body: Any, launch: Any) -> None:
    outcome = launch.ended(None)
    if outcome is not None:
        _log_plan(context, _report(accepted, body, outcome))


def _refused_here(body: Any, context: ApiContext) -> None:
    """Refusals known before any job starts: a server not set up, no way to stop the app."""
    settings = context.settings
    offline = getattr(body, "pgdata", None) or getattr(body, "data_dir", None)
    if body.type in ("postgres", "redis") and not offline:
        reason = get_source(body.type).configured(settings)
        if reason:
            raise ApiError(409, "not_configured", f"{body.type} restore: {reason}")
    full_for_real = isinstance(body, FullRestore) and not body.dry_run
    if full_for_real and not (body.app_stopped or settings.jarvis_stop_command):
        raise bad_request(
            "app_stopped: JARVIS_STOP_COMMAND is not set: stop the application yourself "
            'first, then send "app_stopped": true (or set JARVIS_STOP_COMMAND)',
            "app_stopped",
        )


@router.post(
    "/api/backups/{set_id}/restore",
    summary="restore a backup set (a job), or plan it (dry_run)",
    status_code=202,
    response_model=None,
    responses={
        **STARTED_RESPONSES,
        202: {**STARTED_RESPONSES[202], "model": JobAccepted},
        200: {"model": DryRunReport, "description": "a dry run's plan (it ended in time)"},
    },
)
def restore(
    set_id: str,
    body: Annotated[RestoreBody, Body()],
    context: Annotated[ApiContext, Depends(api_context)],
) -> JSONResponse:
    kind = body.type
    backup_set = context.catalog.get_backup_set(set_id, kind)  # 404: no such set of that type
    artifacts = [
        a for a in context.catalog.artifacts_of(backup_set.id) if a.source == kind or kind == "full"
    ]
    _refused_here(body, context)
    check_confirmation(body, kind, context.settings, artifacts)
    target = target_of(body, context.settings, artifacts)
    # `latest` stays the engine's to pick: a dump, a base backup, the one before a target.
    reference = LATEST if set_id == LATEST else backup_set.id
    try:
        spec = _spec(body, reference, context.env_file, target)
    except RestoreChoiceError as error:
        raise bad_request(str(error), error.option) from None
    except JarvisError as error:
        raise bad_request(str(error)) from None
    accepted, launch = start_job_watched(context, spec, _conflicts(kind, target))
    if body.dry_run:
        outcome = launch.ended(DRY_RUN_WAIT_S)
        if outcome is not None:
            report = _report(accepted, body, outcome)
            _log_plan(context, report)
            return JSONResponse(report.model_dump(), status_code=200)
        threading.Thread(
            target=_when_ended, args=(context, accepted, body, launch), daemon=True
        ).start()
    headers = {"Location": accepted.status_url}
    return JSONResponse(accepted.model_dump(), status_code=202, headers=headers)
