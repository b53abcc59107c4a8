"""What a point-in-time restore recovers to: a moment, a WAL position, a named restore point
or the backup's end (`immediate`), and what the server does once there.

The action defaults to promote (the issue's "restore to a moment" means a server one can
write to afterwards), not PostgreSQL's own default of pause.
"""

import re
from dataclasses import dataclass
from datetime import datetime

from engines.errors import JarvisError

KINDS = ("time", "lsn", "xid", "name", "immediate")
ACTIONS = ("promote", "pause", "shutdown")
DEFAULT_ACTION = "promote"
DEFAULT_START_TIMEOUT_S = 3600.0  # replaying a day of a busy server's WAL takes a while
_LSN = re.compile(r"^([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})$")


@dataclass(frozen=True)
class PitrTarget:
    kind: str  # one of KINDS
    value: str  # as PostgreSQL takes it ("" for immediate)
    action: str = DEFAULT_ACTION
    fetch_command: str = ""  # restore_command: this jarvis-tui's wal-fetch %f %p
    timeline: int | None = None  # recovery_target_timeline; None: chosen at the restore

    def describe(self) -> str:
        if self.kind == "immediate":
            return "the base backup's end (immediate)"
        words = {
            "time": "the moment",
            "lsn": "WAL position",
            "xid": "transaction",
            "name": "restore point",
        }
        return words[self.kind] + f" {self.value}"

    def settings(self) -> dict[str, str]:
        """The recovery settings, as postgresql.auto.conf takes them."""
        setting = "recovery_target" if self.kind == "immediate" else f"recovery_target_{self.kind}"
        return {
            "restore_command": self.fetch_command,
            setting: "immediate" if self.kind == "immediate" else self.value,
            "recovery_target_action": self.action,
            **({"recovery_target_timeline": str(self.timeline)} if self.timeline else {}),
            "archive_mode": "off",  # the copy must not push its WAL into the archive
        }


@dataclass(frozen=True)
class StartRequest:
    """--start --port N: start the restored server and wait, at most `timeout_s`, until
    recovery reached the target."""

    port: int
    timeout_s: float = DEFAULT_START_TIMEOUT_S


def parse_target(
    kind: str, value: str, action: str, fetch_command: str, timeline: int | None = None
) -> PitrTarget:
    """A checked target; one line naming the bad input otherwise."""
    if timeline is not None and not 1 <= timeline <= 0xFFFFFFFF:
        raise JarvisError(f"target timeline {timeline}: give a timeline number, e.g. 2")
    if action not in ACTIONS:
        raise JarvisError(f"target action {action!r}: give one of {', '.join(ACTIONS)}")
    if kind == "time":
        value = target_time(value).isoformat(sep=" ")
    elif kind == "lsn":
        lsn_value(value)
        value = value.strip()
    elif kind == "xid":
        value = value.strip()
        # ASCII digits only ('²'.isdigit() holds) and within PostgreSQL's 64-bit xid8
        if not (value.isascii() and value.isdigit() and int(value) < 2**64):
            raise JarvisError(f"target transaction {value!r}: give its id, e.g. 1234")
    elif kind == "name":
        # a line break cannot be written into postgresql.auto.conf (ALTER SYSTEM refuses it too)
        if not value or len(value.encode()) > 63 or not value.isprintable():
            raise JarvisError(
                f"restore point {value!r}: give the name pg_create_restore_point took"
            )
    elif kind == "immediate":
        value = ""
    else:
        raise JarvisError(
            f"target {kind!r}: give a time, an LSN, a transaction id, a restore point or immediate"
        )
    return PitrTarget(kind, value, action, fetch_command, timeline)


def target_time(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise JarvisError(
            f'target time {value!r}: not a time; give e.g. "2026-11-27 14:03:00+00"'
        ) from None
    if moment.tzinfo is None:
        raise JarvisError(f'target time {value!r}: give its time zone, e.g. "{value.strip()}+00"')
    return moment


def lsn_value(value: str) -> int:
    found = _LSN.match(value.strip())
    if found is None:
        raise JarvisError(f"target LSN {value!r}: not a WAL position; give e.g. 0/3000148")
    return int(found.group(1), 16) << 32 | int(found.group(2), 16)
