"""Artifacts of a backup set, their copies per destination, and their verification."""

import json
import sqlite3
from typing import Any

from engines.catalog.backups import validate_kind, validate_tier
from engines.catalog.db import Database
from engines.catalog.rows import COPY_STATES, Artifact, Copy, require_one_of
from engines.catalog.times import now_iso, parse_iso, to_iso
from engines.errors import IntegrityError, NotFoundError
from engines.joblog import redact, redact_value

# Sidecar keys that fill columns; every other key is kept as metadata.
_SIDECAR_REQUIRED = (
    "set_id",
    "set_kind",
    "source",
    "mode",
    "created_at",
    "checksum",
    "stored_size",
)
_SIDECAR_COLUMNS = (
    *_SIDECAR_REQUIRED,
    "set_tier",
    "tier",
    "set_created_at",
    "relpath",
    "plain_size",
    "key_id",
    "codec",
)


def _metadata_json(metadata: dict[str, Any]) -> str:
    return json.dumps(redact_value(metadata), sort_keys=True)


def _refresh_set_verification(conn: sqlite3.Connection, set_id: str) -> None:
    """A set is 'failed' if any artifact failed, 'ok' once every complete one is ok."""
    conn.execute(
        """
        UPDATE backup_sets SET verified_state = (
            SELECT CASE
                WHEN SUM(verify_state = 'failed') > 0 THEN 'failed'
                WHEN SUM(verify_state IS NOT 'ok') = 0 THEN 'ok'
            END
            FROM artifacts WHERE set_id = ? AND status = 'complete'
        ) WHERE id = ?
        """,
        (set_id, set_id),
    )


