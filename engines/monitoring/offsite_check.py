"""Health's off-site check: the newest backups confirmed on every copy destination."""

from engines.catalog import LATEST, Catalog
from engines.config import Settings
from engines.errors import NotFoundError
from engines.monitoring.checks import HealthCheck
from engines.repository.offsite import offsite_status
from engines.repository.whereabouts import SYNC_HINT, copy_destination_names, set_places


def newest_backups(catalog: Catalog) -> list[str]:
    """The newest complete set and each source's newest good one (a PostgreSQL dump and
    base backup each): what must be off-site."""
    try:
        found = [catalog.get_backup_set(LATEST).id]
    except NotFoundError:
        found = []
    found += [set_id for _, set_id in sorted(catalog.newest_restorable_backups().items())]
    return list(dict.fromkeys(found))


def check_offsite(settings: Settings, catalog: Catalog) -> list[HealthCheck]:
    """Per copy destination: the newest backups (the newest complete set, each source's
    newest good one) are confirmed there whole, and no copy there is recorded failed.
    From the catalog's copy states: no request to S3."""
    destinations = copy_destination_names(settings)
    if not destinations:
        return []
    newest = newest_backups(catalog)
    places = set_places(catalog, newest, destinations)
    checks = []
    for status in offsite_status(catalog, destinations):
        name = status.destination
        behind = [places[set_id] for set_id in newest if not places[set_id].complete_on(name)]
        problems = []
        for behind_set in behind:
            gaps = [gap.removeprefix(f"{name}: ") for gap in behind_set.gaps(name)]
            shown = "; ".join(gaps[:3]) + (f"; and {len(gaps) - 3} more" if len(gaps) > 3 else "")
            problems.append(f"newest backup {behind_set.set_id} is not complete there: {shown}")
        if status.failed_copies:
            problems.append(f"{status.failed_copies} artifact copy(ies) recorded failed")
        if problems:
            detail = f"{'; '.join(problems)}; {SYNC_HINT}"
            checks.append(HealthCheck(f"{name} copies", False, detail))
            continue
        if not newest:
            detail = "no complete backup yet"
        else:
            detail = f"the newest backups ({', '.join(newest)}) are complete there"
            detail += f"; {status.complete_sets} set(s) complete there"
            if status.incomplete_sets:
                detail += f", {status.incomplete_sets} older one(s) not"
        checks.append(HealthCheck(f"{name} copies", True, detail))
    return checks
