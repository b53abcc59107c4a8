"""The API's routes, one module per part of the guide's API; ROUTERS needs the token."""

from fastapi import APIRouter

from jarvis_tui.api.routes import (
    actions,
    backups,
    download,
    health,
    jobs,
    metrics,
    overview,
    restore,
    schedule,
)

# The monitoring routes first: their fixed paths must not be taken for a backup id.
ROUTERS: list[APIRouter] = [
    overview.router,
    schedule.router,
    health.router,
    backups.router,
    download.router,
    metrics.router,
    actions.router,
    jobs.router,
    restore.router,
]
