"""Every error the API answers, as JSON with a stable code and one line of message.

`{"code": "not_found", "message": "no backup set 'x' in the catalog"}`; a bad field
also names it (`"field": "type"`). No traceback and no secret ever reaches a client:
an unexpected error is logged (masked) and answered as `internal`.
"""

import email.message
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from engines import errors
from engines.plumbing.error_text import error_text
from engines.plumbing.redaction import redact

logger = logging.getLogger("jarvis.api")

# Request bodies are JSON of a few hundred bytes; a larger one is refused (413) as soon
# as its Content-Length or its bytes so far pass this, never buffered whole (FastAPI
# reads a body before the token is checked, so an anonymous client could fill memory).
MAX_BODY_BYTES = 1 << 20


_TOO_LARGE = f"the request body is over {MAX_BODY_BYTES} bytes; requests take small JSON"


class ErrorBody(BaseModel):
    code: str
    message: str
    field: str | None = None


class ApiError(Exception):
    """An answer other than success, raised anywhere below a route."""

    def __init__(self, status: int, code: str, message: str, *, field: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field


def not_found(message: str) -> ApiError:
    return ApiError(404, "not_found", message)


def conflict(message: str) -> ApiError:
    return ApiError(409, "conflict", message)


def bad_request(message: str, field: str | None = None) -> ApiError:
    return ApiError(400, "bad_request", message, field=field)


# The engine's errors in HTTP terms; anything else of its kind is a failed request (500
# would say "a bug", which an engine's refusal is not).
_FOR_ENGINE_ERROR: tuple[tuple[type[errors.JarvisError], int, str], ...] = (
    (errors.NotFoundError, 404, "not_found"),
    (errors.RepositoryLockedError, 409, "conflict"),
    (errors.ReadOnlyBrowseError, 409, "read_only"),
    (errors.KeyNotAvailableError, 409, "key_missing"),
    (errors.IntegrityError, 422, "integrity"),
    (errors.SettingsError, 409, "invalid_settings"),
    (errors.InsufficientSpaceError, 507, "no_space"),
)

# Every status a route may answer with besides its success, for the OpenAPI document.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (400, "a bad parameter or body; `field` names it"),
        (401, "no bearer token, or a wrong one"),
        (404, "no such backup set or job"),
        (409, "a conflicting job runs, or the repository refuses the action"),
        (413, f"a request body over {MAX_BODY_BYTES} bytes (`too_large`)"),
        (500, "an unexpected error; the details are in the server's log"),
    )
}


def _answer(status: int, body: ErrorBody, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        status_code=status, content=body.model_dump(exclude_none=True), headers=headers
    )


def _field_of(location: tuple[Any, ...]) -> str:
    """`("body", "type")` -> `type`; `("query", "limit")` -> `limit`."""
    parts = [str(part) for part in location if part not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


async def _refused_caller(request: Request) -> JSONResponse | None:
    """The 401 of a guarded route's caller without the token, else None. FastAPI parses
    a JSON body before the route's dependencies run, so without this a body that is not
    JSON would be answered 400 to anyone, before the token is asked for."""
    auth = getattr(request.app.state, "auth", None)
    route = request.scope.get("route")
    if auth is None or route is None or route in getattr(request.app.state, "open_routes", ()):
        return None
    try:
        await auth(request)
    except ApiError as refusal:
        return await _api_error(request, refusal)
    return None


def is_json_media_type(content_type: str | None) -> bool:
    """As FastAPI decides to read a body as JSON: application/json or application/*+json."""
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


async def _validation_failed(request: Request, error: RequestValidationError) -> JSONResponse:
    refused = await _refused_caller(request)
    if refused is not None:
        return refused
    first = error.errors()[0] if error.errors() else {}
    field = _field_of(tuple(first.get("loc", ())))
    content_type = request.headers.get("content-type")
    if first.get("type") == "json_invalid":
        message = "the body is not valid JSON"
        field = "body"
    elif field == "body" and not is_json_media_type(content_type) and await request.body():
        # `curl -d '{...}'` without -H sends a form: FastAPI then reads no JSON at all.
        message = (
            f"the body must be JSON sent as Content-Type: application/json, not "
            f"{content_type or 'without a Content-Type'} (curl: add -H 'Content-Type: "
            "application/json')"
        )
    else:
        message = f"{field}: {first.get('msg', 'invalid value')}"
    return _answer(400, ErrorBody(code="bad_request", message=redact(message), field=field))


async def _api_error(_request: Request, error: ApiError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
    body = ErrorBody(code=error.code, message=redact(error.message), field=error.field)
    return _answer(error.status, body, headers)


async def _http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
    if error.status_code == 400:  # a body FastAPI could not parse, before the token's check
        refused = await _refused_caller(request)
        if refused is not None:
            return refused
    codes = {
        400: "bad_request",
        401: "unauthorized",
        404: "not_found",
        405: "method_not_allowed",
        413: "too_large",
    }
    message = str(error.detail)
    if error.status_code == 413:  # FastAPI's max_body_size
        message = _TOO_LARGE
    body = ErrorBody(code=codes.get(error.status_code, "http_error"), message=message)
    return _answer(error.status_code, body, getattr(error, "headers", None))


async def _engine_error(_request: Request, error: errors.JarvisError) -> JSONResponse:
    for kind, status, code in _FOR_ENGINE_ERROR:
        if isinstance(error, kind):
            return _answer(status, ErrorBody(code=code, message=error_text(error)))
    return _answer(409, ErrorBody(code="refused", message=error_text(error)))


async def _unexpected(request: Request, error: Exception) -> JSONResponse:
    if isinstance(error, OSError):
        return _answer(500, ErrorBody(code="os_error", message=error_text(error)))
    logger.error(
        "API: unexpected error on %s %s: %s",
        request.method,
        request.url.path,
        redact(f"{type(error).__name__}: {error}"),
        exc_info=error,
    )
    message = "unexpected error; this is a bug: the details are in the server's log"
    return _answer(500, ErrorBody(code="internal", message=message))


class DeclaredBodyLimit:
    """413 `too_large` as JSON for a request that declares a Content-Length over
    MAX_BODY_BYTES. FastAPI's max_body_size (Starlette's limiter) answers that case
    itself, in plain text, before any handler here; a body that passes the limit
    without declaring its length reaches _http_error as an HTTPException."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            length = Headers(scope=scope).get("content-length", "")
            if length.isdigit() and int(length) > MAX_BODY_BYTES:
                body = ErrorBody(code="too_large", message=_TOO_LARGE)
                await _answer(413, body)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    app.add_middleware(DeclaredBodyLimit)
    app.add_exception_handler(RequestValidationError, _validation_failed)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(errors.JarvisError, _engine_error)
    app.add_exception_handler(Exception, _unexpected)
