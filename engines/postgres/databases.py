"""Creating, swapping and dropping whole databases, never losing the one in place.

A restore goes into a scratch database; only a checked scratch database is
swapped in, by renaming both in one transaction, so at every instant the
target name holds either the old database or the checked new one. A scratch
database's name carries our host (hashed), pid and process start time from the
moment it exists, so the next restore can drop the ones a killed process left
behind, even one killed before anything else was recorded.
"""

import hashlib
import os
import re
import secrets
import socket
import time
from datetime import UTC, datetime

import psycopg
from psycopg import sql

from engines.errors import JarvisError
from engines.plumbing.processes import owner_gone, process_alive, process_start_token

SCRATCH_PREFIX = "jarvis_scratch_"
PREVIOUS_MARKER = "_pre_restore_"
MAX_IDENTIFIER_BYTES = 63
SWAP_ATTEMPTS = 10
_SCRATCH_COMMENT = "jarvis-tui scratch restore; host={host} pid={pid}"


# jarvis_scratch_<purpose>_<host tag>_<pid>_<start>_<random>
_OWNED_SCRATCH = re.compile(
    rf"{SCRATCH_PREFIX}[a-z]+_(?P<host>[0-9a-f]{{6}})_(?P<pid>\d+)_(?P<start>\d+)_[0-9a-f]+"
)


def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]


def scratch_name(purpose: str = "restore") -> str:
    """Under PostgreSQL's 63 bytes even with a 7-digit pid and an 11-digit start time."""
    return (
        f"{SCRATCH_PREFIX}{purpose}_{_host_tag()}_{os.getpid()}_{process_start_token()}_"
        f"{secrets.token_hex(3)}"
    )


def previous_name(name: str, now: datetime | None = None, attempt: int = 1) -> str:
    """`<name>_pre_restore_<UTC stamp>[_<attempt>]`, the name part shortened to fit 63 bytes."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    suffix = f"{PREVIOUS_MARKER}{stamp}" + (f"_{attempt}" if attempt > 1 else "")
    room = MAX_IDENTIFIER_BYTES - len(suffix)
    head = name.encode()[:room].decode(errors="ignore")
    return f"{head}{suffix}"


def unused_previous_name(conn: psycopg.Connection, name: str) -> str:
    now = datetime.now(UTC)
    attempt = 1
    while conn.execute(
        "SELECT 1 FROM pg_database WHERE datname = %s", (previous_name(name, now, attempt),)
    ).fetchone():
        attempt += 1
    return previous_name(name, now, attempt)


def _ident(name: str) -> sql.Identifier:
    return sql.Identifier(name)


def create_database(
    conn: psycopg.Connection, name: str, *, encoding: str | None, scratch: bool
) -> None:
    statement = sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(_ident(name))
    if encoding:
        statement += sql.SQL(" ENCODING {}").format(sql.Literal(encoding))
    try:
        conn.execute(statement)
    except psycopg.errors.InsufficientPrivilege:
        raise JarvisError(
            f'user "{conn.info.user}" may not create databases, which a safe restore needs '
            f"(database {name}); grant CREATEDB or restore as the database owner with CREATEDB"
        ) from None
    if scratch:
        comment = _SCRATCH_COMMENT.format(host=socket.gethostname(), pid=os.getpid())
        conn.execute(
            sql.SQL("COMMENT ON DATABASE {} IS {}").format(_ident(name), sql.Literal(comment))
        )


def terminate_connections(conn: psycopg.Connection, name: str) -> int:
    rows = conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = %s AND pid <> pg_backend_pid()",
        (name,),
    ).fetchall()
    return len(rows)


def drop_database(conn: psycopg.Connection, name: str) -> None:
    terminate_connections(conn, name)
    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(_ident(name)))


def rename_database(conn: psycopg.Connection, old: str, new: str) -> None:
    _with_retries(conn, [old], lambda: _rename(conn, old, new))


def _rename(conn: psycopg.Connection, old: str, new: str) -> None:
    conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(_ident(old), _ident(new)))


def swap_databases(conn: psycopg.Connection, target: str, scratch: str, previous: str) -> None:
    """In one transaction: target -> previous, scratch -> target. Connections to both are
    terminated first; a client that reconnects in between makes us retry, not fail half way."""

    def swap() -> None:
        with conn.transaction():
            _rename(conn, target, previous)
            _rename(conn, scratch, target)

    _with_retries(conn, [target, scratch], swap)


def _with_retries(conn: psycopg.Connection, names: list[str], action) -> None:
    for attempt in range(SWAP_ATTEMPTS):
        for name in names:
            terminate_connections(conn, name)
        try:
            action()
            return
        except psycopg.errors.ObjectInUse:
            if attempt == SWAP_ATTEMPTS - 1:
                raise JarvisError(
                    f"database {names[0]} kept getting new connections; stop the applications "
                    "using it and run the restore again (nothing was swapped)"
                ) from None
            time.sleep(0.2)


def abandoned_scratch_databases(conn: psycopg.Connection) -> list[str]:
    """Scratch databases made on this host by a process that no longer runs: told by the
    name, or by the comment of those named before names carried their owner."""
    rows = conn.execute(
        "SELECT d.datname, shobj_description(d.oid, 'pg_database') FROM pg_database d"
        " WHERE d.datname LIKE %s",
        (SCRATCH_PREFIX.replace("_", r"\_") + "%",),
    ).fetchall()
    abandoned = []
    for name, comment in rows:
        owned = _OWNED_SCRATCH.fullmatch(name)
        if owned is not None:
            if owned["host"] == _host_tag() and owner_gone(int(owned["pid"]), owned["start"]):
                abandoned.append(name)
        elif _commented_owner_gone(comment):
            abandoned.append(name)
    return abandoned


def _commented_owner_gone(comment: str | None) -> bool:
    words = (comment or "").split("; ")[-1].split()
    fields = dict(word.split("=", 1) for word in words if "=" in word)
    if fields.get("host") != socket.gethostname() or not fields.get("pid", "").isdigit():
        return False
    pid = int(fields["pid"])
    return pid != os.getpid() and not process_alive(pid)
