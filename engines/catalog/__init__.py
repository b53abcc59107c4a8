"""The catalog package: the only code in jarvis-tui that talks to SQLite."""

from engines.catalog.backups import LATEST
from engines.catalog.db import catalog_files
from engines.catalog.facade import DEFAULT_BUSY_TIMEOUT_MS, Catalog
from engines.catalog.jobs import ORPHAN_ERROR
from engines.catalog.rows import (
    Alert,
    Artifact,
    BackupSet,
    Copy,
    Job,
    JobEvent,
    PlacedArtifact,
    SetCopyCount,
)
from engines.catalog.schema import SCHEMA_VERSION
from engines.catalog.set_pages import SetFilter, SetPage, SetPosition

__all__ = [
    "DEFAULT_BUSY_TIMEOUT_MS",
    "LATEST",
    "ORPHAN_ERROR",
    "SCHEMA_VERSION",
    "Alert",
    "Artifact",
    "BackupSet",
    "Catalog",
    "Copy",
    "Job",
    "JobEvent",
    "PlacedArtifact",
    "SetCopyCount",
    "SetFilter",
    "SetPage",
    "SetPosition",
    "catalog_files",
]
