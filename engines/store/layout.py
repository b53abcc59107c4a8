"""Where the files store keeps its objects inside the repository."""

import secrets

from engines.pipeline.compression import CODEC_SUFFIXES

SOURCE = "files"
PACKS_PREFIX = "files/packs/"
INDEX_PREFIX = "files/index/"
PACK_SUFFIX = ".pack"
INDEX_SUFFIX = ".idx"
SNAPSHOT_NAME = "snapshot.json"
NAME_BYTES = 16


def new_object_name() -> str:
    return secrets.token_hex(NAME_BYTES)


def pack_key(name: str) -> str:
    return f"{PACKS_PREFIX}{name[:2]}/{name}{PACK_SUFFIX}"


def index_key(name: str) -> str:
    return f"{INDEX_PREFIX}{name}{INDEX_SUFFIX}"


def is_snapshot_key(key: str) -> bool:
    """A manifest sits directly in `files/`, named `<set id>_snapshot.json.<gz|zst>.enc`."""
    if not key.startswith(f"{SOURCE}/") or key.count("/") != 1:
        return False
    return any(key.endswith(f"_{SNAPSHOT_NAME}{suffix}.enc") for suffix in CODEC_SUFFIXES.values())
