"""Owners and grants: the roles a restore needs, and what it leaves out without them.

Backups keep every object's owner and grants (pg_dump without --no-owner/--no-acl);
pg_restore sets the owners as it creates the objects and replays the grants last. A
role the target server lacks would stop the restore half way, so the roles are checked
before anything changes: missing ones are named, with the ways out (--with-globals
creates them from the backup; --no-owner and --no-acl restore without them).
"""

import re
from dataclasses import dataclass, replace
from pathlib import Path

from engines.errors import JarvisError
from engines.postgres.connection import PostgresTarget
from engines.postgres.globals import existing_roles, roles_in
from engines.postgres.inspect import DatabaseContents, TableInfo
from engines.postgres.partial import entries_to_restore
from engines.postgres.process import run_tool
from engines.postgres.swap import RestoreJob
from engines.postgres.toc import TocEntry
from engines.postgres.tools import ClientTools

# The kinds pg_restore gives an owner (ALTER ... OWNER TO); a comment or grant has none.
OWNED_KINDS = frozenset(
    {
        "AGGREGATE", "BLOB", "COLLATION", "CONVERSION", "DOMAIN", "EVENT TRIGGER",
        "FOREIGN DATA WRAPPER", "FOREIGN TABLE", "FUNCTION", "LARGE OBJECT",
        "MATERIALIZED VIEW", "OPERATOR", "OPERATOR CLASS", "OPERATOR FAMILY", "PROCEDURAL LANGUAGE",
        "PROCEDURE", "PUBLICATION", "SCHEMA", "SEQUENCE", "SERVER", "STATISTICS", "SUBSCRIPTION",
        "TABLE", "TEXT SEARCH CONFIGURATION", "TEXT SEARCH DICTIONARY", "TYPE", "VIEW",
    }
)  # fmt: skip
GRANT_KINDS = ("ACL", "DEFAULT ACL")

_NAME = r'"(?:[^"]|"")+"|[^\s;,"()]+'
_GRANTEE = re.compile(
    rf"\s(?:TO|FROM)\s+({_NAME})(?:\s+WITH GRANT OPTION)?(?:\s+GRANTED BY\s+({_NAME}))?"
    r"(?:\s+CASCADE)?;\s*$"
)
_ACTING_ROLE = re.compile(
    rf"^(?:ALTER DEFAULT PRIVILEGES FOR ROLE|SET SESSION AUTHORIZATION)\s+({_NAME})"
)
_GRANT_STATEMENTS = ("GRANT ", "REVOKE ", "ALTER DEFAULT PRIVILEGES ", "SET SESSION AUTHORIZATION ")


@dataclass(frozen=True)
class RolesUsed:
    owners: list[str]  # sorted
    grantees: list[str]  # every role the grants name (grantees, grantors), sorted

    @property
    def all(self) -> list[str]:
        return sorted({*self.owners, *self.grantees})


def roles_used(
    tools: ClientTools, server: PostgresTarget, archive: Path, entries: list[TocEntry]
) -> RolesUsed:
    """The roles that own, and that the grants of, `entries` of `archive` name."""
    owners = sorted({e.owner for e in entries if e.owner and e.desc in OWNED_KINDS})
    grants = [e for e in entries if e.desc in GRANT_KINDS]
    if not grants:
        return RolesUsed(owners, [])
    list_file = archive.with_name("grants.list")
    list_file.write_text("".join(entry.line + "\n" for entry in grants))
    script = run_tool(
        [tools.path("pg_restore"), f"--use-list={list_file}", "--file=-", str(archive)],
        server.tool_environment(),
        name="pg_restore",
        what="reading the backup's grants",
    )
    return RolesUsed(owners, sorted(roles_in_grants(script)))


def roles_in_grants(script: str) -> set[str]:
    """The roles named in the GRANT, REVOKE and ALTER DEFAULT PRIVILEGES of `script`."""
    found: set[str] = set()
    for line in script.splitlines():
        if not line.startswith(_GRANT_STATEMENTS):
            continue
        for match in (_GRANTEE.search(line), _ACTING_ROLE.match(line)):
            if match:
                found.update(_unquote(name) for name in match.groups() if name)
    found.discard("PUBLIC")
    return found


