"""What the catalog pane shows, built off the UI thread.

`CatalogIndex` keeps every backup set with a lowercase search text, so a
filter over 10,000 sets is one pass of substring tests (a few milliseconds)
and never a query. Artifact types and storage places come per visible row
(`load_extras`) and in full for the selected set (`load_detail`).
"""

from collections.abc import Iterable
from dataclasses import dataclass

from engines.catalog import Artifact, BackupSet, Catalog, Copy
from jarvis_tui.formatting import local_moment

VERIFIED_WORDS = {"ok": "verified", "failed": "verify-failed", None: "unverified"}


def search_text(backup_set: BackupSet) -> str:
    return " ".join(
        part
        for part in (
            backup_set.id,
            backup_set.kind,
            backup_set.tier or "",
            backup_set.status,
            VERIFIED_WORDS.get(backup_set.verified_state, ""),
            local_moment(backup_set.created_at),
            backup_set.note or "",
            backup_set.error or "",
        )
        if part
    ).lower()


class CatalogIndex:
    """Every set, newest first, ready to filter."""

    def __init__(self, sets: list[BackupSet]):
        self.sets = sets
        self._texts = [search_text(s) for s in sets]

    def __len__(self) -> int:
        return len(self.sets)

    def filter(self, query: str) -> list[BackupSet]:
        """Sets whose text holds every word of `query` (case-insensitive)."""
        words = query.lower().split()
        if not words:
            return self.sets
        if len(words) == 1:
            word = words[0]
            return [s for s, text in zip(self.sets, self._texts, strict=True) if word in text]
        return [
            s
            for s, text in zip(self.sets, self._texts, strict=True)
            if all(word in text for word in words)
        ]


@dataclass(frozen=True)
class SetExtras:
    """Per-set facts that need the artifacts: their types and where they are stored."""

    types: str
    places: str


def extras_from(artifacts: list[Artifact], copies: Iterable[Copy]) -> SetExtras:
    modes = sorted({a.mode for a in artifacts})
    places = sorted({c.destination for c in copies if c.state == "stored"})
    return SetExtras("+".join(modes) or "-", ",".join(places) or "-")


def load_extras(catalog: Catalog, set_ids: Iterable[str]) -> dict[str, SetExtras]:
    found = {}
    for set_id in set_ids:
        artifacts = catalog.artifacts_of(set_id)
        copies = [copy for a in artifacts for copy in catalog.copies_of(a.id)]
        found[set_id] = extras_from(artifacts, copies)
    return found


@dataclass(frozen=True)
class ArtifactDetail:
    artifact: Artifact
    copies: list[Copy]


@dataclass(frozen=True)
class SetDetail:
    backup_set: BackupSet
    artifacts: list[ArtifactDetail]

    @property
    def complete_artifacts(self) -> list[Artifact]:
        return [d.artifact for d in self.artifacts if d.artifact.status == "complete"]


def load_detail(catalog: Catalog, set_id: str) -> SetDetail:
    backup_set = catalog.get_backup_set(set_id)
    artifacts = [
        ArtifactDetail(artifact, catalog.copies_of(artifact.id))
        for artifact in catalog.artifacts_of(set_id)
    ]
    return SetDetail(backup_set, artifacts)
