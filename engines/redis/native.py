"""The Redis engine's C halves, each None when it was not built (no C compiler at
install time); the Python code beside it then does the same work, only slower.

    json_to_resp  the JSON restore's compile step (_json_to_resp.c; json_blocks)
    rdb_walk      the RDB structure walk (_rdb_walk.c; rdb_format)
"""

import importlib
from types import ModuleType


def _built(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(f"engines.redis.{name}")
    except ImportError:
        return None


json_to_resp = _built("_json_to_resp")
rdb_walk = _built("_rdb_walk")
