"""Artifacts of a backup set, their copies per destination, and their verification."""

import json
import sqlite3
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from engines.catalog.db import Database
from engines.catalog.rows import (
    COPY_STATES,
    Artifact,
    Copy,
    PlacedArtifact,
    SetCopyCount,
    require_one_of,
)
from engines.catalog.times import now_iso, parse_optional
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


# Set ids per query: well under SQLite's limit of host parameters.
SET_IDS_PER_QUERY = 500


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

    def copy_states_on(self, destination: str) -> dict[int, str]:
        """Every artifact's copy state on `destination`, by artifact id, in one query."""
        rows = self._db.rows(
            "SELECT artifact_id, state FROM copies WHERE destination = ?", (destination,)
        )
        return {row["artifact_id"]: row["state"] for row in rows}

    def copies_of(self, artifact_id: int) -> list[Copy]:
        rows = self._db.rows(
            "SELECT * FROM copies WHERE artifact_id = ? ORDER BY destination", (artifact_id,)
        )
        return [Copy.from_row(row) for row in rows]

    def placed_artifacts(self, set_ids: Iterable[str] | None = None) -> list[PlacedArtifact]:
        """The complete artifacts of `set_ids` (of every set when None) with their copies,
        in one query per 500 sets, without reading the artifacts' metadata."""
        sql = (
            "SELECT a.id AS aid, a.set_id, a.relpath, c.artifact_id, c.destination, c.state,"
            " c.updated_at, c.error FROM artifacts AS a"
            " LEFT JOIN copies AS c ON c.artifact_id = a.id WHERE a.status = 'complete'"
        )
        if set_ids is None:
            batches: list[list[str]] = [[]]
        else:
            wanted = list(dict.fromkeys(set_ids))
            batches = [
                wanted[start : start + SET_IDS_PER_QUERY]
                for start in range(0, len(wanted), SET_IDS_PER_QUERY)
            ]
        found: dict[int, tuple[str, str, list[Copy]]] = {}
        for batch in batches:
            query = sql
            if set_ids is not None:
                query += f" AND a.set_id IN ({', '.join('?' * len(batch))})"
            for row in self._db.rows(query + " ORDER BY a.id, c.destination", batch):
                _, _, copies = found.setdefault(row["aid"], (row["set_id"], row["relpath"], []))
                if row["destination"] is not None:
                    copies.append(Copy.from_row(row))
        return [
            PlacedArtifact(artifact_id, set_id, relpath, tuple(copies))
            for artifact_id, (set_id, relpath, copies) in found.items()
        ]

    def copy_counts_on(self, destination: str) -> list[SetCopyCount]:
        """Every finished set with a complete artifact, newest first, with how many of its
        complete artifacts `destination` holds (stored) and how many copies there failed."""
        rows = self._db.rows(
            """
            SELECT s.id, COUNT(*) AS artifacts,
                   COALESCE(SUM(c.state = 'stored'), 0) AS stored,
                   COALESCE(SUM(c.state = 'failed'), 0) AS failed
            FROM backup_sets AS s
            JOIN artifacts AS a ON a.set_id = s.id AND a.status = 'complete'
            LEFT JOIN copies AS c ON c.artifact_id = a.id AND c.destination = ?
            WHERE s.status != 'running'
            GROUP BY s.id ORDER BY s.created_at DESC, s.rowid DESC
            """,
            (destination,),
        )
        return [SetCopyCount(row[0], row[1], row[2], row[3]) for row in rows]

    def last_copy_on(self, destination: str) -> datetime | None:
        """When a copy was last confirmed stored on `destination`."""
        row = self._db.row(
            "SELECT MAX(updated_at) FROM copies WHERE destination = ? AND state = 'stored'",
            (destination,),
        )
        return parse_optional(row[0] if row else None)
