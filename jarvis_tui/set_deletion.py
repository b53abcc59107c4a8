"""Whether this build can delete one backup set on request (the engine's delete action)."""

import importlib.util

DELETE_MODULE = "engines.actions.delete_set"


def deletion_available() -> bool:
    return importlib.util.find_spec(DELETE_MODULE) is not None
