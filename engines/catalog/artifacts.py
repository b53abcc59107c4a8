"""Artifacts of a backup set and their verification (their copies: copies.py)."""

import json
import sqlite3
from typing import Any

from engines.catalog.db import Database
from engines.catalog.rows import Artifact
from engines.catalog.times import now_iso
from engines.errors import NotFoundError
from engines.plumbing.redaction import redact, redact_value


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

    def forget_failed_artifact(self, artifact_id: int) -> None:
        """Remove the row of an artifact whose writing failed (nothing of it was stored)
        because another takes its place in the set under the same name."""
        with self._db.write() as conn:
            removed = conn.execute(
                "DELETE FROM artifacts WHERE id = ? AND status = 'failed'", (artifact_id,)
            ).rowcount
            if not removed:
                raise NotFoundError(f"no failed artifact with id {artifact_id} in the catalog")

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
