"""Time as schedules and retention see it: an injectable clock and the configured zone."""

from collections.abc import Callable
from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo

import tzlocal

from engines.catalog.times import utc_now
from engines.config import Settings

Clock = Callable[[], datetime]
"""Returns an aware "now"; tests pass a settable one instead of sleeping."""

system_clock: Clock = utc_now


def configured_timezone(settings: Settings) -> tzinfo:
    """BACKUP_TIMEZONE, else the host's zone (TZ, /etc/localtime)."""
    if settings.backup_timezone:
        return ZoneInfo(settings.backup_timezone)
    return tzlocal.get_localzone()


def timezone_name(zone: tzinfo) -> str:
    return getattr(zone, "key", None) or str(zone)
