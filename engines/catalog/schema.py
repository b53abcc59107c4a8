"""Schema migrations, applied in order and tracked by `PRAGMA user_version`.

Migration N (1-based) takes the catalog from version N-1 to N. Append new
scripts; never edit one that has shipped.
"""

import sqlite3

from engines.errors import JarvisError

_V1_INITIAL = """
CREATE TABLE jobs (
    id               INTEGER PRIMARY KEY,
    kind             TEXT NOT NULL,
    description      TEXT NOT NULL DEFAULT '',
    status           TEXT NOT NULL CHECK (status IN
                         ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    pid              INTEGER,
    host             TEXT,
    started_at       TEXT,
    finished_at      TEXT,
    progress_done    INTEGER NOT NULL DEFAULT 0,
    progress_total   INTEGER,
    progress_unit    TEXT NOT NULL DEFAULT 'bytes',
    error            TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0 CHECK (cancel_requested IN (0, 1)),
    set_id           TEXT REFERENCES backup_sets (id) ON DELETE SET NULL
);
CREATE INDEX jobs_by_status ON jobs (status);

CREATE TABLE job_events (
    id      INTEGER PRIMARY KEY,
    job_id  INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    at      TEXT NOT NULL,
    level   TEXT NOT NULL CHECK (level IN ('debug', 'info', 'warning', 'error')),
    message TEXT NOT NULL
);
CREATE INDEX job_events_by_job ON job_events (job_id, id);

CREATE TABLE backup_sets (
    id             TEXT PRIMARY KEY,
    kind           TEXT NOT NULL,
    tier           TEXT CHECK (tier IS NULL OR tier IN ('daily', 'weekly', 'monthly', 'manual')),
    status         TEXT NOT NULL CHECK (status IN ('running', 'complete', 'partial', 'failed')),
    created_at     TEXT NOT NULL,
    finished_at    TEXT,
    error          TEXT,
    job_id         INTEGER REFERENCES jobs (id) ON DELETE SET NULL,
    verified_state TEXT CHECK (verified_state IS NULL OR verified_state IN ('ok', 'failed')),
    note           TEXT
);
CREATE INDEX backup_sets_newest ON backup_sets (created_at DESC);
CREATE INDEX backup_sets_by_kind ON backup_sets (kind, status, created_at DESC);

CREATE TABLE artifacts (
    id            INTEGER PRIMARY KEY,
    set_id        TEXT NOT NULL REFERENCES backup_sets (id) ON DELETE CASCADE,
    source        TEXT NOT NULL,
    mode          TEXT NOT NULL,
    relpath       TEXT NOT NULL UNIQUE,
    status        TEXT NOT NULL CHECK (status IN ('writing', 'complete', 'failed')),
    checksum      TEXT,
    stored_size   INTEGER,
    plain_size    INTEGER,
    key_id        TEXT,
    codec         TEXT,
    metadata_json TEXT NOT NULL DEFAULT '{}',
    created_at    TEXT NOT NULL,
    error         TEXT,
    verify_state  TEXT CHECK (verify_state IS NULL OR verify_state IN ('ok', 'failed')),
    verified_at   TEXT,
    verify_detail TEXT
);
CREATE INDEX artifacts_by_set ON artifacts (set_id, id);

CREATE TABLE copies (
    artifact_id INTEGER NOT NULL REFERENCES artifacts (id) ON DELETE CASCADE,
    destination TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('pending', 'stored', 'failed', 'deleted')),
    updated_at  TEXT NOT NULL,
    error       TEXT,
    PRIMARY KEY (artifact_id, destination)
) WITHOUT ROWID;
CREATE INDEX copies_by_state ON copies (destination, state);

CREATE TABLE alerts (
    id            INTEGER PRIMARY KEY,
    at            TEXT NOT NULL,
    severity      TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    kind          TEXT NOT NULL,
    message       TEXT NOT NULL,
    delivery_json TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX alerts_newest ON alerts (at DESC);

CREATE TABLE schedule_runs (
    id            INTEGER PRIMARY KEY,
    schedule_name TEXT NOT NULL,
    planned_at    TEXT NOT NULL,
    started_at    TEXT,
    finished_at   TEXT,
    outcome       TEXT,
    job_id        INTEGER REFERENCES jobs (id) ON DELETE SET NULL,
    detail        TEXT
);
CREATE INDEX schedule_runs_by_name ON schedule_runs (schedule_name, planned_at DESC);
"""

