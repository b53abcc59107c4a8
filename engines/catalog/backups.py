"""Backup sets: one row per backup run, named `<kind>_<UTC date>_<HHMMSS>`."""

import re
import sqlite3
from datetime import UTC, datetime

from engines.catalog.db import Database
from engines.catalog.rows import (
    ADDED_BYTES_SQL,
    SET_FINAL_STATUSES,
    SET_KINDS_PATTERN,
    SET_TIERS,
    BackupSet,
    require_one_of,
)
from engines.catalog.times import now_iso, parse_iso, to_iso, utc_now
from engines.errors import NotFoundError
from engines.plumbing.redaction import redact

LATEST = "latest"
_LIST_HINT = "run `jarvis-tui list` to see the backup sets in the catalog"

# Artifact count and stored bytes ride along with every set listing. A files snapshot's
# artifact is only its manifest: the packs it wrote into the files store count as well.
# They are summed for the chosen sets only: the sets are picked first (rowids in the
# newest-first order, no other column read), then read with their sums. A join on a
# subquery grouping every artifact summed the whole catalog for each lookup (15 ms for
# one set among 10,000), and sums in the outer query are taken for every matching set
# before a sort keeps the newest one.
_SET_COLUMNS = f"""
s.*,
(SELECT COUNT(*) FROM artifacts AS a WHERE a.set_id = s.id) AS artifact_count,
(SELECT COALESCE(SUM({ADDED_BYTES_SQL}), 0)
 FROM artifacts AS a WHERE a.set_id = s.id) AS stored_size
"""
_NEWEST_FIRST = " ORDER BY s.created_at DESC, s.rowid DESC"


def _select_sets(where: str = "1", *, limit: bool = False) -> str:
    """The sets matching `where` (on `s`), newest first, with their sums; `limit` adds a
    `LIMIT ?` (its value the last parameter)."""
    chosen = f"SELECT s.rowid AS position FROM backup_sets AS s WHERE {where}{_NEWEST_FIRST}"
    if limit:
        chosen += " LIMIT ?"
    return (
        f"WITH chosen AS ({chosen}) SELECT {_SET_COLUMNS} FROM chosen"
        f" JOIN backup_sets AS s ON s.rowid = chosen.position{_NEWEST_FIRST}"
    )


_HOLDS_SOURCE = (
    "(s.status IN ('complete', 'partial') AND EXISTS (SELECT 1 FROM artifacts AS a"
    " WHERE a.set_id = s.id AND a.source = ? AND a.status = 'complete'))"
)
# ... of which a base backup (mode `base`, pg_basebackup) or not (a dump), as asked.
_HOLDS_SOURCE_BASE = (
    "(s.status IN ('complete', 'partial') AND EXISTS (SELECT 1 FROM artifacts AS a"
    " WHERE a.set_id = s.id AND a.source = ? AND a.status = 'complete'"
    " AND (a.mode = 'base') = ?))"
)


def validate_kind(kind: str) -> None:
    if not re.fullmatch(SET_KINDS_PATTERN, kind):
        raise ValueError(
            f"backup kind {kind!r} must be lowercase letters, digits, '-' or '_' "
            "(for example postgres, redis, files)"
        )


def validate_tier(tier: str | None) -> None:
    if tier is not None:
        require_one_of("tier", tier, SET_TIERS)


def base_set_id(kind: str, created_at: datetime) -> str:
    to_iso(created_at)  # rejects a naive datetime
    stamp = created_at.astimezone(UTC)
    return f"{kind}_{stamp:%Y-%m-%d}_{stamp:%H%M%S}"


