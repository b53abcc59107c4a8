"""What the catalog pane shows, built off the UI thread.

`CatalogIndex` keeps every backup set with a lowercase search text, so a
filter over 10,000 sets is one pass of substring tests (a few milliseconds)
and never a query. Artifact types and storage places come per visible row
(`load_extras`) and in full for the selected set (`load_detail`); where a set lives
and what its copies lack is the engine's word (engines/repository/whereabouts.py).
"""

from collections.abc import Iterable
from dataclasses import dataclass

from engines.catalog import Artifact, BackupSet, Copy
from engines.repository.whereabouts import SetPlaces, copy_destination_names, set_places
from jarvis_tui.engine_access import EngineAccess
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

    def __init__(self, sets: list[BackupSet], copy_places: tuple[str, ...] = ()):
        self.sets = sets
        self.copy_places = copy_places  # the configured copy destinations
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
    copies_short: bool = False  # a copy destination lacks some of it (missing or failed)
    copies_failed: bool = False


def extras_from(artifacts: list[Artifact], places: SetPlaces) -> SetExtras:
    modes = sorted({a.mode for a in artifacts})
    short = any(not places.complete_on(d) for d in places.destinations) and bool(places.artifacts)
    return SetExtras("+".join(modes) or "-", places.summary, short, places.has_failed_copies)


def copy_places(access: EngineAccess) -> tuple[str, ...]:
    """The configured copy destinations' names (none: only the repository)."""
    return copy_destination_names(access.settings)


def load_extras(access: EngineAccess, set_ids: Iterable[str]) -> dict[str, SetExtras]:
    catalog = access.catalog()
    wanted = list(set_ids)
    places = set_places(catalog, wanted, copy_places(access))
    return {set_id: extras_from(catalog.artifacts_of(set_id), places[set_id]) for set_id in wanted}


@dataclass(frozen=True)
class ArtifactDetail:
    artifact: Artifact
    copies: list[Copy]
    missing_on: tuple[str, ...] = ()  # configured copy destinations with no copy of it


@dataclass(frozen=True)
class SetDetail:
    backup_set: BackupSet
    artifacts: list[ArtifactDetail]
    places: SetPlaces | None = None

    @property
    def complete_artifacts(self) -> list[Artifact]:
        return [d.artifact for d in self.artifacts if d.artifact.status == "complete"]


def load_detail(access: EngineAccess, set_id: str) -> SetDetail:
    catalog = access.catalog()
    backup_set = catalog.get_backup_set(set_id)
    places = set_places(catalog, [set_id], copy_places(access))[set_id]
    by_relpath = {placed.relpath: placed for placed in places.artifacts}
    artifacts = []
    for artifact in catalog.artifacts_of(set_id):
        placed = by_relpath.get(artifact.relpath)
        missing = (
            ()
            if placed is None
            else tuple(d for d in places.destinations if placed.copies.get(d) is None)
        )
        artifacts.append(ArtifactDetail(artifact, catalog.copies_of(artifact.id), missing))
    return SetDetail(backup_set, artifacts, places)


def compare_snapshots(access: EngineAccess, first: str, second: str):
    """The engine's SnapshotDiff from files snapshot `first` to `second` (the `diff` verb: a
    read, no job, no lock), its paths as the CLI shows them: a name's control characters
    (ESC sequences that would retitle or clear the terminal) and bytes that are not UTF-8
    escaped. Decrypts both manifests: only worker threads call it."""
    from dataclasses import replace

    from engines.actions.verbs import Request, run_verb
    from engines.store.snapshots import shown
    from engines.workspace import Workspace

    with Workspace.open(access.settings) as workspace:
        diff = run_verb(workspace, "diff", Request(reference=first, second_reference=second))
    return replace(
        diff,
        added=[shown(path) for path in diff.added],
        removed=[shown(path) for path in diff.removed],
        changed=[(shown(path), what) for path, what in diff.changed],
    )
