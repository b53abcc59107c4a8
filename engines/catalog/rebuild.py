"""`catalog rebuild`'s writes: artifacts from their sealed metadata, rows of vanished files.

Every field comes from the metadata sealed inside the artifact (read with the key),
and the checksum and size from the file itself; a sidecar never fills a column. A
set already in the catalog keeps its status (a failed set stays failed, a partial
one partial); a set the catalog did not know takes its status from its sealed set
record (a record still "running" is a set whose run was interrupted: failed), and is
complete only when every part its artifacts were sealed with is present too. Without a
record (repositories from before records) the parts present decide.
"""

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from engines.catalog.artifacts import _refresh_set_verification
from engines.catalog.backups import validate_kind, validate_tier
from engines.catalog.db import Database
from engines.catalog.times import parse_iso, to_iso
from engines.errors import IntegrityError
from engines.plumbing.redaction import redact, redact_value

# Sealed fields every artifact written by `store_artifact` carries.
SEALED_REQUIRED = ("set_id", "set_kind", "source", "mode", "created_at")


@dataclass(frozen=True)
class SealedArtifact:
    """What `catalog rebuild` learnt of one artifact file, all of it authenticated."""

    relpath: str
    sealed: dict[str, Any]  # the metadata sealed inside the container
    checksum: str  # sha256 of the stored file
    stored_size: int

    @property
    def set_id(self) -> str:
        return str(self.sealed["set_id"])

    @property
    def source(self) -> str:
        return str(self.sealed["source"])

    @property
    def set_parts(self) -> list[str]:
        """The sources the set meant to back up (sealed since set records began)."""
        parts = self.sealed.get("set_parts")
        if isinstance(parts, list) and all(isinstance(part, str) for part in parts):
            return parts
        return [self.source]


@dataclass(frozen=True)
class SetRecord:
    """How a set ended, from its sealed record; `sealed` is None when the record failed
    authentication (then nothing authentic says how the set ended)."""

    set_id: str
    sealed: dict[str, Any] | None
    problem: str | None = None  # why it could not be trusted


INTERRUPTED = "interrupted: its run ended without finishing the set (killed or stopped)"


def check_sealed(relpath: str, sealed: dict[str, Any]) -> None:
    """Refuse sealed metadata that cannot fill a catalog row (IntegrityError)."""
    missing = [key for key in SEALED_REQUIRED if sealed.get(key) in (None, "")]
    if missing:
        raise IntegrityError(f"{relpath}: sealed metadata lacks {', '.join(missing)}")
    try:
        validate_kind(str(sealed["set_kind"]))
        validate_tier(sealed.get("set_tier"))
        parse_iso(str(sealed["created_at"]))
        parse_iso(str(sealed.get("set_created_at") or sealed["created_at"]))
    except (TypeError, ValueError) as exc:
        raise IntegrityError(f"{relpath}: sealed metadata is malformed: {exc}") from None


def check_record(relpath: str, sealed: dict[str, Any]) -> None:
    """Refuse a set record whose set fields cannot fill a catalog row (IntegrityError)."""
    check_sealed(relpath, {"source": "set", "mode": "record", **sealed})


def _insert_set(
    conn: sqlite3.Connection, set_id: str, sealed: dict[str, Any], status: str, error: str | None
) -> bool:
    created = to_iso(parse_iso(str(sealed.get("set_created_at") or sealed["created_at"])))
    return (
        conn.execute(
            "INSERT INTO backup_sets (id, kind, tier, status, created_at, finished_at, error)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
            (
                set_id, sealed["set_kind"], sealed.get("set_tier"), status, created, created,
                None if error is None else redact(error),
            ),
        ).rowcount
        > 0
    )  # fmt: skip


