"""The optional C extensions: each is None when it was not built (no C compiler at
install time), and the Python code beside it does the same work another way."""

import importlib
from types import ModuleType


def optional_extension(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None
