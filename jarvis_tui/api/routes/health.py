"""`GET /api/health`: the `jarvis-tui health` checks, as `health --json` prints them.

It answers 200 whether healthy or not, with `healthy` false and the failing checks
when something is wrong: the status says the question was answered, the body gives the
answer, and a 5xx keeps meaning that the server itself failed. A probe that needs a
yes or no reads `healthy` (`curl -fsS -H "Authorization: Bearer $T" .../api/health |
jq -e .healthy`); the bare liveness probe is `GET /api/live`.

The checks reach PostgreSQL, Redis and S3 with the engine's own timeouts, so the route
is a plain `def`: FastAPI runs it in its thread pool and a slow server never stalls
the other requests.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from engines.catalog.times import utc_now
from engines.errors import JarvisError
from engines.monitoring.health import HealthCheck, run_health_checks
from jarvis_tui.api.context import ApiContext, api_context

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


@router.get(
    "/api/health",
    response_model=Health,
    response_model_exclude_none=True,
    summary="everything backups need, checked (200 with healthy false when not)",
)
def health(context: Annotated[ApiContext, Depends(api_context)]) -> dict[str, Any]:
    try:
        checks = run_health_checks(context.settings, context.catalog, utc_now())
    except JarvisError as error:  # as `jarvis-tui health`: an unreadable catalog is a check
        checks = [HealthCheck("catalog", False, str(error))]
    return {"healthy": all(c.ok for c in checks), "checks": [c.to_json() for c in checks]}
