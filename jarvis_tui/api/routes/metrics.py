"""`GET /metrics`: Prometheus's text format (or OpenMetrics when the scraper asks for it),
behind the bearer token like every endpoint but /api/live; Prometheus sends it with
`authorization: {credentials: ...}` in its scrape config."""

import threading

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import CollectorRegistry

from jarvis_tui.api.metrics.collector import metrics_registry

router = APIRouter(tags=["metrics"])
_CREATING = threading.Lock()

TEXT = "text/plain"
OPENMETRICS = "application/openmetrics-text"


def _registry(request: Request) -> CollectorRegistry:
    """One private registry per app, made at the first scrape."""
    state = request.app.state
    with _CREATING:
        if getattr(state, "metrics_registry", None) is None:
            state.metrics_registry = metrics_registry(state.context)
        return state.metrics_registry


@router.get(
    "/metrics",
    summary="Prometheus metrics: backups, jobs, verification, alerts, space, WAL archiving",
    response_class=Response,
    responses={
        200: {
            "description": "Every metric, read from the catalog at this scrape",
            "content": {
                TEXT: {"schema": {"type": "string"}},
                OPENMETRICS: {"schema": {"type": "string"}},
            },
        }
    },
)
def metrics(request: Request) -> Response:
    encode, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encode(_registry(request)), media_type=content_type)
