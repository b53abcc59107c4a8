"""Foreign keys from other tables into the tables a restore replaces.

TRUNCATE refuses a table that another table references, and deleting its rows instead
would fire the ON DELETE actions on the referencing rows. So a restore that replaces
referenced tables drops those foreign keys inside its transaction and re-creates them
once the rows are in: re-creating one validates every referencing row, and a row whose
key the backup lacks fails the whole transaction with a message naming the constraint,
how many rows and which keys.
"""

from dataclasses import dataclass

from engines.postgres.connection import PostgresTarget, connect
from engines.postgres.loader import qualified, quote_identifier, quote_literal

SAMPLE_KEYS = 5

# Top-level constraints only (conparentid = 0): those of partitions come and go with them.
_FOREIGN_KEYS = """
SELECT c.conname, rn.nspname, r.relname, pg_get_constraintdef(c.oid),
       ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY AS k(num, pos)
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.num
             ORDER BY k.pos),
       fn.nspname, f.relname,
       ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY AS k(num, pos)
             JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.num
             ORDER BY k.pos),
       c.convalidated
FROM pg_constraint c
JOIN pg_class r ON r.oid = c.conrelid JOIN pg_namespace rn ON rn.oid = r.relnamespace
JOIN pg_class f ON f.oid = c.confrelid JOIN pg_namespace fn ON fn.oid = f.relnamespace
WHERE c.contype = 'f' AND c.conparentid = 0
ORDER BY 2, 3, 1
"""


@dataclass(frozen=True)
class ForeignKey:
    name: str
    schema: str  # of the referencing table
    table: str
    definition: str  # pg_get_constraintdef with every name schema-qualified
    columns: tuple[str, ...]
    referenced_schema: str
    referenced_table: str
    referenced_columns: tuple[str, ...]
    validated: bool  # False: created NOT VALID, and re-created so

    @property
    def referencing(self) -> str:
        return f"{self.schema}.{self.table}"

    @property
    def referenced(self) -> str:
        return f"{self.referenced_schema}.{self.referenced_table}"


def foreign_keys_into(
    server: PostgresTarget, database: str, replaced: set[tuple[str, str]]
) -> list[ForeignKey]:
    """Foreign keys of tables outside `replaced` that reference a table in it."""
    if not replaced:
        return []
    with connect(server, database) as conn, conn.transaction():
        # An empty search_path makes pg_get_constraintdef qualify the referenced table,
        # as pg_restore's own SQL (which runs before the re-creation) empties it too.
        conn.execute("SELECT set_config('search_path', '', true)")
        rows = conn.execute(_FOREIGN_KEYS).fetchall()
    found = []
    for name, schema, table, definition, columns, ref_schema, ref_table, ref_cols, ok in rows:
        if (ref_schema, ref_table) in replaced and (schema, table) not in replaced:
            columns, ref_cols = tuple(columns), tuple(ref_cols)
            key = ForeignKey(name, schema, table, definition, columns, ref_schema, ref_table,
                             ref_cols, ok)  # fmt: skip
            found.append(key)
    return found


def drop_statements(keys: list[ForeignKey]) -> str:
    return "".join(
        f"ALTER TABLE {qualified(k.schema, k.table)} DROP CONSTRAINT {quote_identifier(k.name)};\n"
        for k in keys
    )


def recreate_statements(keys: list[ForeignKey]) -> str:
    """Each key added back (which checks every row); a violation raises a message saying
    how many rows reference which missing keys."""
    return "".join(_recreate(k) for k in keys)


def _recreate(key: ForeignKey) -> str:
    add = (
        f"ALTER TABLE {qualified(key.schema, key.table)} "
        f"ADD CONSTRAINT {quote_identifier(key.name)} {key.definition};"
    )
    if not key.validated:
        return add + "\n"
    referencing = [f"r.{quote_identifier(c)}" for c in key.columns]
    matches = " AND ".join(
        f"p.{quote_identifier(p)} = {r}"
        for p, r in zip(key.referenced_columns, referencing, strict=True)
    )
    orphans = (
        f"FROM {qualified(key.schema, key.table)} r WHERE "
        + " AND ".join(f"{r} IS NOT NULL" for r in referencing)
        + f" AND NOT EXISTS (SELECT 1 FROM "
        f"{qualified(key.referenced_schema, key.referenced_table)} p WHERE {matches})"
    )
    shown_key = "(" + ", ".join(key.columns) + ")="
    sample = (
        f"SELECT string_agg({quote_literal(shown_key)} || k, ', ') INTO keys FROM "
        f"(SELECT DISTINCT '(' || concat_ws(', ', {', '.join(f'{r}::text' for r in referencing)})"
        f" || ')' AS k {orphans} ORDER BY 1 LIMIT {SAMPLE_KEYS}) s"
    )
    referencing_name, referenced_name, name = (
        text.replace("%", "%%") for text in (key.referencing, key.referenced, key.name)
    )  # RAISE reads % as a placeholder
    message = (
        f"restore check failed: % row(s) of {referencing_name} reference keys of "
        f"{referenced_name} the backup lacks (foreign key {name}), e.g. %"
    )
    hint = f"Restore {key.referencing} too (another --table), or fix or delete those rows first"
    return (
        "DO $jarvis_fk$\nDECLARE n bigint; keys text;\nBEGIN\n"
        f"  {add}\n"
        "EXCEPTION WHEN foreign_key_violation THEN\n"
        f"  SELECT count(*) INTO n {orphans};\n"
        "  IF n = 0 THEN RAISE; END IF;\n"
        f"  {sample};\n"
        f"  RAISE EXCEPTION {quote_literal(message)}, n, keys USING HINT = {quote_literal(hint)};\n"
        "END\n$jarvis_fk$;\n"
    )
