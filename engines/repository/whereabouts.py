"""Where each backup set lives: the repository (`local`) and every copy destination.

Read from the copy states the catalog records (engines/repository/copies.py writes
them after every backup and `sync`), never from a listing: no request to S3. A set is
complete off-site only when every complete artifact of it is confirmed `stored` on
every configured copy destination; an artifact without a copy recorded there is
missing, one whose copy failed says why. Backups, `pull` and `catalog rebuild` record
the `local` state; an artifact with no copy state at all comes from a catalog written
before copy states were, when the repository was the only place there was.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engines.catalog import Catalog, Copy, PlacedArtifact
from engines.config import Settings
from engines.destinations import REPOSITORY_KIND, copy_destinations
from engines.destinations.s3 import S3Destination

LOCAL = REPOSITORY_KIND
SYNC_HINT = "run `jarvis-tui sync` to copy what is missing"


def copy_destination_names(settings: Settings) -> tuple[str, ...]:
    """The places beside the repository whose copies count: the configured copy
    destinations; while browsing, the browsed prefix (the other host's S3 copy, where
    its catalog records every artifact stored)."""
    if settings.browsing:
        return (S3Destination.of_prefix(settings, settings.browse_prefix).name,)
    return tuple(destination.name for destination in copy_destinations(settings))


@dataclass(frozen=True)
class ArtifactPlaces:
    """One complete artifact: in the repository or not, and its copy on each destination."""

    relpath: str
    local: bool
    copies: dict[str, Copy | None]  # per configured copy destination; None: none recorded

    def state_on(self, destination: str) -> str:
        """`stored`, `failed`, or `missing` (never copied, pending, or deleted there)."""
        copy = self.copies.get(destination)
        return copy_word(None if copy is None else copy.state)

    def error_on(self, destination: str) -> str | None:
        copy = self.copies.get(destination)
        return copy.error if copy is not None and copy.state == "failed" else None

    def to_json(self) -> dict[str, Any]:
        return {
            "relpath": self.relpath,
            LOCAL: "stored" if self.local else "missing",
            **{
                name: {
                    "state": self.state_on(name),
                    "error": self.error_on(name),
                    "updated_at": copy.updated_at.isoformat() if copy else None,
                }
                for name, copy in self.copies.items()
            },
        }


@dataclass(frozen=True)
class SetPlaces:
    set_id: str
    destinations: tuple[str, ...]  # the configured copy destinations
    artifacts: tuple[ArtifactPlaces, ...]  # its complete artifacts

    @property
    def local_count(self) -> int:
        return sum(artifact.local for artifact in self.artifacts)

    def on(self, destination: str, state: str) -> list[ArtifactPlaces]:
        return [a for a in self.artifacts if a.state_on(destination) == state]

    def complete_on(self, destination: str) -> bool:
        return bool(self.artifacts) and len(self.on(destination, "stored")) == len(self.artifacts)

    @property
    def complete_offsite(self) -> bool:
        return bool(self.destinations) and all(self.complete_on(d) for d in self.destinations)

    @property
    def has_failed_copies(self) -> bool:
        return any(self.on(d, "failed") for d in self.destinations)

    def gaps(self, destination: str | None = None) -> list[str]:
        """One line per copy not confirmed (on `destination`, or anywhere), with the
        failure's text."""
        lines = []
        for name in self.destinations if destination is None else (destination,):
            for artifact in self.artifacts:
                state = artifact.state_on(name)
                if state == "failed":
                    lines.append(f"{name}: {artifact.relpath} failed: {artifact.error_on(name)}")
                elif state == "missing":
                    lines.append(f"{name}: {artifact.relpath} missing")
        if destination is None:
            lines += [
                f"{LOCAL}: {a.relpath} not in the repository" for a in self.artifacts if not a.local
            ]
        return lines

    @property
    def summary(self) -> str:
        """A short cell: `local`, `local+s3`, `local, s3 missing 2`, `s3 only`, ..."""
        return places_summary(
            len(self.artifacts),
            self.local_count,
            [
                (name, len(self.on(name, "failed")), len(self.on(name, "missing")))
                for name in self.destinations
            ],
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "where": self.summary,
            "complete_offsite": self.complete_offsite if self.destinations else None,
            "destinations": {
                name: {
                    "complete": self.complete_on(name),
                    "stored": len(self.on(name, "stored")),
                    "missing": [a.relpath for a in self.on(name, "missing")],
                    "failed": [
                        {"relpath": a.relpath, "error": a.error_on(name)}
                        for a in self.on(name, "failed")
                    ],
                }
                for name in self.destinations
            },
            "artifacts": [artifact.to_json() for artifact in self.artifacts],
        }


def copy_word(state: str | None) -> str:
    """A copy's state as the listings say it: `stored`, `failed`, or `missing` (never
    copied, pending, or deleted there)."""
    return state if state in ("stored", "failed") else "missing"


def is_local(states: Mapping[str, str]) -> bool:
    """Whether a complete artifact is in the repository, by its copies' states per
    destination: its `local` state, or none recorded at all (a catalog written before
    copy states were, when the repository was the only place there was)."""
    local = states.get(LOCAL)
    return local == "stored" if local is not None else not states


def places_summary(artifacts: int, local: int, short_of: Sequence[tuple[str, int, int]]) -> str:
    """`SetPlaces.summary` from counts: complete artifacts, those in the repository, and
    per copy destination its failed and missing copies."""
    if not artifacts:
        return "-"
    not_local = artifacts - local
    whole = [] if not_local else [LOCAL]
    short = []
    for name, failed, missing in short_of:
        if not failed and not missing:
            whole.append(name)
            continue
        words = [f"failed {failed}"] * bool(failed) + [f"missing {missing}"] * bool(missing)
        short.append(f"{name} {' '.join(words)}")
    if not_local == artifacts and whole and not short:
        return f"{'+'.join(whole)} only"
    if not_local:
        short.insert(0, f"{LOCAL} missing {not_local}")
    return ", ".join(filter(None, ["+".join(whole), *short]))


def _places(placed: PlacedArtifact, destinations: Sequence[str]) -> ArtifactPlaces:
    by_destination = {copy.destination: copy for copy in placed.copies}
    return ArtifactPlaces(
        placed.relpath,
        is_local({copy.destination: copy.state for copy in placed.copies}),
        {name: by_destination.get(name) for name in destinations},
    )


def set_places(
    catalog: Catalog, set_ids: Iterable[str] | None, destinations: Sequence[str]
) -> dict[str, SetPlaces]:
    """Where each set lives, by set id (every set with a complete artifact when None)."""
    wanted = None if set_ids is None else list(set_ids)
    grouped: dict[str, list[ArtifactPlaces]] = {set_id: [] for set_id in wanted or ()}
    for placed in catalog.placed_artifacts(wanted):
        grouped.setdefault(placed.set_id, []).append(_places(placed, destinations))
    names = tuple(destinations)
    return {set_id: SetPlaces(set_id, names, tuple(found)) for set_id, found in grouped.items()}