def _artifact_set_id(conn: sqlite3.Connection, artifact_id: int) -> str:
    row = conn.execute("SELECT set_id FROM artifacts WHERE id = ?", (artifact_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"no artifact with id {artifact_id} in the catalog")
    return row[0]


class ArtifactsMixin:
    _db: Database

    def add_artifact(self, set_id: str, source: str, mode: str, relpath: str) -> Artifact:
        """Record an artifact that is being written (status 'writing')."""
        with self._db.write() as conn:
            if not conn.execute("SELECT 1 FROM backup_sets WHERE id = ?", (set_id,)).fetchone():
                raise NotFoundError(f"no backup set named {set_id!r} to add {relpath} to")
            existing = conn.execute(
                "SELECT id FROM artifacts WHERE relpath = ?", (relpath,)
            ).fetchone()
            if existing:
                raise ValueError(
                    f"artifact {relpath} is already in the catalog (artifact id {existing[0]})"
                )
            artifact_id = conn.execute(
                "INSERT INTO artifacts (set_id, source, mode, relpath, status, created_at)"
                " VALUES (?, ?, ?, ?, 'writing', ?)",
                (set_id, source, mode, relpath, now_iso()),
            ).lastrowid
        return self.get_artifact(artifact_id)

    def complete_artifact(
        self,
        artifact_id: int,
        *,
        checksum: str,
        stored_size: int,
        plain_size: int | None,
        key_id: str | None,
        codec: str | None,
        metadata: dict[str, Any],
    ) -> None:
        with self._db.write() as conn:
            updated = conn.execute(
                "UPDATE artifacts SET status = 'complete', checksum = ?, stored_size = ?,"
                " plain_size = ?, key_id = ?, codec = ?, metadata_json = ?, error = NULL"
                " WHERE id = ?",
                (
                    checksum,
                    stored_size,
                    plain_size,
                    key_id,
                    codec,
                    _metadata_json(metadata),
                    artifact_id,
                ),
            ).rowcount
            if not updated:
                raise NotFoundError(f"no artifact with id {artifact_id} in the catalog")

    def fail_artifact(self, artifact_id: int, error: str) -> None:
        with self._db.write() as conn:
            updated = conn.execute(
                "UPDATE artifacts SET status = 'failed', error = ? WHERE id = ?",
                (redact(error), artifact_id),
            ).rowcount
            if not updated:
                raise NotFoundError(f"no artifact with id {artifact_id} in the catalog")

    def get_artifact(self, artifact_id: int) -> Artifact:
        row = self._db.row("SELECT * FROM artifacts WHERE id = ?", (artifact_id,))
        if row is None:
            raise NotFoundError(f"no artifact with id {artifact_id} in the catalog")
        return Artifact.from_row(row)

    def artifacts_of(self, set_id: str) -> list[Artifact]:
        rows = self._db.rows("SELECT * FROM artifacts WHERE set_id = ? ORDER BY id", (set_id,))
        return [Artifact.from_row(row) for row in rows]

    def find_artifact_by_relpath(self, relpath: str) -> Artifact | None:
        row = self._db.row("SELECT * FROM artifacts WHERE relpath = ?", (relpath,))
        return None if row is None else Artifact.from_row(row)

    def record_verification(self, artifact_id: int, ok: bool, detail: str) -> None:
        """Store a verify result and roll it up into the set's verified_state."""
        with self._db.write() as conn:
            set_id = _artifact_set_id(conn, artifact_id)
            conn.execute(
                "UPDATE artifacts SET verify_state = ?, verified_at = ?, verify_detail = ?"
                " WHERE id = ?",
                ("ok" if ok else "failed", now_iso(), redact(detail), artifact_id),
            )
            _refresh_set_verification(conn, set_id)

    def set_copy_state(
        self, artifact_id: int, destination: str, state: str, error: str | None = None
    ) -> None:
        require_one_of("copy state", state, COPY_STATES)
        with self._db.write() as conn:
            _artifact_set_id(conn, artifact_id)
            conn.execute(
                "INSERT INTO copies (artifact_id, destination, state, updated_at, error)"
                " VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (artifact_id, destination) DO UPDATE SET"
                " state = excluded.state, updated_at = excluded.updated_at, error = excluded.error",
                (
                    artifact_id,
                    destination,
                    state,
                    now_iso(),
                    None if error is None else redact(error),
                ),
            )

    def copies_of(self, artifact_id: int) -> list[Copy]:
        rows = self._db.rows(
            "SELECT * FROM copies WHERE artifact_id = ? ORDER BY destination", (artifact_id,)
        )
        return [Copy.from_row(row) for row in rows]

    def import_sidecar(self, relpath: str, sidecar: dict[str, Any]) -> None:
        """Upsert one artifact (and its set, as 'complete') from a repository sidecar.

        Idempotent, for `catalog rebuild`. Keys: set_id, set_kind, source, mode,
        created_at, checksum, stored_size (required); set_tier (or tier),
        set_created_at, plain_size, key_id, codec (optional); the rest is metadata.
        A changed checksum clears the artifact's earlier verification.
        """
        missing = [key for key in _SIDECAR_REQUIRED if sidecar.get(key) in (None, "")]
        if missing:
            raise IntegrityError(f"sidecar of {relpath} lacks {', '.join(missing)}")
        tier = sidecar.get("set_tier", sidecar.get("tier"))
        try:
            validate_kind(sidecar["set_kind"])
            validate_tier(tier)
            created_at = to_iso(parse_iso(str(sidecar["created_at"])))
            set_created_at = to_iso(parse_iso(str(sidecar.get("set_created_at") or created_at)))
            stored_size = int(sidecar["stored_size"])
        except ValueError as exc:
            raise IntegrityError(f"sidecar of {relpath} is malformed: {exc}") from exc
        metadata = {k: v for k, v in sidecar.items() if k not in _SIDECAR_COLUMNS}
        set_id = str(sidecar["set_id"])

        with self._db.write() as conn:
            conn.execute(
                "INSERT INTO backup_sets (id, kind, tier, status, created_at, finished_at)"
                " VALUES (?, ?, ?, 'complete', ?, ?) ON CONFLICT (id) DO NOTHING",
                (set_id, sidecar["set_kind"], tier, set_created_at, set_created_at),
            )
            previous = conn.execute(
                "SELECT set_id FROM artifacts WHERE relpath = ?", (relpath,)
            ).fetchone()
            conn.execute(
                """
                INSERT INTO artifacts (set_id, source, mode, relpath, status, checksum,
                    stored_size, plain_size, key_id, codec, metadata_json, created_at)
                VALUES (?, ?, ?, ?, 'complete', ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (relpath) DO UPDATE SET
                    set_id = excluded.set_id, source = excluded.source, mode = excluded.mode,
                    status = 'complete', error = NULL,
                    verify_state = CASE WHEN artifacts.checksum IS excluded.checksum
                                        THEN artifacts.verify_state END,
                    verified_at = CASE WHEN artifacts.checksum IS excluded.checksum
                                       THEN artifacts.verified_at END,
                    verify_detail = CASE WHEN artifacts.checksum IS excluded.checksum
                                         THEN artifacts.verify_detail END,
                    checksum = excluded.checksum, stored_size = excluded.stored_size,
                    plain_size = excluded.plain_size, key_id = excluded.key_id,
                    codec = excluded.codec, metadata_json = excluded.metadata_json,
                    created_at = excluded.created_at
                """,
                (
                    set_id,
                    sidecar["source"],
                    sidecar["mode"],
                    relpath,
                    sidecar["checksum"],
                    stored_size,
                    sidecar.get("plain_size"),
                    sidecar.get("key_id"),
                    sidecar.get("codec"),
                    _metadata_json(metadata),
                    created_at,
                ),
            )
            _refresh_set_verification(conn, set_id)
            if previous and previous[0] != set_id:
                _refresh_set_verification(conn, previous[0])
