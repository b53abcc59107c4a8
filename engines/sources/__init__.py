"""The registry of sources: one entry per kind of data, the one list that names them.

Each kind's engine sits behind the face in `base.py` (which also declares its optional
abilities: health probe, restore drill, prune), in a module exposing `SOURCE`.
Everything that goes through the sources reads `SOURCES`: a full backup and the
console (in `full_order`), health probes, cleanup's prunes and the restore drills
(in the order below), the CLI's `backup`/`restore` commands. Adding a source is its
engine package, its `SOURCE` module here, one entry below and its recipe in
tests/test_source_contract.py; the console's restore wizard and the CLI module
(`jarvis_tui/commands/sources/<kind>.py`) are the only other places that name it.
"""

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engines.errors import JarvisError

if TYPE_CHECKING:  # the registry alone loads no engine: a command imports only its own
    from engines.sources.base import Source


@dataclass(frozen=True)
class SourceEntry:
    kind: str  # the word of the CLI, the catalog's `source` and the logs
    label: str  # what the console calls it
    full_order: int  # its place in `backup full` and on the console
    folder: str  # the repository folder its artifacts are stored in
    module: str  # exposes `SOURCE`; imported on first use, so a command loads only its own

    @property
    def source(self) -> "Source":
        return importlib.import_module(self.module).SOURCE


# In the order they joined, which health, status, cleanup and the restore drills follow;
# `full_order` is the guide's: the database first, configuration last.
SOURCES: tuple[SourceEntry, ...] = (
    SourceEntry("postgres", "PostgreSQL database", 1, "postgres", "engines.sources.postgres"),
    SourceEntry("files", "User files", 3, "files", "engines.sources.files"),
    SourceEntry(
        "secrets", "Secrets (.env and credentials)", 4, "secrets", "engines.sources.secrets"
    ),
    SourceEntry("config", "Configuration files", 5, "config", "engines.sources.config_files"),
    SourceEntry("redis", "Redis", 2, "redis", "engines.sources.redis"),
)


def source_kinds() -> list[str]:
    return [entry.kind for entry in SOURCES]


def in_full_order() -> list[SourceEntry]:
    return sorted(SOURCES, key=lambda entry: entry.full_order)


def source_entry(kind: str) -> SourceEntry:
    for entry in SOURCES:
        if entry.kind == kind:
            return entry
    known = ", ".join(sorted(source_kinds())) or "none yet"
    raise JarvisError(f"unknown source {kind!r}; known sources: {known}")


def get_source(kind: str) -> "Source":
    return source_entry(kind).source