def free_set_id(conn: sqlite3.Connection, base: str) -> str:
    """`base`, or `base-2`, `base-3`, ... when two sets start in the same second."""
    candidate, suffix = base, 1
    while conn.execute("SELECT 1 FROM backup_sets WHERE id = ?", (candidate,)).fetchone():
        suffix += 1
        candidate = f"{base}-{suffix}"
    return candidate


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class BackupSetsMixin:
    _db: Database

    def create_backup_set(
        self,
        kind: str,
        *,
        tier: str | None = None,
        job_id: int | None = None,
        created_at: datetime | None = None,
    ) -> BackupSet:
        """Start a set in status 'running'; a given job is linked both ways."""
        validate_kind(kind)
        validate_tier(tier)
        created_at = created_at or utc_now()
        with self._db.write() as conn:
            set_id = free_set_id(conn, base_set_id(kind, created_at))
            conn.execute(
                "INSERT INTO backup_sets (id, kind, tier, status, created_at, job_id)"
                " VALUES (?, ?, ?, 'running', ?, ?)",
                (set_id, kind, tier, to_iso(created_at), job_id),
            )
            if job_id is not None:
                conn.execute(
                    "UPDATE jobs SET set_id = ? WHERE id = ? AND set_id IS NULL", (set_id, job_id)
                )
        return self.get_backup_set(set_id)

    def finish_backup_set(
        self, set_id: str, status: str, error: str | None = None, *, note: str | None = None
    ) -> None:
        """`note` (kept when None) says what each part of a multi-source set did."""
        require_one_of("backup set status", status, SET_FINAL_STATUSES)
        with self._db.write() as conn:
            updated = conn.execute(
                "UPDATE backup_sets SET status = ?, finished_at = ?, error = ?,"
                " note = COALESCE(?, note) WHERE id = ?",
                (
                    status,
                    now_iso(),
                    None if error is None else redact(error),
                    None if note is None else redact(note),
                    set_id,
                ),
            ).rowcount
        if not updated:
            raise NotFoundError(f"no backup set named {set_id!r}; {_LIST_HINT}")

    def get_backup_set(
        self, id_or_latest: str, kind: str | None = None, *, base: bool | None = None
    ) -> BackupSet:
        """A set by id, or with "latest" the newest complete set (of `kind` if given).

        With `kind`, a multi-source set (`backup full`, complete or partial) that holds a
        complete artifact of that source counts as one of its backups. With `kind` and
        `base`, `latest` is the newest holding a base backup of it (True) or another
        mode, a dump (False); a set named by id is returned as it is.
        """
        if id_or_latest == LATEST:
            where, params = "s.deleting_since IS NULL AND s.status = 'complete'", []
            if kind is not None and base is not None:
                where = f"s.deleting_since IS NULL AND {_HOLDS_SOURCE_BASE}"
                params.extend([kind, base])
            elif kind is not None:
                where = (
                    "s.deleting_since IS NULL AND "
                    f"((s.status = 'complete' AND s.kind = ?) OR {_HOLDS_SOURCE})"
                )
                params.extend([kind, kind])
            row = self._db.row(_select_sets(where, limit=True), [*params, 1])
            if row is None:
                what = f"complete {kind} backup" if kind else "complete backup"
                if base is not None and kind is not None:
                    what = f"complete {kind} {'base' if base else 'dump'} backup"
                raise NotFoundError(f"there is no {what} in the catalog yet; {_LIST_HINT}")
            return BackupSet.from_row(row)

        row = self._db.row(_select_sets("s.id = ?"), (id_or_latest,))
        if row is None:
            raise NotFoundError(f"no backup set named {id_or_latest!r}; {_LIST_HINT}")
        found = BackupSet.from_row(row)
        if kind is not None and found.kind != kind and not self._holds_source(found.id, kind):
            raise NotFoundError(
                f"backup set {id_or_latest!r} is a {found.kind} backup, not {kind}; {_LIST_HINT}"
            )
        return found

    def _holds_source(self, set_id: str, source: str) -> bool:
        sql = f"SELECT 1 FROM backup_sets AS s WHERE s.id = ? AND {_HOLDS_SOURCE}"
        return self._db.row(sql, (set_id, source)) is not None

    def list_backup_sets(
        self, *, kind: str | None = None, limit: int | None = None, search: str | None = None
    ) -> list[BackupSet]:
        """Newest first; `search` matches id, tier, status, note or error, case-insensitively."""
        clauses, params = [], []
        if kind is not None:
            clauses.append("s.kind = ?")
            params.append(kind)
        if search:
            pattern = _like_pattern(search)
            clauses.append(
                "("
                + " OR ".join(
                    f"s.{column} LIKE ? ESCAPE '\\'"
                    for column in ("id", "tier", "status", "note", "error")
                )
                + ")"
            )
            params.extend([pattern] * 5)
        if limit is not None:
            params.append(int(limit))
        sql = _select_sets(" AND ".join(clauses) or "1", limit=limit is not None)
        return [BackupSet.from_row(row) for row in self._db.rows(sql, params)]

    def mark_set_deleting(self, set_id: str) -> None:
        """Record that the set's deletion has begun (kept from the first time): from now on
        every cleanup finishes it whatever retention says, and `latest` passes over it."""
        with self._db.write() as conn:
            conn.execute(
                "UPDATE backup_sets SET deleting_since = COALESCE(deleting_since, ?) WHERE id = ?",
                (now_iso(), set_id),
            )

    def sets_being_deleted(self) -> dict[str, datetime]:
        """The sets whose deletion has begun and is not finished, with when it began."""
        rows = self._db.rows(
            "SELECT id, deleting_since FROM backup_sets WHERE deleting_since IS NOT NULL"
            " ORDER BY deleting_since, id"
        )
        return {row["id"]: parse_iso(row["deleting_since"]) for row in rows}

    def delete_backup_set(self, set_id: str) -> bool:
        """Forget a set with its artifacts and copies; False if it was not there."""
        with self._db.write() as conn:
            return conn.execute("DELETE FROM backup_sets WHERE id = ?", (set_id,)).rowcount > 0
