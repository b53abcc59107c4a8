"""The API's routes, one module per part of the guide's API; ROUTERS needs the token."""

from fastapi import APIRouter

from jarvis_tui.api.routes import actions, backups, jobs, metrics

ROUTERS: list[APIRouter] = [backups.router, metrics.router, actions.router, jobs.router]
