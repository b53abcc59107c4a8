"""The C half of a JSON restore (_json_to_resp.c), or None when it was not built (no C
compiler at install time): then Python does the same work, only slower."""

from types import ModuleType

native: ModuleType | None
try:
    from engines.redis import _json_to_resp as native
except ImportError:
    native = None
