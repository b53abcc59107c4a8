"""Job rows, their log events, progress and cross-process cancellation."""

import os
import socket

from engines.catalog.db import Database
from engines.catalog.rows import (
    EVENT_LEVELS,
    JOB_FINAL_STATUSES,
    JOB_STATUSES,
    Job,
    JobEvent,
    require_one_of,
)
from engines.catalog.times import now_iso, parse_optional
from engines.errors import NotFoundError
from engines.plumbing.processes import job_process_gone
from engines.plumbing.redaction import redact

ORPHAN_ERROR = "process died"


class JobsMixin:
    _db: Database

    def create_job(self, kind: str, description: str, *, set_id: str | None = None) -> Job:
        """A job in status 'running', owned by this process on this host."""
        with self._db.write() as conn:
            job_id = conn.execute(
                "INSERT INTO jobs (kind, description, status, pid, host, started_at, set_id)"
                " VALUES (?, ?, 'running', ?, ?, ?, ?)",
                (kind, redact(description), os.getpid(), socket.gethostname(), now_iso(), set_id),
            ).lastrowid
        return self.get_job(job_id)

    def get_job(self, job_id: int) -> Job:
        row = self._db.row("SELECT * FROM jobs WHERE id = ?", (job_id,))
        if row is None:
            raise NotFoundError(f"no job with id {job_id} in the catalog")
        return Job.from_row(row)

    def list_jobs(self, limit: int = 50, *, status: str | None = None) -> list[Job]:
        """The newest jobs first; with `status`, only those in it."""
        if status is None:
            rows = self._db.rows("SELECT * FROM jobs ORDER BY id DESC LIMIT ?", (int(limit),))
        else:
            require_one_of("job status", status, JOB_STATUSES)
            rows = self._db.rows(
                "SELECT * FROM jobs WHERE status = ? ORDER BY id DESC LIMIT ?",
                (status, int(limit)),
            )
        return [Job.from_row(row) for row in rows]

    def update_job_progress(
        self, job_id: int, done: int, total: int | None = None, unit: str = "bytes"
    ) -> None:
        """Store progress; a `total` of None keeps the one already known."""
        with self._db.write() as conn:
            conn.execute(
                "UPDATE jobs SET progress_done = ?,"
                " progress_total = COALESCE(?, progress_total), progress_unit = ?"
                " WHERE id = ?",
                (done, total, unit, job_id),
            )

    def add_job_event(self, job_id: int, level: str, message: str) -> int:
        require_one_of("event level", level, EVENT_LEVELS)
        with self._db.write() as conn:
            return conn.execute(
                "INSERT INTO job_events (job_id, at, level, message) VALUES (?, ?, ?, ?)",
                (job_id, now_iso(), level, redact(message)),
            ).lastrowid

    def job_events(self, job_id: int, after_id: int = 0) -> list[JobEvent]:
        """Events in order; pass the last id seen to follow a job's log."""
        rows = self._db.rows(
            "SELECT * FROM job_events WHERE job_id = ? AND id > ? ORDER BY id", (job_id, after_id)
        )
        return [JobEvent.from_row(row) for row in rows]

    def job_events_tail(self, job_id: int, count: int) -> list[JobEvent]:
        """The job's last `count` events, in order (a long job's log read from its end)."""
        rows = self._db.rows(
            "SELECT * FROM (SELECT * FROM job_events WHERE job_id = ? ORDER BY id DESC LIMIT ?)"
            " ORDER BY id",
            (job_id, int(count)),
        )
        return [JobEvent.from_row(row) for row in rows]

    def finish_job(self, job_id: int, status: str, error: str | None = None) -> None:
        require_one_of("job status", status, JOB_FINAL_STATUSES)
        with self._db.write() as conn:
            updated = conn.execute(
                "UPDATE jobs SET status = ?, finished_at = ?, error = ? WHERE id = ?",
                (status, now_iso(), None if error is None else redact(error), job_id),
            ).rowcount
        if not updated:
            raise NotFoundError(f"no job with id {job_id} in the catalog")

    def request_job_cancel(self, job_id: int) -> bool:
        """Ask the process running the job to stop; False if it already finished."""
        with self._db.write() as conn:
            if not conn.execute("SELECT 1 FROM jobs WHERE id = ?", (job_id,)).fetchone():
                raise NotFoundError(f"no job with id {job_id} in the catalog")
            return (
                conn.execute(
                    "UPDATE jobs SET cancel_requested = 1"
                    " WHERE id = ? AND status IN ('queued', 'running')",
                    (job_id,),
                ).rowcount
                > 0
            )

    def job_cancel_requested(self, job_id: int) -> bool:
        row = self._db.row("SELECT cancel_requested FROM jobs WHERE id = ?", (job_id,))
        return bool(row and row[0])

    def mark_orphaned_jobs(self) -> list[int]:
        """Fail unfinished jobs whose process on this host is gone (after kill -9 or a crash),
        also when its pid now names another process (after a reboot, say)."""
        host = socket.gethostname()
        with self._db.write() as conn:
            candidates = conn.execute(
                "SELECT id, pid, started_at FROM jobs"
                " WHERE status IN ('queued', 'running') AND host = ?",
                (host,),
            ).fetchall()
            orphaned = [
                row["id"]
                for row in candidates
                if row["pid"] is not None
                and job_process_gone(row["pid"], parse_optional(row["started_at"]))
            ]
            at = now_iso()
            for job_id in orphaned:
                conn.execute(
                    "UPDATE jobs SET status = 'failed', finished_at = ?, error = ? WHERE id = ?",
                    (at, ORPHAN_ERROR, job_id),
                )
                conn.execute(
                    "INSERT INTO job_events (job_id, at, level, message) VALUES (?, ?, 'error', ?)",
                    (job_id, at, f"{ORPHAN_ERROR}: marked failed by process {os.getpid()}"),
                )
                # Its backup set can never finish either; artifacts still `writing` stay
                # incomplete, so nothing half-written is ever offered for restore.
                conn.execute(
                    "UPDATE backup_sets SET status = 'failed', finished_at = ?, error = ? "
                    "WHERE job_id = ? AND status = 'running'",
                    (at, ORPHAN_ERROR, job_id),
                )
                conn.execute(
                    "UPDATE artifacts SET status = 'failed', error = ? WHERE status = 'writing' "
                    "AND set_id IN (SELECT id FROM backup_sets WHERE job_id = ?)",
                    (ORPHAN_ERROR, job_id),
                )
        return orphaned
