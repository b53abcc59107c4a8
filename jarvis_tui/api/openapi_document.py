"""The OpenAPI document as the API really answers.

FastAPI declares a 422 "Validation Error" (HTTPValidationError) on every operation with
parameters or a body, but a bad request is answered 400 with ErrorBody (errors.py): those
422 entries go, and so do their schemas. A 422 a route declares itself (a stored file
that fails its check) stays. The bearer token, checked by a dependency FastAPI cannot
describe, is declared as the `bearer` security scheme of every operation but the open
ones (/api/live).
"""

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

_FASTAPI_422 = "#/components/schemas/HTTPValidationError"
_FASTAPI_SCHEMAS = ("HTTPValidationError", "ValidationError")
BEARER = {
    "type": "http",
    "scheme": "bearer",
    "description": "JARVIS_API_TOKEN: `Authorization: Bearer <token>`",
}


def _is_fastapi_422(response: dict[str, Any]) -> bool:
    content = response.get("content", {}).get("application/json", {})
    return content.get("schema", {}).get("$ref") == _FASTAPI_422


def made_honest(document: dict[str, Any], open_paths: set[str]) -> dict[str, Any]:
    for path, operations in document.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.get("responses", {})
            if "422" in responses and _is_fastapi_422(responses["422"]):
                del responses["422"]
            if path not in open_paths:
                operation["security"] = [{"bearer": []}]
    components = document.setdefault("components", {})
    for name in _FASTAPI_SCHEMAS:
        components.get("schemas", {}).pop(name, None)
    components.setdefault("securitySchemes", {})["bearer"] = BEARER
    return document


def honest_openapi(app: FastAPI, open_paths: set[str]) -> Callable[[], dict[str, Any]]:
    """`app.openapi` that builds FastAPI's document once and makes it honest."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = made_honest(build(), open_paths)
        return app.openapi_schema

    return openapi
