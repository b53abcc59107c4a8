"""Each artifact's copy per destination (local, s3): stored, failed with why, deleted."""

from collections.abc import Iterable
from datetime import datetime

from engines.catalog.artifacts import _artifact_set_id
from engines.catalog.db import Database
from engines.catalog.rows import COPY_STATES, Copy, PlacedArtifact, SetCopyCount, require_one_of
from engines.catalog.times import now_iso, parse_optional
from engines.plumbing.redaction import redact

# Set ids per query: well under SQLite's limit of host parameters.
SET_IDS_PER_QUERY = 500


class CopiesMixin:
    _db: Database

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
