"""Which backup sets a restore wizard can offer for one kind of data."""

from dataclasses import dataclass
from typing import Any

from engines.catalog import BackupSet, Catalog

OFFERED = 200
GOOD_STATUSES = ("complete", "partial")
# A full backup set holds one artifact per source; a single-source set is named after it.
MULTI_SOURCE_KIND = "full"
ALTERNATIVE_CONTENTS = ("json",)  # Redis's JSON export beside its RDB snapshot
# A PostgreSQL base backup is the whole cluster, laid out into a data folder, never
# restored into a database as the wizard does.
NOT_OFFERED_MODES = ("base",)


@dataclass(frozen=True)
class RestorableSet:
    backup_set: BackupSet
    reference: str  # what the restore action is given: the set id, as on the command line
    metadata: dict[str, Any]  # the main artifact's sealed metadata


def restorable_sets(catalog: Catalog, kind: str) -> list[RestorableSet]:
    """Newest first: good sets holding a complete `kind` artifact."""
    candidates = catalog.list_backup_sets(kind=kind, limit=OFFERED)
    if kind != MULTI_SOURCE_KIND:
        candidates += catalog.list_backup_sets(kind=MULTI_SOURCE_KIND, limit=OFFERED)
    candidates.sort(key=lambda s: s.created_at, reverse=True)
    found = []
    for backup_set in candidates:
        if backup_set.status not in GOOD_STATUSES:
            continue
        artifacts = [
            a
            for a in catalog.artifacts_of(backup_set.id)
            if a.status == "complete" and a.source == kind and a.mode not in NOT_OFFERED_MODES
        ]
        main = [a for a in artifacts if a.metadata.get("content") != "globals"] or artifacts
        if not main:
            continue
        # A rebuilt catalog lists a set's artifacts in another order: the restore is given
        # the set (the engine picks the artifact its options ask for, RDB or JSON), and the
        # metadata shown is the alternative export's only when nothing else is there.
        main.sort(key=lambda a: a.metadata.get("content") in ALTERNATIVE_CONTENTS)
        found.append(RestorableSet(backup_set, backup_set.id, main[0].metadata))
        if len(found) >= OFFERED:
            break
    return found
