"""Replaying `pg_dumpall --globals-only`: roles and tablespaces, never touching existing ones.

Statements run one at a time. Those about a role or tablespace that already
exists are skipped, so a restore never changes the password or attributes of
a role in use. Messages name the statement's kind and object, never its text
(an ALTER ROLE carries a password hash).
"""

import re
from dataclasses import dataclass, field

import psycopg

_ROLE = re.compile(r'^(CREATE|ALTER) ROLE ("(?:[^"]|"")+"|[^\s;]+)', re.IGNORECASE)
_TABLESPACE = re.compile(r'^CREATE TABLESPACE ("(?:[^"]|"")+"|[^\s;]+)', re.IGNORECASE)


@dataclass
class GlobalsReplay:
    created_roles: list[str] = field(default_factory=list)
    skipped_roles: list[str] = field(default_factory=list)
    skipped_tablespaces: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _unquote(name: str) -> str:
    if name.startswith('"') and name.endswith('"'):
        return name[1:-1].replace('""', '"')
    return name


def statements(script: str) -> list[str]:
    """The SQL statements of a pg_dumpall script, without comments and psql commands."""
    found: list[str] = []
    pending: list[str] = []
    for line in script.splitlines():
        if not pending and (not line.strip() or line.startswith(("--", "\\"))):
            continue
        pending.append(line)
        if line.rstrip().endswith(";"):
            found.append("\n".join(pending))
            pending = []
    return found


def roles_in(script: str) -> list[str]:
    """The roles a globals script creates."""
    found = []
    for statement in statements(script):
        role = _ROLE.match(statement)
        if role and role.group(1).upper() == "CREATE":
            found.append(_unquote(role.group(2)))
    return found


def existing_roles(conn: psycopg.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT rolname FROM pg_roles").fetchall()}


def replay_globals(conn: psycopg.Connection, script: str) -> GlobalsReplay:
    """Run `script` on an autocommit connection; see the module docstring."""
    roles_before = existing_roles(conn)
    existing_spaces = {r[0] for r in conn.execute("SELECT spcname FROM pg_tablespace").fetchall()}
    result = GlobalsReplay()
    for statement in statements(script):
        role = _ROLE.match(statement)
        space = _TABLESPACE.match(statement)
        if role and _unquote(role.group(2)) in roles_before:
            name = _unquote(role.group(2))
            if name not in result.skipped_roles:
                result.skipped_roles.append(name)
            continue
        if space and _unquote(space.group(1)) in existing_spaces:
            result.skipped_tablespaces.append(_unquote(space.group(1)))
            continue
        what = " ".join(statement.split()[:3]).rstrip(";")
        try:
            conn.execute(statement)
        except psycopg.Error as error:
            detail = error.diag.message_primary or type(error).__name__
            result.warnings.append(f"{what}: {detail}")
            continue
        if role and role.group(1).upper() == "CREATE":
            result.created_roles.append(_unquote(role.group(2)))
    return result
