"""`POST /api/backups/{id}/restore`: a restore as a job, or a dry run's plan.

The body names the type of restore and the CLI's options for it (restore.request); a
restore that replaces data also needs `confirm` (restore.confirm). The restore runs as
the same verb the CLI and the console run (`restore`, `restore-full`), in the console's
detached job process:

- a real restore answers 202 once its job has its catalog row; poll `status_url`.
- a dry run (`"dry_run": true`) is read-only and quick (it authenticates the artifacts,
  as the CLI's does, and plans), so it is answered with its plan: 200 once its job has
  ended, up to DRY_RUN_WAIT_S. A dry run still running then is answered 202 like a
  restore; its plan is written into its job's log when it ends.

409 when a running job conflicts (jarvis_tui/api/job_conflicts.py): a restore of the
same type into the same target, a dry run included; a complete system restore beside
any restore or backup, and any restore beside a complete system restore.
"""

import threading
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends
from fastapi.responses import JSONResponse

from engines.actions.verbs import VERBS, Request
from engines.catalog import LATEST
from engines.errors import JarvisError
from engines.sources import get_source
from jarvis_tui.api.context import ApiContext, api_context
from jarvis_tui.api.errors import ApiError, bad_request, conflict
from jarvis_tui.api.job_conflicts import DRY_WORDS, INTO, restore_conflicts
from jarvis_tui.api.job_start import JobAccepted, JobLaunch, start_job_watched
from jarvis_tui.api.restore.confirm import check_confirmation, target_of
from jarvis_tui.api.restore.plan import DryRunReport, log_plan, plan_report
from jarvis_tui.api.restore.request import TYPES, FullRestore, RestoreBody
from jarvis_tui.api.restore.tagged_body import TaggedBodyRoute
from jarvis_tui.api.routes.actions import STARTED_RESPONSES
from jarvis_tui.job_process import ActionSpec
from jarvis_tui.pitr_choices import RestoreChoiceError

DRY_RUN_WAIT_S = 300.0


class _RestoreRoute(TaggedBodyRoute):
    TAGS = TYPES
    NOUN = "restore"


router = APIRouter(tags=["restore"], route_class=_RestoreRoute)


def _options(body: Any, reference: str, context: ApiContext) -> Any:
    """The options object the CLI builds; a choice it refuses is 400 naming it."""
    try:
        return body.options(context.env_file, reference)
    except RestoreChoiceError as error:
        raise bad_request(str(error), error.option) from None
    except JarvisError as error:
        raise bad_request(str(error)) from None


def _spec(body: Any, reference: str, options: Any, target: str) -> ActionSpec:
    if isinstance(body, FullRestore):
        request = Request(reference=reference, options=options, dry_run=body.dry_run)
        return ActionSpec("restore-full", request)
    request = Request(kind=body.type, reference=reference, options=options)
    words = VERBS["restore"].describe(request)
    dry = next((w for w in DRY_WORDS if words.endswith(w)), "")
    label = words.removesuffix(dry) + INTO + target + dry
    return ActionSpec(
        "restore", Request(kind=body.type, reference=reference, options=options, label=label)
    )


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


def _plan_when_ended(
    context: ApiContext, accepted: JobAccepted, kind: str, launch: JobLaunch
) -> None:
    outcome = launch.ended(None)
    if outcome is not None:
        log_plan(context, plan_report(accepted, kind, outcome))


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
    if backup_set.deleting_since is not None:
        raise conflict(f"backup set {backup_set.id} is being deleted; restore another one")
    # `latest` stays the engine's to pick: a dump, a base backup, the one before a target.
    reference = LATEST if set_id == LATEST else backup_set.id
    options = _options(body, reference, context)
    _refused_here(body, context)
    artifacts = [
        a for a in context.catalog.artifacts_of(backup_set.id) if a.source == kind or kind == "full"
    ]
    check_confirmation(body, kind, context.settings, artifacts)
    target = target_of(body, context.settings, artifacts)
    spec = _spec(body, reference, options, target)
    accepted, launch = start_job_watched(context, spec, restore_conflicts(kind, target))
    if body.dry_run:
        outcome = launch.ended(DRY_RUN_WAIT_S)
        if outcome is not None:
            report = plan_report(accepted, kind, outcome)
            log_plan(context, report)
            return JSONResponse(report.model_dump(), status_code=200)
        threading.Thread(
            target=_plan_when_ended, args=(context, accepted, kind, launch), daemon=True
        ).start()
    headers = {"Location": accepted.status_url}
    return JSONResponse(accepted.model_dump(), status_code=202, headers=headers)
