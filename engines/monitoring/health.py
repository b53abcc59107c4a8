"""`jarvis-tui health` (the guide's `health:check`): is everything a backup needs in order?

Database and Redis reachable, the repository writable with free space, S3
reachable, the newest backups complete on every copy destination, the key
loaded and matching the newest artifacts, the scheduler alive, and each source's
newest good backup younger than BACKUP_MAX_AGE_HOURS. Each source with a server
probes it (`Source.reachable`). While PostgreSQL archives WAL: the archiver, its lag and
the recoverable window with its gaps (pitr_check).
"""

from datetime import datetime

from engines.catalog import Catalog
from engines.config import Settings
from engines.destinations import repository_from_settings
from engines.destinations.s3 import S3Destination
from engines.errors import JarvisError
from engines.keys import keyring_from_settings
from engines.monitoring.checks import HealthCheck
from engines.monitoring.offsite_check import check_offsite
from engines.monitoring.pitr_check import check_pitr
from engines.monitoring.watchdog import backup_freshness, configured_sources, disk_space
from engines.scheduling.clock import configured_timezone
from engines.scheduling.schedules import describe_holder, scheduler_holder, schedules_from
from engines.sources import get_source


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
    if settings.browsing:  # another host's prefix: reachable and a repository, no writes
        where = f"s3://{settings.s3_bucket}/{settings.browse_prefix}, read-only"
        return [HealthCheck("browsed repository", not problems, "; ".join(problems) or where)]
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


def check_key(settings: Settings, catalog: Catalog) -> list[HealthCheck]:
    try:
        keyring = keyring_from_settings(settings)
    except JarvisError as error:
        return [HealthCheck("encryption key", False, str(error))]
    known = {keyring.current.key_id, *(k.key_id for k in keyring.previous)}
    problems, older = [], []
    # Each source's newest backup a restore picks (a PostgreSQL dump and base backup each).
    for what, set_id in sorted(catalog.newest_restorable_backups().items()):
        for artifact in catalog.artifacts_of(set_id):
            if what not in (artifact.source, f"{artifact.source} base backup"):
                continue
            if artifact.status != "complete" or not artifact.key_id:
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
    warning = ""
    if older:
        detail += f"; {len(older)} newest artifact(s) use a previous key (still configured)"
        warning = (
            "keep the previous key in BACKUP_ENCRYPTION_KEY_PREVIOUS until those backups "
            "are sealed again under the current one (rekey) or gone"
        )
    return [HealthCheck("encryption key", True, detail, warning)]


def check_scheduler(settings: Settings, now: datetime) -> list[HealthCheck]:
    """Who holds the schedules, and since when in the operator's words (not ISO)."""
    if settings.browsing:
        return [HealthCheck("scheduler", True, "browsing read-only: no schedules run here")]
    enabled = [s.name for s in schedules_from(settings) if s.enabled]
    holder = scheduler_holder(settings)
    if not enabled:
        warning = "no backup runs by itself: enable a schedule (BACKUP_DAILY_ENABLED, ...)"
        return [HealthCheck("scheduler", True, "no schedule is enabled", warning)]
    detail = describe_holder(holder, now, configured_timezone(settings))
    return [HealthCheck("scheduler", holder is not None, detail)]


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
    checks += check_scheduler(settings, now)
    checks += check_freshness(settings, catalog, now)
    if not any(check.name == "postgres reachable" and not check.ok for check in checks):
        checks += check_pitr(settings, catalog, now)  # else a second wait for a dead server
    return checks