def _upsert_artifact(conn: sqlite3.Connection, found: SealedArtifact) -> None:
    """A row that exists keeps its status (a failed artifact stays failed) and, for the
    same checksum, its verification."""
    sealed = found.sealed
    metadata = {**sealed, "stored_size": found.stored_size, "checksum": found.checksum}
    conn.execute(
        """
        INSERT INTO artifacts (set_id, source, mode, relpath, status, checksum,
            stored_size, plain_size, key_id, codec, metadata_json, created_at)
        VALUES (?, ?, ?, ?, 'complete', ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (relpath) DO UPDATE SET
            set_id = excluded.set_id, source = excluded.source, mode = excluded.mode,
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
            found.set_id,
            found.source,
            str(sealed["mode"]),
            found.relpath,
            found.checksum,
            found.stored_size,
            sealed.get("plain_size"),
            sealed.get("key_id"),
            sealed.get("codec"),
            json.dumps(redact_value(metadata), sort_keys=True),
            to_iso(parse_iso(str(sealed["created_at"]))),
        ),
    )


def _new_set_status(
    artifacts: list[SealedArtifact], record: SetRecord | None
) -> tuple[str, str | None]:
    if record is not None and record.sealed is None:
        return "failed", f"catalog rebuild: no trustworthy set record ({record.problem})"
    if record is not None and record.sealed["status"] in ("running", "failed"):
        if record.sealed["status"] == "running":
            return "failed", INTERRUPTED
        return "failed", record.sealed.get("error") or "failed"
    planned = {part for found in artifacts for part in found.set_parts}
    present = {found.source for found in artifacts}
    lacking = sorted(planned - present)
    if record is not None and record.sealed["status"] == "partial":
        return "partial", record.sealed.get("error") or "partial"
    if not lacking:
        return "complete", None
    return "partial", f"catalog rebuild: no artifact of {', '.join(lacking)} in the repository"


class RebuildMixin:
    _db: Database

    def import_sealed_artifacts(
        self, found: list[SealedArtifact], records: dict[str, SetRecord] | None = None
    ) -> list[str]:
        """Upsert every artifact in one transaction; return the ids of sets it created.

        A failed set's record creates its row even when none of its artifacts is left
        (so retention deletes it, and its record); a finished one without artifacts is
        not listed again.
        """
        records = records or {}
        by_set: dict[str, list[SealedArtifact]] = {}
        for item in found:
            by_set.setdefault(item.set_id, []).append(item)
        created = []
        with self._db.write() as conn:
            for set_id, record in records.items():
                if set_id in by_set or record.sealed is None:
                    continue
                if record.sealed["status"] in ("running", "failed"):
                    status, error = _new_set_status([], record)
                    if _insert_set(conn, set_id, record.sealed, status, error):
                        created.append(set_id)
            for set_id, artifacts in by_set.items():
                status, error = _new_set_status(artifacts, records.get(set_id))
                if _insert_set(conn, set_id, artifacts[0].sealed, status, error):
                    created.append(set_id)
                for item in artifacts:
                    previous = conn.execute(
                        "SELECT set_id FROM artifacts WHERE relpath = ?", (item.relpath,)
                    ).fetchone()
                    _upsert_artifact(conn, item)
                    if previous and previous[0] != set_id:
                        _refresh_set_verification(conn, previous[0])
                _refresh_set_verification(conn, set_id)
        return created

    def forget_vanished_artifacts(self, present: set[str]) -> list[str]:
        """Drop complete artifacts whose file is not among `present` (repository keys).

        A set that loses some of its artifacts this way is no longer complete
        (partial); a complete or partial set left without any artifact goes. A failed
        set stays, with what it records of the failure.
        """
        dropped = []
        with self._db.write() as conn:
            rows = conn.execute(
                "SELECT id, set_id, relpath FROM artifacts WHERE status = 'complete'"
            ).fetchall()
            touched: set[str] = set()
            for artifact_id, set_id, relpath in rows:
                if relpath not in present:
                    conn.execute("DELETE FROM artifacts WHERE id = ?", (artifact_id,))
                    dropped.append(relpath)
                    touched.add(set_id)
            for set_id in sorted(touched):
                remaining = conn.execute(
                    "SELECT COUNT(*) FROM artifacts WHERE set_id = ? AND status = 'complete'",
                    (set_id,),
                ).fetchone()[0]
                if remaining == 0:
                    conn.execute(
                        "DELETE FROM backup_sets"
                        " WHERE id = ? AND status IN ('complete', 'partial')",
                        (set_id,),
                    )
                else:
                    conn.execute(
                        "UPDATE backup_sets SET status = 'partial', error = COALESCE(error, ?)"
                        " WHERE id = ? AND status = 'complete'",
                        ("catalog rebuild: artifacts missing from the repository", set_id),
                    )
                _refresh_set_verification(conn, set_id)
        return dropped
