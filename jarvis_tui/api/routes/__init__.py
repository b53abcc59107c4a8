"""The API's routes, one module per part of the guide's API; ROUTERS needs the token."""

from fastapi import APIRouter

from jarvis_tui.api.routes import backups, metrics

ROUTERS: list[APIRouter] = [backups.router, metrics.router]
