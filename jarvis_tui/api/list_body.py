"""A JSON body from plain values, written as the response models would write it.

The list page (`GET /api/backups`) builds its items as plain dicts in the models' field
order and writes them here with orjson rather than validating a pydantic model per
item: times as `datetime.isoformat` (IsoTime's spelling, `+00:00`), compact, UTF-8,
the bytes pydantic's `dump_json` writes for the same items.
"""

from datetime import datetime
from typing import Any

import orjson


def list_body(items: list[dict[str, Any]]) -> bytes:
    # Any other value orjson cannot write fails in `datetime.isoformat` (TypeError).
    return orjson.dumps(items, default=datetime.isoformat, option=orjson.OPT_PASSTHROUGH_DATETIME)
