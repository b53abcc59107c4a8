"""A JSON body naming a field twice is a bad request, not the last one silently taken.

`{"type": "files", "type": "secrets"}` is valid JSON to Python's parser, which keeps the
last value: POST /api/backups started a secrets backup. The guarded routes take this as
a dependency after the token's check (an anonymous caller gets 401 first); FastAPI has
read and cached the body by then, so it is parsed again here, at most MAX_BODY_BYTES.
"""

import json
from typing import Any

from fastapi import Depends, Request

from jarvis_tui.api.errors import bad_request, is_json_media_type


class _Twice(ValueError):
    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise _Twice(key)
        found[key] = value
    return found


async def reject_duplicate_keys(request: Request) -> None:
    if not is_json_media_type(request.headers.get("content-type")):
        return
    body = await request.body()
    if not body:
        return
    try:
        json.loads(body, object_pairs_hook=_object)
    except _Twice as twice:
        raise bad_request(
            f"{twice.path}: given twice in the body; send each field once", twice.path
        ) from None
    except ValueError:
        return  # not JSON: FastAPI has answered that already


NO_DUPLICATE_KEYS = Depends(reject_duplicate_keys)
