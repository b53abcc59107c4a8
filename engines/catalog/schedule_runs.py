"""Schedule runs: every planned run of a schedule, and what became of it.

A run is `running` while its job works, then `succeeded`, `partial`, `failed`,
`cancelled`; a run that could not start is `skipped` (the previous job was
still going) or `missed` (the process was down past the grace time).
"""

import sqlite3
from dataclasses import dataclass
from datetime import datetime

from engines.catalog.db import Database
from engines.catalog.rows import require_one_of
from engines.catalog.times import parse_iso, parse_optional, to_iso
from engines.errors import NotFoundError
from engines.plumbing.redaction import redact

RUN_OUTCOMES = ("running", "succeeded", "partial", "failed", "cancelled", "skipped", "missed")
FINAL_RUN_OUTCOMES = RUN_OUTCOMES[1:]


@dataclass(frozen=True)
class ScheduleRun:
    id: int
    schedule_name: str
    planned_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    outcome: str | None
    job_id: int | None
    detail: str | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "ScheduleRun":
        return cls(
            id=row["id"],
            schedule_name=row["schedule_name"],
            planned_at=parse_iso(row["planned_at"]),
            started_at=parse_optional(row["started_at"]),
            finished_at=parse_optional(row["finished_at"]),
            outcome=row["outcome"],
            job_id=row["job_id"],
            detail=row["detail"],
        )


def _optional_iso(moment: datetime | None) -> str | None:
    return None if moment is None else to_iso(moment)


class ScheduleRunsMixin:
    _db: Database

    def record_schedule_run(
        self,
        schedule_name: str,
        planned_at: datetime,
        outcome: str,
        *,
        started_at: datetime | None = None,
        finished_at: datetime | None = None,
        job_id: int | None = None,
        detail: str | None = None,
    ) -> int:
        require_one_of("schedule run outcome", outcome, RUN_OUTCOMES)
        with self._db.write() as conn:
            return conn.execute(
                "INSERT INTO schedule_runs (schedule_name, planned_at, started_at, finished_at,"
                " outcome, job_id, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    schedule_name,
                    to_iso(planned_at),
                    _optional_iso(started_at),
                    _optional_iso(finished_at),
                    outcome,
                    job_id,
                    None if detail is None else redact(detail),
                ),
            ).lastrowid

    def finish_schedule_run(
        self,
        run_id: int,
        outcome: str,
        finished_at: datetime,
        *,
        job_id: int | None = None,
        detail: str | None = None,
    ) -> None:
        require_one_of("schedule run outcome", outcome, FINAL_RUN_OUTCOMES)
        with self._db.write() as conn:
            updated = conn.execute(
                "UPDATE schedule_runs SET outcome = ?, finished_at = ?,"
                " job_id = COALESCE(?, job_id), detail = COALESCE(?, detail) WHERE id = ?",
                (
                    outcome,
                    to_iso(finished_at),
                    job_id,
                    None if detail is None else redact(detail),
                    run_id,
                ),
            ).rowcount
        if not updated:
            raise NotFoundError(f"no schedule run with id {run_id} in the catalog")

    def list_schedule_runs(
        self, schedule_name: str | None = None, limit: int = 50
    ) -> list[ScheduleRun]:
        """Newest planned time first."""
        where, params = "", []
        if schedule_name is not None:
            where, params = "WHERE schedule_name = ?", [schedule_name]
        rows = self._db.rows(
            f"SELECT * FROM schedule_runs {where} ORDER BY planned_at DESC, id DESC LIMIT ?",
            (*params, int(limit)),
        )
        return [ScheduleRun.from_row(row) for row in rows]

    def latest_schedule_run(
        self, schedule_name: str, *, attempted_only: bool = False
    ) -> ScheduleRun | None:
        """The newest run of a schedule; with `attempted_only`, missed runs are passed over."""
        extra = " AND outcome != 'missed'" if attempted_only else ""
        row = self._db.row(
            f"SELECT * FROM schedule_runs WHERE schedule_name = ?{extra}"
            " ORDER BY planned_at DESC, id DESC LIMIT 1",
            (schedule_name,),
        )
        return None if row is None else ScheduleRun.from_row(row)

    def consecutive_skips(self, schedule_name: str) -> int:
        """How many of the schedule's newest runs in a row were skipped."""
        count = 0
        for run in self.list_schedule_runs(schedule_name, limit=1000):
            if run.outcome != "skipped":
                break
            count += 1
        return count

    def interrupted_schedule_runs(self) -> list[ScheduleRun]:
        """Runs still marked running (their process may have died)."""
        rows = self._db.rows("SELECT * FROM schedule_runs WHERE outcome = 'running' ORDER BY id")
        return [ScheduleRun.from_row(row) for row in rows]

    def start_schedule_run(self, run_id: int, started_at: datetime) -> None:
        with self._db.write() as conn:
            conn.execute(
                "UPDATE schedule_runs SET started_at = ? WHERE id = ?", (to_iso(started_at), run_id)
            )
