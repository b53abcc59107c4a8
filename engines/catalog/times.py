"""Timestamps as the catalog stores them: UTC ISO 8601 with microseconds.

One fixed width and one offset (+00:00) make text order equal time order, so
newest-first listings can sort and index the column as plain text.
"""

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)


def to_iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {moment.isoformat()} has no time zone; pass an aware datetime")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def now_iso() -> str:
    return to_iso(utc_now())


def parse_iso(text: str) -> datetime:
    """Read a stored or sidecar timestamp; a missing offset means UTC."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def parse_optional(text: str | None) -> datetime | None:
    return None if text is None else parse_iso(text)
