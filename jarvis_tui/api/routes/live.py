"""`GET /api/live`: the bare liveness probe, the one endpoint without a token.

It says only that the server answers; everything about the backups is behind the
token (`GET /api/health`).
"""

from fastapi import APIRouter
from pydantic import BaseModel

router = APIRouter()


class Live(BaseModel):
    live: bool = True


@router.get("/api/live", response_model=Live, summary="liveness probe (no token)")
def live() -> Live:
    return Live()
