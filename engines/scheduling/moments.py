"""A moment in the operator's words: "02:00 today (in 3 h)", "09:30 yesterday (15 h ago)"."""

from datetime import datetime, timedelta, tzinfo

DAY_NAMES = {-1: "yesterday", 0: "today", 1: "tomorrow"}


def span_words(delta: timedelta) -> str:
    """3 h, 16 h 30 min, 45 min, 2 d 1 h; rounded down to the minute."""
    minutes = int(abs(delta).total_seconds() // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min" if minutes else "less than a minute"


def moment_words(moment: datetime, now: datetime, zone: tzinfo) -> str:
    """The time of day, the day relative to `now` (a date beyond), and how far away it is."""
    local, local_now = moment.astimezone(zone), now.astimezone(zone)
    day = DAY_NAMES.get((local.date() - local_now.date()).days, f"{local:%Y-%m-%d}")
    distance = span_words(moment - now)
    relative = f"in {distance}" if moment >= now else f"{distance} ago"
    return f"{local:%H:%M} {day} ({relative})"
