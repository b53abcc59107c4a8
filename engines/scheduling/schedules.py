"""The schedules the settings define, their fire times, and who runs them.

Light enough for `status` and `health` to import: the running scheduler lives
in `engines/scheduling/scheduler.py`.
"""

from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from apscheduler.triggers.cron import CronTrigger

from engines.catalog.times import parse_iso
from engines.config import Settings
from engines.repository.lock import read_holder
from engines.scheduling.clock import configured_timezone
from engines.scheduling.cron import CronTimes, cron_trigger, describe_cron
from engines.scheduling.moments import moment_words

SCHEDULER_LOCK_NAME = ".scheduler.lock"
TIERS_BY_RANK = ("daily", "weekly", "monthly")


@dataclass(frozen=True)
class ScheduleSpec:
    name: str
    variable: str  # BACKUP_<X>: its _ENABLED and _TIME settings
    action: str  # backup, cleanup or drill
    label: str


SCHEDULE_SPECS = (
    ScheduleSpec("daily", "BACKUP_DAILY", "backup", "daily full backup"),
    ScheduleSpec("weekly", "BACKUP_WEEKLY", "backup", "weekly full backup"),
    ScheduleSpec("monthly", "BACKUP_MONTHLY", "backup", "monthly full backup"),
    ScheduleSpec("cleanup", "BACKUP_CLEANUP", "cleanup", "retention and prune"),
    ScheduleSpec("verify", "BACKUP_VERIFY_RESTORE", "drill", "restore drill"),
)


@dataclass(frozen=True)
class Schedule:
    spec: ScheduleSpec
    cron: str
    enabled: bool
    times: CronTimes
    trigger: CronTrigger  # wakes the BackgroundScheduler; `times` decides what is due

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def words(self) -> str:
        return describe_cron(self.cron)

    def next_after(self, moment: datetime) -> datetime | None:
        """The first fire time strictly after `moment`, in UTC."""
        return self.times.next_after(moment)

    def fire_times(
        self, after: datetime, until: datetime, limit: int
    ) -> tuple[list[datetime], bool]:
        """Fire times in (after, until], at most `limit`; True as well when more were cut."""
        found: list[datetime] = []
        moment = self.next_after(after)
        while moment is not None and moment <= until:
            if len(found) == limit:
                return found, True
            found.append(moment)
            moment = self.next_after(moment)
        return found, False


def schedules_from(settings: Settings, zone: tzinfo | None = None) -> list[Schedule]:
    zone = zone or configured_timezone(settings)
    found = []
    for spec in SCHEDULE_SPECS:
        cron = getattr(settings, f"{spec.variable.lower()}_time")
        enabled = getattr(settings, f"{spec.variable.lower()}_enabled")
        found.append(Schedule(spec, cron, enabled, CronTimes(cron, zone), cron_trigger(cron, zone)))
    return found


def takes_base_backup(base_schedule: str, tier: str) -> bool:
    """Does a scheduled backup of `tier` also take a PostgreSQL base backup, given
    BACKUP_PITR_BASE_SCHEDULE (daily, weekly, monthly: with the backups of that tier and
    above; off: never)? Whether the server archives through wal-push is asked at the run."""
    if base_schedule not in TIERS_BY_RANK or tier not in TIERS_BY_RANK:
        return False
    return TIERS_BY_RANK.index(tier) >= TIERS_BY_RANK.index(base_schedule)


def scheduler_holder(settings: Settings) -> dict[str, Any] | None:
    """Who runs the schedules for this repository (pid, host, purpose, since), or None."""
    return read_holder(settings.repository_dir, name=SCHEDULER_LOCK_NAME)


def describe_holder(
    holder: dict[str, Any] | None, now: datetime | None = None, zone: tzinfo | None = None
) -> str:
    """Who holds the schedules; with `now` and `zone`, since when in the operator's words."""
    if holder is None:
        return "nobody: start `jarvis-tui --run-scheduled` or open the console"
    since = holder.get("started_at")
    if since and now is not None and zone is not None:
        with suppress(ValueError):  # a lock file another version wrote: shown as it is
            since = moment_words(parse_iso(str(since)), now, zone)
    return (
        f"{holder.get('purpose', 'scheduler')}, pid {holder.get('pid')} on "
        f"{holder.get('host')} since {since}"
    )
