"""Kinds of data, one module each, all with the face in `base.py`.

Adding a source touches one new module and one line of `SOURCE_MODULES`.
"""

import importlib

from engines.errors import JarvisError
from engines.sources.base import Source

SOURCE_MODULES: dict[str, str] = {
    "postgres": "engines.sources.postgres",
    "files": "engines.sources.files",
    "secrets": "engines.sources.secrets",
    "config": "engines.sources.config_files",
    "redis": "engines.sources.redis",
}


def get_source(kind: str) -> Source:
    try:
        module = SOURCE_MODULES[kind]
    except KeyError:
        known = ", ".join(sorted(SOURCE_MODULES)) or "none yet"
        raise JarvisError(f"unknown source {kind!r}; known sources: {known}") from None
    return importlib.import_module(module).SOURCE