# A set whose deletion has begun (on some destination it may already be gone): every
# cleanup finishes it, whatever retention says, and `latest` passes over it.
_V2_DELETING_SINCE = """
ALTER TABLE backup_sets ADD COLUMN deleting_since TEXT;
"""

# The sets holding a source (the API's `GET /api/backups?source=`) without reading every
# artifact row: a count over 10,000 sets went from 16 ms to 3 ms.
_V3_ARTIFACTS_BY_SOURCE = """
CREATE INDEX artifacts_by_source ON artifacts (source, set_id);
"""

# A counter every write to the sets, their artifacts or their copies moves on, whoever
# writes (any process): a reader's pages of sets and overview figures stay right while
# it has not moved (Catalog.change_marker). Job progress, events and alerts do not move
# it: they change no set. The same trigger on each table and each kind of write.
_V4_BACKUP_CHANGES = """
CREATE TABLE backup_changes (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    counter INTEGER NOT NULL
);
INSERT INTO backup_changes (id, counter) VALUES (1, 0);
""" + "".join(
    f"CREATE TRIGGER {table}_{event.lower()}_counted AFTER {event} ON {table}\n"
    "BEGIN UPDATE backup_changes SET counter = counter + 1; END;\n"
    for table in ("backup_sets", "artifacts", "copies")
    for event in ("INSERT", "UPDATE", "DELETE")
)

# The overview's figures (engines/catalog/overview_figures.py) from the index alone: each
# complete artifact's set, source, sizes and verification, and the bytes a files snapshot's
# packs add (read from its sealed metadata, so the 0.7-3 KiB rows are not read again): its
# figures over 10,000 sets went from 300-450 ms to tens of milliseconds. The expression is
# ADDED_BYTES_SQL's second term, written the same, so SQLite takes its value from here.
_V5_ARTIFACT_FIGURES = """
CREATE INDEX artifacts_figures ON artifacts (
    status, set_id, source, stored_size, plain_size, verify_state, verified_at,
    (CASE WHEN source = 'files'
     THEN COALESCE(json_extract(metadata_json, '$.snapshot.stored_bytes'), 0) ELSE 0 END)
);
"""

MIGRATIONS: list[str] = [
    _V1_INITIAL,
    _V2_DELETING_SINCE,
    _V3_ARTIFACTS_BY_SOURCE,
    _V4_BACKUP_CHANGES,
    _V5_ARTIFACT_FIGURES,
]
SCHEMA_VERSION = len(MIGRATIONS)


def statements(script: str) -> list[str]:
    """Split a script into statements.

    `executescript` would commit the surrounding transaction, so each
    statement runs on its own inside ours.
    """
    found, pending = [], ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            found.append(pending.strip())
            pending = ""
    if pending.strip():
        raise ValueError(f"unterminated SQL statement in migration: {pending.strip()[:60]}")
    return found


def migrate(conn: sqlite3.Connection, catalog_name: str) -> int:
    """Bring the schema up to SCHEMA_VERSION in one write transaction; return it.

    The version is read after BEGIN IMMEDIATE, so two processes opening a new
    catalog at once cannot both apply the same migration.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise JarvisError(
                f"catalog {catalog_name} has schema version {version}, but this jarvis-tui "
                f"knows versions up to {SCHEMA_VERSION}; upgrade jarvis-tui, or move the "
                "file aside and run `jarvis-tui catalog rebuild`"
            )
        for number in range(version + 1, SCHEMA_VERSION + 1):
            try:
                for statement in statements(MIGRATIONS[number - 1]):
                    conn.execute(statement)
            except sqlite3.Error as exc:
                raise JarvisError(
                    f"catalog {catalog_name}: migration to schema version {number} failed "
                    f"({exc}); it stays at version {version}, unchanged"
                ) from exc
            conn.execute(f"PRAGMA user_version = {number}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return SCHEMA_VERSION
