"""The FastAPI application: its routers, error answers and authentication.

The OpenAPI document is served behind the token like everything but /api/live, so
FastAPI's own (open) document and docs pages are turned off.
"""

from typing import Any

from fastapi import APIRouter, Depends, FastAPI

from jarvis_tui.api.auth import BearerAuth
from jarvis_tui.api.context import ApiContext
from jarvis_tui.api.duplicate_keys import NO_DUPLICATE_KEYS
from jarvis_tui.api.errors import ERROR_RESPONSES, MAX_BODY_BYTES, install_error_handlers
from jarvis_tui.api.known_query import KNOWN_QUERY
from jarvis_tui.api.openapi_document import honest_openapi
from jarvis_tui.api.routes import ROUTERS, live

OPENAPI_URL = "/api/openapi.json"


def build_app(context: ApiContext, auth: BearerAuth) -> FastAPI:
    app = FastAPI(
        title="Jarvis backup API",
        version="1",
        description="Backups, verification, downloads, restores and jobs of the Jarvis "
        "backup console, on the same catalog as the CLI and the console. Every endpoint "
        "but /api/live needs `Authorization: Bearer <JARVIS_API_TOKEN>`.",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.context = context
    app.state.auth = auth
    install_error_handlers(app)
    app.include_router(live.router)
    app.state.open_routes = tuple(live.router.routes)  # the only ones without the token
    # The token first: an unknown query parameter is told only to a caller holding it.
    guarded = APIRouter(
        dependencies=[Depends(auth), KNOWN_QUERY, NO_DUPLICATE_KEYS], responses=ERROR_RESPONSES
    )
    for router in ROUTERS:
        guarded.include_router(router)

    @guarded.get(OPENAPI_URL, include_in_schema=False)
    def openapi_document() -> dict[str, Any]:
        return app.openapi()

    # The limit on the routes, inside the app's middleware: a declared length over it is
    # answered by DeclaredBodyLimit (JSON) first, one that grows past it by _http_error.
    app.include_router(guarded, max_body_size=MAX_BODY_BYTES)
    app.openapi = honest_openapi(app, {route.path for route in live.router.routes})  # type: ignore[method-assign]
    return app
