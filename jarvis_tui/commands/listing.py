"""`list [SET]`: the catalog's backups, newest first, and where each one lives."""

import argparse
import dataclasses
from collections.abc import Sequence
from datetime import UTC

from engines.catalog import Artifact, BackupSet
from engines.repository.whereabouts import (
    LOCAL,
    SYNC_HINT,
    SetPlaces,
    copy_destination_names,
    set_places,
)
from jarvis_tui.commands.context import open_workspace
from jarvis_tui.exit_codes import ExitCode
from jarvis_tui.formatting import human_size
from jarvis_tui.output import print_json, print_table


def register(commands: argparse._SubParsersAction, words: Sequence[str] = ()) -> None:
    listing = commands.add_parser(
        "list",
        help="backups in the catalog, newest first, and where each one lives",
        description="Without SET: every backup set, newest first; with copy destinations "
        "(S3) configured, a WHERE column says where each set lives (`local+s3`, `local, "
        "s3 missing 2`, `s3 only`). With SET: its artifacts and each one's copies, with "
        "the text of every failed copy.",
    )
    listing.add_argument("backup", metavar="SET", nargs="?", help="a backup id, or `latest`")
    listing.add_argument(
        "--kind", help="only backups of this kind (full, postgres, redis, files, ...)"
    )
    listing.add_argument("--limit", type=int, default=None, help="at most this many")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=run_list)


def run_list(args: argparse.Namespace) -> ExitCode:
    with open_workspace(args) as workspace:
        catalog = workspace.catalog
        destinations = copy_destination_names(workspace.settings)
        if args.backup is not None:
            backup_set = catalog.get_backup_set(args.backup, kind=args.kind)
            places = set_places(catalog, [backup_set.id], destinations)[backup_set.id]
            artifacts = catalog.artifacts_of(backup_set.id)
            if args.json:
                print_json(set_json(backup_set, artifacts, places))
            else:
                print_set(backup_set, artifacts, places)
            return ExitCode.OK
        sets = catalog.list_backup_sets(kind=args.kind, limit=args.limit)
        places = set_places(catalog, [s.id for s in sets], destinations)
        if args.json:
            print_json([set_json(s, catalog.artifacts_of(s.id), places[s.id]) for s in sets])
            return ExitCode.OK
    if not sets:
        print("no backups yet; run `jarvis-tui backup full` or open the console")
        return ExitCode.OK
    print_sets(sets, places, bool(destinations))
    return ExitCode.OK


def set_json(backup_set: BackupSet, artifacts: list[Artifact], places: SetPlaces) -> dict:
    return {
        **dataclasses.asdict(backup_set),
        "artifacts": [dataclasses.asdict(a) for a in artifacts],
        "where": places.to_json(),
    }


def print_sets(sets: list[BackupSet], places: dict[str, SetPlaces], with_copies: bool) -> None:
    """One row per set; WHERE only when a copy destination is configured or a set is not
    wholly in the repository (with neither, every set would read `local`)."""
    where = {s.id: places[s.id].summary for s in sets}
    show_where = with_copies or any(text not in (LOCAL, "-") for text in where.values())
    headers = ("ID", "KIND", "TIER", "STATUS", "CREATED (UTC)", "FILES", "SIZE", "VERIFIED")
    rows = []
    for backup_set in sets:  # counts and sizes come with the listing (one query)
        row = (
            backup_set.id,
            backup_set.kind,
            backup_set.tier,
            backup_set.status,
            f"{backup_set.created_at.astimezone(UTC):%Y-%m-%d %H:%M}",
            backup_set.artifact_count,
            human_size(backup_set.stored_size),
            backup_set.verified_state,
        )
        rows.append((*row, where[backup_set.id]) if show_where else row)
    print_table((*headers, "WHERE") if show_where else headers, rows)


def print_set(backup_set: BackupSet, artifacts: list[Artifact], places: SetPlaces) -> None:
    print(
        f"{backup_set.id}: {backup_set.kind}, {backup_set.tier or '-'}, {backup_set.status}, "
        f"created {backup_set.created_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{human_size(backup_set.stored_size)}"
    )
    if backup_set.error:
        print(f"error: {backup_set.error}")
    where = f"where: {places.summary}"
    if places.destinations:
        where += "; complete off-site" if places.complete_offsite else "; NOT complete off-site"
    print(where)
    by_relpath = {a.relpath: a for a in places.artifacts}
    rows = []
    for artifact in artifacts:
        placed = by_relpath.get(artifact.relpath)
        if placed is None:  # not complete: it was never copied anywhere
            cells = [artifact.status] * (1 + len(places.destinations))
        else:
            cells = ["stored" if placed.local else "missing"]
            cells += [placed.state_on(name) for name in places.destinations]
        rows.append((artifact.relpath, human_size(artifact.stored_size), *cells))
    if rows:
        headers = ("ARTIFACT", "SIZE", LOCAL.upper(), *(d.upper() for d in places.destinations))
        print()
        print_table(headers, rows)
    gaps = places.gaps()
    if gaps:
        print()
        for line in gaps:
            print(f"  {line}")
        if places.destinations and not places.complete_offsite:
            print(SYNC_HINT)