def _unquote(name: str) -> str:
    if name.startswith('"') and name.endswith('"'):
        return name[1:-1].replace('""', '"')
    return name


@dataclass(frozen=True)
class PrivilegePlan:
    """What a restore does with the backup's owners and grants on this server."""

    lines: list[str]
    refusal: str | None  # why it cannot restore them as asked, with the ways out


def plan_privileges(
    used: RolesUsed,
    present: set[str],
    *,
    no_owner: bool,
    no_acl: bool,
    server: PostgresTarget,
) -> PrivilegePlan:
    """`present`: the roles the server has, or will have once --with-globals ran."""
    missing: dict[str, list[str]] = {}
    for role in [] if no_owner else used.owners:
        if role not in present:
            missing.setdefault(role, []).append("owner")
    for role in [] if no_acl else used.grantees:
        if role not in present:
            missing.setdefault(role, []).append("grants")
    lines = []
    if not no_owner and not no_acl and not missing:
        lines.append(
            f"owners and grants: restored as in the backup (roles {', '.join(used.all)})"
            if used.all
            else "owners and grants: none in what is restored (existing tables keep their own)"
        )
    if no_owner:
        others = [role for role in used.owners if role != server.user]
        lines.append(
            "owners: not restored (--no-owner): "
            + (
                f"the backup's owner(s) {', '.join(others)} give way to {server.user}, who "
                "will own everything restored"
                if others
                else f"everything restored belongs to {server.user}"
            )
        )
    if no_acl:
        lines.append(
            "grants: not restored (--no-acl): "
            + (
                f"the grants to {', '.join(used.grantees)} are left out, so only owners and "
                "superusers can use what is restored"
                if used.grantees
                else "the backup holds none"
            )
        )
    refusal = None
    if missing:
        named = ", ".join(f"{role} ({', '.join(why)})" for role, why in missing.items())
        reasons = {why for whys in missing.values() for why in whys}
        without = [
            *([f"--no-owner (everything belongs to {server.user})"] if "owner" in reasons else []),
            *(["--no-acl (no grants: only owners and superusers can use it)"]
              if "grants" in reasons else []),
        ]  # fmt: skip
        refusal = (
            f"role(s) {named} named in the backup do not exist on {server.host}:{server.port}: "
            "create them, or let --with-globals create them from the backup, or restore "
            f"without them: {', '.join(without)}"
        )
    return PrivilegePlan(lines, refusal)


def plan_for(
    job: RestoreJob, current: DatabaseContents, tables: list[TableInfo], globals_script: str | None
) -> PrivilegePlan:
    """The plan for what this restore creates; roles a --with-globals script creates count
    as present (they are created first)."""
    options = job.options
    if options.tables or job.mode == "data":
        entries = entries_to_restore(job, current, tables, everything=not options.tables)
    else:
        entries = job.entries
    used = roles_used(job.tools, job.server, job.archive.path, entries)
    present = existing_roles(job.admin) | set(roles_in(globals_script or ""))
    return plan_privileges(
        used, present, no_owner=options.no_owner, no_acl=options.no_acl, server=job.server
    )


def leave_out_missing_roles(job: RestoreJob) -> str | None:
    """For the restore drill, which checks the data: leave out the owners or grants whose
    roles the server lacks (dropped since the backup) instead of failing on them; returns
    what was left out and why, or None."""
    used = roles_used(job.tools, job.server, job.archive.path, job.entries)
    present = existing_roles(job.admin)
    owners = [role for role in used.owners if role not in present]
    grantees = [role for role in used.grantees if role not in present]
    if not owners and not grantees:
        return None
    job.options = replace(job.options, no_owner=bool(owners), no_acl=bool(grantees))
    left_out = " and ".join(["owners"] * bool(owners) + ["grants"] * bool(grantees))
    return (
        f"role(s) {', '.join(sorted({*owners, *grantees}))} named in the backup do not exist "
        f"on {job.server.host}:{job.server.port}: the drill restores without {left_out}"
    )


class MissingRolesError(JarvisError):
    """The backup's owners or grants name roles the server lacks."""
