"""`restore redis --flush` all or nothing: load into spare databases, then SWAPDB.

Each database the restore fills is loaded into an empty spare database of the target;
only when every key is in, one MULTI/EXEC swaps each spare with its database (and empties
the databases the backup does not hold, as FLUSHALL would), so a client sees the old
data or the restored data, never part of it. A spare carries a marker key naming its
owner (host, pid, process start time) from the moment it is claimed, also once it holds
the swapped-out old data, so the next restore empties the spares of a killed one.

It cannot be done on a cluster (one database only), without the `databases` setting
(CONFIG disabled) or without enough empty databases; the restore then flushes and loads
in place, and the dry run says so.
"""

import os
import socket
from dataclasses import dataclass, field
from typing import Any

from engines.errors import JarvisError
from engines.plumbing.processes import owner_gone, process_start_token
from engines.redis.inspect import ServerFacts
from engines.redis.resp import RespConnection, RespError

MARKER_KEY = b"jarvis-tui:restore-spare"
# Claims an empty database: the marker is set only where no key exists yet.
_CLAIM = (
    "if redis.call('DBSIZE') == 0 then redis.call('SET', KEYS[1], ARGV[1]) return 1 end return 0"
)


@dataclass
class SparePlan:
    """Target database -> spare database; databases to empty (held by the target only)."""

    spares: dict[int, int] = field(default_factory=dict)
    emptied: list[int] = field(default_factory=list)

    def describe(self) -> str:
        pairs = ", ".join(f"db {db} via spare db {spare}" for db, spare in self.spares.items())
        return (
            f"--flush is all or nothing: {pairs or 'nothing'} loaded aside, then swapped in "
            "with SWAPDB in one transaction"
            + (" that also empties the other databases" if self.emptied else "")
            + "; the target holds both copies until then (memory)"
        )


def _call(connection: RespConnection, *args: bytes | str | int) -> Any:
    try:
        return connection.call(*args)
    except RespError as error:
        raise JarvisError(f"the target refused a write: {error}") from None


def _marker_value() -> str:
    return f"host={socket.gethostname()} pid={os.getpid()} start={process_start_token()}"


def plan_spares(facts: ServerFacts, filled: list[int], only_db: int | None) -> SparePlan | str:
    """The plan, or why `--flush` cannot be all or nothing on this target."""
    if facts.cluster:
        return "the target runs in cluster mode (one database, no SWAPDB)"
    if facts.databases is None:
        return "its `databases` setting cannot be read (CONFIG is disabled), so no spare is known"
    if facts.version_tuple < (4, 0):
        return f"Redis {facts.version} has no SWAPDB (4.0 and later)"
    free = [
        db
        for db in range(facts.databases - 1, -1, -1)
        if db not in filled and not facts.keyspace.get(db)
    ]
    if len(free) < len(filled):
        return (
            f"it needs {len(filled)} empty database(s) besides those restored and the target "
            f"has {len(free)} (raise its `databases` setting)"
        )
    spares = dict(zip(filled, free, strict=False))
    # Without --db, --flush empties every database, as FLUSHALL would.
    emptied = [] if only_db is not None else [
        db for db in range(facts.databases) if db not in filled and db not in spares.values()
    ]  # fmt: skip
    return SparePlan(spares, emptied)


def claim(connection: RespConnection, plan: SparePlan) -> None:
    """Mark each spare as ours; a database that got keys since it was seen empty is refused."""
    for db, spare in plan.spares.items():
        _call(connection, "SELECT", spare)
        if _call(connection, "EVAL", _CLAIM, 1, MARKER_KEY, _marker_value()) != 1:
            raise JarvisError(
                f"spare database {spare} (for db {db}) received keys meanwhile; nothing was "
                "changed, run the restore again"
            )


def swap_in(connection: RespConnection, plan: SparePlan) -> None:
    """One transaction: each loaded spare becomes its database, the old data moves to the
    spare (marked, to be emptied), the databases the backup does not hold are emptied."""
    marker = _marker_value()
    _call(connection, "MULTI")
    for db, spare in plan.spares.items():
        _call(connection, "SELECT", spare)
        _call(connection, "DEL", MARKER_KEY)
        _call(connection, "SWAPDB", db, spare)
        _call(connection, "SET", MARKER_KEY, marker)
    for db in plan.emptied:
        _call(connection, "SELECT", db)
        _call(connection, "FLUSHDB")
    replies = _call(connection, "EXEC")
    errors = [reply for reply in replies or [] if isinstance(reply, RespError)]
    if replies is None or errors:
        raise JarvisError(f"the target refused the swap: {errors[0] if errors else 'aborted'}")
    release(connection, plan)


def release(connection: RespConnection, plan: SparePlan) -> None:
    """Empty the spares (what was loaded, or the old data swapped out)."""
    for spare in plan.spares.values():
        _call(connection, "SELECT", spare)
        _call(connection, "FLUSHDB", "ASYNC")


def abandoned_spares(connection: RespConnection, facts: ServerFacts) -> list[int]:
    """Databases holding the marker of a restore on this host whose process is gone."""
    found = []
    for db in sorted(facts.keyspace):
        _call(connection, "SELECT", db)
        value = _call(connection, "GET", MARKER_KEY)
        if not isinstance(value, bytes):
            continue
        fields = dict(w.split("=", 1) for w in value.decode(errors="replace").split() if "=" in w)
        pid, start = fields.get("pid", ""), fields.get("start")
        mine = fields.get("host") == socket.gethostname() and pid.isdigit()
        if mine and owner_gone(int(pid), start):
            found.append(db)
    return found


def empty_abandoned_spares(connection: RespConnection, facts: ServerFacts) -> list[int]:
    emptied = abandoned_spares(connection, facts)
    for db in emptied:
        _call(connection, "SELECT", db)
        _call(connection, "FLUSHDB", "ASYNC")
    return emptied
