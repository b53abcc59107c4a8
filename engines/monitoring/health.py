"""`jarvis-tui health` (the guide's `health:check`): is everything a backup needs in order?

Database and Redis reachable, the repository writable with free space, S3
reachable, the newest complete backup complete on every copy destination, the key
loaded and matching the newest artifacts, the scheduler alive, and each source's
newest good backup younger than BACKUP_MAX_AGE_HOURS. Each source with a server
probes it (`Source.reachable`).
"""

from dataclasses import asdict, dataclass
from datetime import datetime

from engines.catalog import LATEST, Catalog
from engines.config import Settings
from engines.destinations import repository_from_settings
from engines.destinations.s3 import S3Destination
from engines.errors import JarvisError, NotFoundError
from engines.keys import keyring_from_settings
from engines.monitoring.watchdog import backup_freshness, configured_sources, disk_space
from engines.repository.offsite import offsite_status
from engines.repository.whereabouts import SYNC_HINT, copy_destination_names, set_places
from engines.scheduling.schedules import describe_holder, scheduler_holder, schedules_from
from engines.sources import get_source


@dataclass(frozen=True)
class HealthCheck:
    name: str
    ok: bool
    detail: str

    def to_json(self) -> dict:
        return asdict(self)


def check_sources(settings: Settings) -> list[HealthCheck]:
    checks = []
    for kind in configured_sources(settings):
        try:
            answer = get_source(kind).reachable(settings)
        except Exception as error:  # a probe reports, it never crashes the check
            detail = (
                str(error) if isinstance(error, JarvisError) else f"{type(error).__name__}: {error}"
            )
            checks.append(HealthCheck(f"{kind} reachable", False, detail))
            continue
        if answer is not None:  # None: a source without a server
            checks.append(HealthCheck(f"{kind} reachable", True, answer))
    return checks


def check_repository(settings: Settings) -> list[HealthCheck]:
    problems = repository_from_settings(settings).probe()
    writable = HealthCheck(
        "repository writable", not problems, "; ".join(problems) or str(settings.repository_dir)
    )
    space = disk_space(settings)
    free = HealthCheck(
        "free space",
        not space.low,
        f"{space.free_percent:.1f}% free ({space.free_bytes // 2**20} MiB); alert below "
        f"{space.threshold_percent}% (BACKUP_MIN_FREE_PERCENT)",
    )
    return [writable, free]


def check_s3(settings: Settings) -> list[HealthCheck]:
    destination = S3Destination.from_settings(settings)
    if destination is None:
        return []
    problems = destination.probe()
    detail = "; ".join(problems) or f"bucket {destination.bucket}"
    return [HealthCheck("S3 reachable", not problems, detail)]


def check_offsite(settings: Settings, catalog: Catalog) -> list[HealthCheck]:
    """Per copy destination: the newest complete backup is confirmed there whole, and no
    copy there is recorded failed (the catalog's copy states; no request to S3)."""
    destinations = copy_destination_names(settings)
    if not destinations:
        return []
    try:
        newest = catalog.get_backup_set(LATEST)
    except NotFoundError:
        newest = None
    places = set_places(catalog, [newest.id], destinations)[newest.id] if newest else None
    checks = []
    for status in offsite_status(catalog, destinations):
        name = status.destination
        problems = []
        if places is not None and newest is not None and not places.complete_on(name):
            gaps = [gap.removeprefix(f"{name}: ") for gap in places.gaps(name)]
            shown = "; ".join(gaps[:3]) + (f"; and {len(gaps) - 3} more" if len(gaps) > 3 else "")
            problems.append(
                f"the newest complete backup {newest.id} is not complete there: {shown}"
            )
        if status.failed_copies:
            problems.append(f"{status.failed_copies} artifact copy(ies) recorded failed")
        if problems:
            checks.append(
                HealthCheck(f"{name} copies", False, f"{'; '.join(problems)}; {SYNC_HINT}")
            )
            continue
        if newest is None:
            detail = "no complete backup yet"
        else:
            detail = f"newest complete backup {newest.id} is complete there"
            detail += f"; {status.complete_sets} set(s) complete there"
            if status.incomplete_sets:
                detail += f", {status.incomplete_sets} older one(s) not"
        checks.append(HealthCheck(f"{name} copies", True, detail))
    return checks


def check_key(settings: Settings, catalog: Catalog) -> list[HealthCheck]:
    try:
        keyring = keyring_from_settings(settings)
    except JarvisError as error:
        return [HealthCheck("encryption key", False, str(error))]
    known = {keyring.current.key_id, *(k.key_id for k in keyring.previous)}
    problems, older = [], []
    for source, good in sorted(catalog.last_good_backups().items()):
        for artifact in catalog.artifacts_of(good.set_id):
            if artifact.source != source or artifact.status != "complete" or not artifact.key_id:
                continue
            if artifact.key_id not in known:
                problems.append(
                    f"{artifact.relpath} needs key id {artifact.key_id}, which is not configured "
                    "(add it to BACKUP_ENCRYPTION_KEY_PREVIOUS)"
                )
            elif artifact.key_id != keyring.current.key_id:
                older.append(artifact.relpath)
    if problems:
        return [HealthCheck("encryption key", False, "; ".join(problems))]
    detail = f"key id {keyring.current.key_id} loaded"
    if older:
        detail += f"; {len(older)} newest artifact(s) use a previous key (still configured)"
    return [HealthCheck("encryption key", True, detail)]


def check_scheduler(settings: Settings) -> list[HealthCheck]:
    enabled = [s.name for s in schedules_from(settings) if s.enabled]
    holder = scheduler_holder(settings)
    if not enabled:
        return [HealthCheck("scheduler", True, "no schedule is enabled")]
    return [HealthCheck("scheduler", holder is not None, describe_holder(holder))]


def check_freshness(settings: Settings, catalog: Catalog, now: datetime) -> list[HealthCheck]:
    return [
        HealthCheck(f"{fresh.source} backup age", not fresh.too_old, fresh.text)
        for fresh in backup_freshness(settings, catalog, now)
    ]


def run_health_checks(settings: Settings, catalog: Catalog, now: datetime) -> list[HealthCheck]:
    checks = [
        HealthCheck(
            "settings",
            not settings.problems,
            "; ".join(settings.problems) or "valid",
        )
    ]
    checks += check_sources(settings)
    checks += check_repository(settings)
    checks += check_s3(settings)
    checks += check_offsite(settings, catalog)
    checks += check_key(settings, catalog)
    checks += check_scheduler(settings)
    checks += check_freshness(settings, catalog, now)
    return checks
