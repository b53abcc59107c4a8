"""Words and numbers as the console shows them: ages, moments, rates, bars.

Pure functions (no textual): the panes, the tests and the benchmark share them.
"""

from datetime import datetime, timedelta

BAR_FULL = "█"
BAR_EMPTY = "░"
# Units whose rate means something; parts, steps or sets a second do not.
RATE_UNITS = ("bytes", "keys", "objects", "files")


def human_size(size: int | None) -> str:
    """`512 B`, `4.4 KiB`, `1.2 GiB`; `-` when unknown."""
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def local_moment(moment: datetime | None) -> str:
    """`2024-05-01 02:00` in the console's time zone (TZ), or `-`."""
    if moment is None:
        return "-"
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")


def short_moment(moment: datetime | None, now: datetime) -> str:
    """Today's moments as `14:05`, older ones with their date."""
    if moment is None:
        return "-"
    local, today = moment.astimezone(), now.astimezone()
    if local.date() == today.date():
        return local.strftime("%H:%M:%S")
    return local.strftime("%Y-%m-%d %H:%M")


def duration(delta: timedelta) -> str:
    """`45 s`, `12 min`, `3 h 05 min`, `4 d 2 h`: the two largest units that matter."""
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s" if minutes < 10 else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def age(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "never"
    if moment > now:
        return f"in {duration(moment - now)}"
    return f"{duration(now - moment)} ago"


def rate(done: int, seconds: float, unit: str) -> str:
    if seconds <= 0 or done <= 0:
        return "-"
    return speed(done / seconds, unit)


def speed(per_second: float, unit: str) -> str:
    """`3.4 MiB/s`, `12 keys/s`."""
    if unit == "bytes":
        return f"{human_size(int(per_second))}/s"
    return f"{per_second:,.0f} {unit}/s"


def amount(done: int, unit: str) -> str:
    return human_size(done) if unit == "bytes" else f"{done:,} {unit}"


def amount_of(done: int, total: int, unit: str) -> str:
    """`1.2 MiB of 4.4 MiB`, `2 of 3 parts`."""
    if unit == "bytes":
        return f"{human_size(done)} of {human_size(total)}"
    return f"{done:,} of {total:,} {unit}"


def text_bar(done: int, total: int | None, width: int = 10) -> str:
    """`███░░░░░░░ 30%`; an unknown total shows how much so far instead."""
    if not total:
        return "…".ljust(width) + "     "
    fraction = min(max(done / total, 0.0), 1.0)
    filled = round(width * fraction)
    return BAR_FULL * filled + BAR_EMPTY * (width - filled) + f" {fraction * 100:3.0f}%"


def count(number: int | None, noun: str) -> str:
    if number is None:
        return f"? {noun}s"
    return f"{number:,} {noun}" + ("" if number == 1 else "s")
