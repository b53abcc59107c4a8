"""A custom-format archive's table of contents (`pg_restore --list`), parsed.

A line reads `dump id; table oid oid DESC schema name owner`, where DESC may be
several words ("TABLE DATA", "FK CONSTRAINT"), the name may hold spaces and the
owner may be empty. Constraints, triggers and defaults are named `table object`.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass

DESCRIPTIONS = tuple(
    sorted(
        (
            "ACCESS METHOD",
            "ACL",
            "AGGREGATE",
            "BLOB",
            "BLOBS",
            "CAST",
            "CHECK CONSTRAINT",
            "COLLATION",
            "COMMENT",
            "CONSTRAINT",
            "CONVERSION",
            "DATABASE",
            "DATABASE PROPERTIES",
            "DEFAULT",
            "DEFAULT ACL",
            "DOMAIN",
            "ENCODING",
            "EVENT TRIGGER",
            "EXTENSION",
            "FK CONSTRAINT",
            "FOREIGN DATA WRAPPER",
            "FOREIGN SERVER",
            "FOREIGN TABLE",
            "FUNCTION",
            "INDEX",
            "INDEX ATTACH",
            "LARGE OBJECT",
            "MATERIALIZED VIEW",
            "MATERIALIZED VIEW DATA",
            "OPERATOR",
            "OPERATOR CLASS",
            "OPERATOR FAMILY",
            "POLICY",
            "PROCEDURAL LANGUAGE",
            "PROCEDURE",
            "PUBLICATION",
            "PUBLICATION TABLE",
            "PUBLICATION TABLES IN SCHEMA",
            "ROW SECURITY",
            "RULE",
            "SCHEMA",
            "SEARCHPATH",
            "SECURITY LABEL",
            "SEQUENCE",
            "SEQUENCE OWNED BY",
            "SEQUENCE SET",
            "SERVER",
            "STATISTICS",
            "STDSTRINGS",
            "SUBSCRIPTION",
            "TABLE",
            "TABLE ATTACH",
            "TABLE DATA",
            "TEXT SEARCH CONFIGURATION",
            "TEXT SEARCH DICTIONARY",
            "TEXT SEARCH PARSER",
            "TEXT SEARCH TEMPLATE",
            "TRANSFORM",
            "TRIGGER",
            "TYPE",
            "USER MAPPING",
            "VIEW",
        ),
        key=len,
        reverse=True,
    )
)
_ENTRY = re.compile(r"^(?P<id>-?\d+); (?P<tableoid>\d+) (?P<oid>\d+) (?P<rest>.*)$")
_TABLE_SCOPED = (
    "CONSTRAINT",
    "CHECK CONSTRAINT",
    "FK CONSTRAINT",
    "TRIGGER",
    "DEFAULT",
    "POLICY",
    "RULE",
    "ROW SECURITY",
)


@dataclass(frozen=True)
class TocEntry:
    line: str
    dump_id: int
    desc: str
    schema: str | None
    name: str
    owner: str = ""

    def belongs_to(self, schema: str, table: str) -> bool:
        """True for the table itself, its data, and what is named after it (constraints,
        triggers, defaults: `table object`; comments: `TABLE table`)."""
        if (self.schema or "") != schema:
            return False
        if self.desc in ("TABLE", "TABLE DATA"):
            return self.name == table
        if self.desc in _TABLE_SCOPED:
            return self.name.startswith(table + " ")
        return self.desc in ("COMMENT", "ACL") and self.name == f"TABLE {table}"


def parse_entry(line: str) -> TocEntry | None:
    match = _ENTRY.match(line)
    if match is None:
        return None
    before_owner, _, owner = match["rest"].rpartition(" ")
    for desc in DESCRIPTIONS:
        if before_owner.startswith(desc + " "):
            schema, _, name = before_owner[len(desc) + 1 :].partition(" ")
            return TocEntry(
                line, int(match["id"]), desc, None if schema == "-" else schema, name, owner
            )
    return None


def parse_toc(listing: str) -> list[TocEntry]:
    entries = []
    for line in listing.splitlines():
        if line.startswith(";") or not line.strip():
            continue
        entry = parse_entry(line)
        if entry is not None:
            entries.append(entry)
    return entries


@dataclass(frozen=True)
class TocSummary:
    schemas: list[str]
    tables: list[tuple[str | None, str]]
    indexes: list[tuple[str | None, str]]
    large_objects: int
    has_data: bool
    has_schema: bool


def summarize(entries: Iterable[TocEntry]) -> TocSummary:
    entries = list(entries)
    return TocSummary(
        schemas=[e.name for e in entries if e.desc == "SCHEMA"],
        tables=[(e.schema, e.name) for e in entries if e.desc == "TABLE"]
        or [(e.schema, e.name) for e in entries if e.desc == "TABLE DATA"],
        indexes=[(e.schema, e.name) for e in entries if e.desc == "INDEX"],
        large_objects=sum(1 for e in entries if e.desc in ("BLOB", "LARGE OBJECT")),
        has_data=any(e.desc in ("TABLE DATA", "BLOBS", "SEQUENCE SET") for e in entries),
        has_schema=any(e.desc == "TABLE" for e in entries),
    )


def select_tables(
    entries: list[TocEntry],
    tables: list[tuple[str, str]],
    *,
    indexes: dict[tuple[str, str], list[str]],
    sequences: dict[tuple[str, str], list[str]],
) -> list[TocEntry]:
    """The entries that make up the given (schema, table) pairs: definition, data, defaults,
    constraints, triggers, comments, grants, their indexes and owned sequences (from the
    metadata, as the list does not say which table an index belongs to)."""
    wanted = set(tables)
    index_names = {(s, i) for (s, t) in wanted for i in indexes.get((s, t), [])}
    sequence_names = {(s, q) for (s, t) in wanted for q in sequences.get((s, t), [])}
    chosen = []
    for entry in entries:
        key = (entry.schema or "", entry.name)
        if (
            any(entry.belongs_to(schema, table) for schema, table in wanted)
            or (entry.desc == "INDEX" and key in index_names)
            or (entry.desc.startswith("SEQUENCE") and key in sequence_names)
            or (entry.desc == "ACL" and _sequence_acl(entry) in sequence_names)
        ):
            chosen.append(entry)
    return chosen


def _sequence_acl(entry: TocEntry) -> tuple[str, str] | None:
    """(schema, sequence) for the grants of a sequence (named `SEQUENCE name`)."""
    kind, _, name = entry.name.partition(" ")
    return (entry.schema or "", name) if kind == "SEQUENCE" else None
