"""Cron expressions as the guide writes them: fire times, APScheduler triggers, words.

APScheduler 3 numbers weekdays from Monday (0 = Monday) even in
`CronTrigger.from_crontab`, while cron numbers them from Sunday: the guide's
weekly "0 3 * * 0" means Sunday. The day-of-week field is therefore translated
to weekday names before APScheduler sees it.

APScheduler 3 also loses its way at daylight-saving changes (in
America/Los_Angeles it skips the midnight run after the spring change, and a
02:00 run on the autumn change repeats). `CronTimes` computes fire times the
way cron does instead: on the wall clock, each wall-clock time once (the first
of a repeated hour), a time inside a skipped hour just after the jump.
"""

from datetime import UTC, datetime, timedelta, tzinfo

from apscheduler.triggers.cron import CronTrigger

CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
APS_ORDER = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_NAMES = {
    "sun": "Sunday",
    "mon": "Monday",
    "tue": "Tuesday",
    "wed": "Wednesday",
    "thu": "Thursday",
    "fri": "Friday",
    "sat": "Saturday",
}
MONTH_NAMES = (
    *("January", "February", "March", "April", "May", "June"),
    *("July", "August", "September", "October", "November", "December"),
)


def _day_number(text: str, expression: str) -> int:
    lowered = text.strip().lower()[:3]
    if lowered in CRON_DAYS:
        return CRON_DAYS.index(lowered)
    if lowered.isdigit() and 0 <= int(lowered) <= 7:
        return int(lowered) % 7
    raise ValueError(f"cron {expression!r}: day of week {text!r} is not 0-7 or a day name")


def cron_weekdays(field: str, expression: str = "") -> set[int]:
    """The cron weekdays (0 = Sunday) a day-of-week field selects."""
    days: set[int] = set()
    for item in field.split(","):
        span, _, step_text = item.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"cron {expression!r}: step {step_text!r} must be at least 1")
        if span == "*":
            low, high = 0, 6
        elif "-" in span:
            first, last = span.split("-", 1)
            low, high = _day_number(first, expression), _day_number(last, expression)
            if last.strip() == "7":
                high = 7
        else:
            low = _day_number(span, expression)
            high = 6 if step_text else low
        days.update(day % 7 for day in range(low, high + 1, step))
    return days


def cron_trigger(expression: str, zone: tzinfo) -> CronTrigger:
    minute, hour, day, month, weekday = expression.split()
    if weekday != "*":
        chosen = cron_weekdays(weekday, expression)
        weekday = ",".join(name for name in APS_ORDER if CRON_DAYS.index(name) in chosen)
    return CronTrigger(
        minute=minute, hour=hour, day=day, month=month, day_of_week=weekday, timezone=zone
    )


class CronTimes:
    """The fire times of a cron expression in a time zone, as aware UTC datetimes."""

    def __init__(self, expression: str, zone: tzinfo):
        self.expression = expression
        self.zone = zone
        # Wall-clock arithmetic: the expression evaluated on a clock without DST.
        self._wall_clock = cron_trigger(expression, UTC)

    def _instant(self, wall: datetime) -> datetime:
        return wall.replace(tzinfo=self.zone, fold=0).astimezone(UTC)

    def next_after(self, moment: datetime) -> datetime | None:
        """The first fire time strictly after `moment`."""
        moment = moment.astimezone(UTC)
        wall = moment.astimezone(self.zone).replace(tzinfo=UTC)
        while True:
            candidate = self._wall_clock.get_next_fire_time(None, wall + timedelta(microseconds=1))
            if candidate is None:
                return None
            instant = self._instant(candidate)
            if instant > moment:
                return instant
            # A wall-clock time of a repeated hour whose first occurrence already passed.
            wall = candidate


def _ordinal(number: int) -> str:
    if 10 <= number % 100 <= 20:
        return f"{number}th"
    suffix = {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def _weekday_words(field: str) -> str:
    days = cron_weekdays(field)
    if days == {1, 2, 3, 4, 5}:
        return "every weekday"
    if days == {0, 6}:
        return "every Saturday and Sunday"
    names = [DAY_NAMES[CRON_DAYS[d]] for d in sorted(days, key=lambda d: (d - 1) % 7)]
    return "every " + (", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0])


def describe_cron(expression: str) -> str:
    """`0 3 * * 0` -> "every Sunday at 03:00"; unusual expressions are quoted as they are."""
    try:
        minute, hour, day, month, weekday = expression.split()
        if minute == "*" and hour == "*" and day == month == weekday == "*":
            return "every minute"
        if minute.startswith("*/") and hour == "*" and day == month == weekday == "*":
            return f"every {int(minute[2:])} minutes"
        if minute.isdigit() and hour == "*" and day == month == weekday == "*":
            return f"every hour at minute {int(minute)}"
        if not (minute.isdigit() and hour.isdigit()):
            raise ValueError(expression)
        at = f"at {int(hour):02d}:{int(minute):02d}"
        if day == "*" and weekday == "*":
            when = "every day"
        elif day == "*":
            when = _weekday_words(weekday)
        elif weekday == "*" and day.isdigit():
            when = f"on the {_ordinal(int(day))} of every month"
        else:
            raise ValueError(expression)
        if month != "*":
            if not month.isdigit():
                raise ValueError(expression)
            name = MONTH_NAMES[int(month) - 1]
            when = when.replace("every month", name) if "month" in when else f"{when} in {name}"
        return f"{when} {at}"
    except (ValueError, IndexError):
        return f'cron "{expression}"'
