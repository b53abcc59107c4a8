"""`GET /api/health`: the `jarvis-tui health` checks, as `health --json` prints them.

It answers 200 whether healthy or not, with `healthy` false and the failing checks
when something is wrong: the status says the question was answered, the body gives the
answer, and a 5xx keeps meaning that the server itself failed. A probe that needs a
yes or no reads `healthy` (`curl -fsS -H "Authorization: Bearer $T" .../api/health |
jq -e .healthy`); the bare liveness probe is `GET /api/live`.

The checks reach PostgreSQL, Redis and S3 with the engine's own timeouts (a server that
accepts and never answers costs its 10 s connect timeout), so they run in the thread
pool and never stall other requests. Requests that arrive while a run is under way
share its answer: probes polling faster than a slow run ends cannot pile up runs
(nor fill the thread pool the other routes use), and a client that hangs up does not
cancel the run the others wait for.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from engines.catalog.times import utc_now
from engines.errors import JarvisError
from engines.monitoring.health import HealthCheck, run_health_checks
from jarvis_tui.api.context import ApiContext, api_context
from jarvis_tui.api.shared_run import SharedRun

router = APIRouter(tags=["monitoring"])


class Check(BaseModel):
    name: str = Field(description="postgres reachable, repository writable, free space, ...")
    ok: bool
    detail: str
    warning: str | None = Field(
        None, description="present when a passing check asks for attention; never fails"
    )


class Health(BaseModel):
    healthy: bool = Field(description="every check passed (warnings allowed)")
    checks: list[Check]


def _run_checks(context: ApiContext) -> dict[str, Any]:
    try:
        checks = run_health_checks(context.settings, context.catalog, utc_now())
    except JarvisError as error:  # as `jarvis-tui health`: an unreadable catalog is a check
        checks = [HealthCheck("catalog", False, str(error))]
    return {"healthy": all(c.ok for c in checks), "checks": [c.to_json() for c in checks]}


@router.get(
    "/api/health",
    response_model=Health,
    response_model_exclude_none=True,
    summary="everything backups need, checked (200 with healthy false when not)",
)
async def health(
    request: Request, context: Annotated[ApiContext, Depends(api_context)]
) -> dict[str, Any]:
    """The checks of `jarvis-tui health --json`. 200 whether healthy or not: read
    `healthy` (`jq -e .healthy`); a 5xx means the server failed, never the backups.
    Requests arriving while a run is under way share its answer."""
    shared = getattr(request.app.state, "health_run", None)
    if shared is None:  # one per application, created on its event loop
        shared = request.app.state.health_run = SharedRun(lambda: _run_checks(context))
    return await shared.answer()
