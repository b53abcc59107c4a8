"""Is the archiver keeping up? Failing (its last attempt failed) or lagging (more WAL
files waiting than BACKUP_WAL_LAG_ALERT_SEGMENTS, or the oldest waiting longer than
BACKUP_WAL_LAG_ALERT_SECONDS), judged at a moment the caller passes in.

How long the oldest file has waited comes from its `.ready` file's time; a role that may
not list them is told the time since the last archived file while WAL waits (at most
that long).
"""

from dataclasses import dataclass
from datetime import UTC, datetime

from engines.config import Settings
from engines.pitr.archiver_state import ArchiverState

READY_HINT = "grant the role pg_monitor to count the .ready files"


@dataclass(frozen=True)
class LagLimits:
    segments: int
    seconds: int

    @classmethod
    def from_settings(cls, settings: Settings) -> "LagLimits":
        return cls(settings.backup_wal_lag_alert_segments, settings.backup_wal_lag_alert_seconds)


@dataclass(frozen=True)
class ArchiverVerdict:
    state: ArchiverState
    waited_s: float | None  # how long the oldest waiting file has waited; None: none waits
    since_archived_s: float | None  # since the last archived file; None: nothing archived
    failing: str  # one line; "" unless the last attempt failed
    lagging: str  # one line; "" within the limits
    summary: str  # one line: what was archived last and what waits

    @property
    def healthy(self) -> bool:
        return not (self.failing or self.lagging)


def moment_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def seconds_text(seconds: float) -> str:
    whole = int(seconds)
    if whole < 120:
        return f"{whole} s"
    if whole < 7200:
        return f"{whole // 60} min"
    return f"{whole / 3600:.1f} h"


def _age(now: datetime, moment: datetime | None) -> float | None:
    return None if moment is None else max(0.0, (now - moment).total_seconds())


def judge_archiver(state: ArchiverState, now: datetime, limits: LagLimits) -> ArchiverVerdict:
    since = _age(now, state.last_archived_time)
    waiting = state.waiting
    if state.oldest_ready_at is not None:
        waited = _age(now, state.oldest_ready_at)
    elif state.ready_files is None and waiting:
        waited = since
    else:
        waited = None
    lagging = []
    if waiting is not None and waiting >= limits.segments:
        lagging.append(
            f"{waiting} WAL file(s) wait to be archived "
            f"(alert from BACKUP_WAL_LAG_ALERT_SEGMENTS={limits.segments})"
        )
    if waited is not None and waited >= limits.seconds:
        lagging.append(
            f"the oldest WAL file waiting has waited {seconds_text(waited)} "
            f"(alert after BACKUP_WAL_LAG_ALERT_SECONDS={limits.seconds})"
        )
    return ArchiverVerdict(
        state, waited, since, _failing(state), "; ".join(lagging), _summary(state, since)
    )


def _failing(state: ArchiverState) -> str:
    if not state.failing:
        return ""
    assert state.last_failed_time is not None
    success = (
        f"last success {state.last_archived_wal} at {moment_text(state.last_archived_time)}"
        if state.last_archived_time is not None
        else "nothing archived yet"
    )
    since = f" since {moment_text(state.stats_reset)}" if state.stats_reset else ""
    return (
        f"the archiver is failing: {state.last_failed_wal} failed at "
        f"{moment_text(state.last_failed_time)} ({state.failed_count} failure(s){since}); "
        f"{success}; see the PostgreSQL log for archive_command's message"
    )


def _summary(state: ArchiverState, since: float | None) -> str:
    if state.last_archived_wal is None:
        archived = "nothing archived yet"
    else:
        archived = f"last archived {state.last_archived_wal}"
        archived += f" {seconds_text(since)} ago" if since is not None else ""
    if state.ready_files is not None:
        waiting = f"{state.ready_files} WAL file(s) waiting"
    elif state.segments_behind is not None:
        waiting = f"about {state.segments_behind} WAL file(s) waiting ({READY_HINT})"
    else:
        waiting = f"WAL files waiting: unknown ({READY_HINT})"
    return f"{archived}; {waiting}"
