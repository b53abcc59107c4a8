"""A query parameter the route does not take is a bad request, not silently ignored.

`GET /api/jobs?stauts=running` would otherwise list every job, as if the filter had
been applied. Every guarded route takes it, as a dependency of the router app.py mounts
them on (after the token's check).
"""

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from jarvis_tui.api.errors import bad_request


def _query_names(dependant: Dependant) -> set[str]:
    """The route's query parameters and those of its dependencies."""
    names = {param.alias for param in dependant.query_params}
    for inner in dependant.dependencies:
        names |= _query_names(inner)
    return names


def reject_unknown_query(request: Request) -> None:
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    known = _query_names(route.dependant)
    for name in request.query_params:
        if name not in known:
            takes = ", ".join(sorted(known)) or "none"
            raise bad_request(f"{name}: not a parameter of this endpoint (it takes: {takes})", name)


KNOWN_QUERY = Depends(reject_unknown_query)
