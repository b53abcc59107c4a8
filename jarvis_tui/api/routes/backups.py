"""`GET /api/backups` (newest first, filtered, paged) and `GET /api/backups/{id}`.

Pages are keyed by a cursor, not an offset: the catalog pages on the newest-first
order itself (engines/catalog/set_pages.py), so a backup finishing while a client walks
the pages neither repeats a set nor skips one, and a deep page costs what the first
does. The cursor is opaque to clients: they follow the `Link: <...>; rel="next"`
header (RFC 8288), which keeps the filters. A page reads the catalog in four queries
(count, sets, their artifacts, their copies), whatever its length, and is kept until
the catalog changes (jarvis_tui/api/page_cache.py): monitors poll the same page.
The page is written from plain values (backup_views.list_item, list_body.py) while
`response_model` documents its shape: validating some 500 models a page cost a third of
its time, and the values are the models' own (tests/test_api_backup_views.py).
"""

from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.datastructures import URL

from engines.catalog import SetFilter, SetPosition
from engines.catalog.rows import SET_STATUSES
from engines.repository.whereabouts import copy_destination_names, set_places
from engines.sources import source_kinds
from jarvis_tui.api.backup_models import BackupSetDetail, BackupSetSummary
from jarvis_tui.api.backup_views import detail_of, list_item
from jarvis_tui.api.context import ApiContext, api_context
from jarvis_tui.api.list_body import list_body
from jarvis_tui.api.page_cache import Answer, PageCache
from jarvis_tui.api.set_query import TIME_EXAMPLE, decode_cursor, encode_cursor, time_parameter

router = APIRouter(tags=["backups"])

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

SetKind = StrEnum("SetKind", {kind: kind for kind in ("full", *source_kinds())})  # type: ignore[misc]
Source = StrEnum("Source", {kind: kind for kind in source_kinds()})  # type: ignore[misc]
SetStatus = StrEnum("SetStatus", {status: status for status in SET_STATUSES})  # type: ignore[misc]


TimeQuery = Query(
    description=f"an ISO 8601 time with its zone (`{TIME_EXAMPLE}`)",
    json_schema_extra={"format": "date-time"},
)


@router.get(
    "/api/backups",
    response_model=list[BackupSetSummary],
    summary="backup sets, newest first",
    responses={
        200: {
            "headers": {
                "X-Total-Count": {
                    "description": "sets matching the filters, on all pages",
                    "required": True,
                    "schema": {"type": "integer", "minimum": 0},
                },
                "Link": {
                    "description": 'the next page, `<URL>; rel="next"`, when there is one',
                    "schema": {"type": "string"},
                },
            }
        }
    },
)
def list_backups(
    request: Request,
    context: Annotated[ApiContext, Depends(api_context)],
    kind: Annotated[SetKind | None, Query(description="the set's kind, as `list --kind`")] = None,
    source: Annotated[
        Source | None,
        Query(description="sets backing up this source: its own and the full sets holding it"),
    ] = None,
    status: Annotated[SetStatus | None, Query()] = None,
    since: Annotated[str | None, TimeQuery] = None,
    until: Annotated[str | None, TimeQuery] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(description="from the previous page's Link header")] = None,
) -> Response:
    """The catalog's sets started at or after `since` and before `until`, newest first,
    `limit` a page; `jq '.[0]'` is the last backup."""
    wanted = SetFilter(
        kind=None if kind is None else kind.value,
        source=None if source is None else source.value,
        status=None if status is None else status.value,
        since=time_parameter("since", since),
        until=time_parameter("until", until),
    )
    after = None if cursor is None else decode_cursor(cursor)
    url = str(request.url)

    def build() -> Answer:
        return _page_answer(context, wanted, limit, after, request.url)

    answer = _page_cache(request).get(url, context.catalog.change_marker(), build)
    return Response(answer.body, media_type="application/json", headers=answer.headers)


def _page_cache(request: Request) -> PageCache:
    # One per application (each its own catalog), made on first use.
    cache = getattr(request.app.state, "backup_pages", None)
    if cache is None:
        cache = request.app.state.backup_pages = PageCache()
    return cache


def _page_answer(
    context: ApiContext, wanted: SetFilter, limit: int, after: SetPosition | None, url: URL
) -> Answer:
    catalog = context.catalog
    page = catalog.page_backup_sets(wanted, limit=limit, after=after)
    artifacts = catalog.listed_artifacts_of_sets(s.id for s in page.sets)
    destinations = copy_destination_names(context.settings)
    items = [list_item(s, artifacts[s.id], destinations) for s in page.sets]
    headers = {"X-Total-Count": str(page.total)}
    if page.more:
        following = url.include_query_params(cursor=encode_cursor(page.positions[-1]))
        headers["Link"] = f'<{following}>; rel="next"'
    return Answer(list_body(items), headers)


@router.get(
    "/api/backups/{backup_id}",
    response_model=BackupSetDetail,
    summary="one backup set with its artifacts, copies and verification",
)
def get_backup(
    backup_id: str, context: Annotated[ApiContext, Depends(api_context)]
) -> BackupSetDetail:
    """`backup_id` is a set's id, or `latest` (the newest complete set, as `list latest`)."""
    catalog = context.catalog
    backup_set = catalog.get_backup_set(backup_id)  # NotFoundError: 404 naming it
    artifacts = catalog.artifacts_of(backup_set.id)
    destinations = copy_destination_names(context.settings)
    places = set_places(catalog, [backup_set.id], destinations)[backup_set.id]
    return detail_of(backup_set, artifacts, places)
