"""The list route's own parameters: times with their zone, and its opaque page cursor.

A cursor is the last set's place in the newest-first order (its created_at text and
rowid, engines/catalog/set_pages.py SetPosition), base64url-encoded: opaque to
clients, which follow the Link header, and checked on the way back in.
"""

import base64
import binascii
from datetime import UTC, datetime

from engines.catalog import SetPosition
from engines.catalog.times import parse_iso, to_iso
from jarvis_tui.api.errors import bad_request

TIME_EXAMPLE = "2026-12-06T02:00:00Z"


def time_parameter(field: str, text: str | None) -> datetime | None:
    """An ISO 8601 time with its zone; a naive one would be read in some zone by guess."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        # An unescaped `+02:00` reaches the server as ` 02:00`.
        escape = "; in a URL, write its + as %2B" if " " in text else ""
        raise bad_request(
            f"{field}: {text!r} is not an ISO 8601 time; give one with its zone, "
            f"such as {TIME_EXAMPLE}{escape}",
            field,
        ) from None
    if moment.tzinfo is None:
        raise bad_request(
            f"{field}: {text!r} has no time zone; add one, such as {TIME_EXAMPLE}", field
        )
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+05:00 is before the first UTC moment
        raise bad_request(f"{field}: {text!r} is out of range", field) from None


def encode_cursor(position: SetPosition) -> str:
    raw = f"{position.created_at}|{position.rowid}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> SetPosition:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created_at, rowid = raw.rsplit("|", 1)
        position = SetPosition(created_at, int(rowid))
        # Only what encode_cursor writes: the catalog's own time text and a SQLite rowid.
        if to_iso(parse_iso(created_at)) != created_at or not 0 < position.rowid < 2**63:
            raise ValueError(raw)
        return position
    except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError):
        raise bad_request(
            'cursor: not a cursor this server gave; follow the Link header\'s rel="next" '
            "URL, or leave the cursor out for the first page",
            "cursor",
        ) from None
