"""Health's point-in-time recovery checks, while the server archives: the archiver, its
lag, the recoverable window and its gaps, one line each. Archiving off is one neutral
line (point-in-time recovery is optional), never a failure; a server that does not
answer is the `postgres reachable` check's to report.
"""

from datetime import datetime

from engines.catalog import Catalog
from engines.config import Settings
from engines.monitoring.checks import HealthCheck
from engines.monitoring.pitr_assessment import (
    PitrAssessment,
    assess_pitr,
    pitr_watched,
    window_line,
)
from engines.plumbing.redaction import redact

OFF = (
    "archiving is off (archive_mode=off): point-in-time recovery is optional; "
    "`jarvis-tui pitr setup` shows how to turn it on"
)
TAKE_BASE = "take a base backup: `jarvis-tui backup postgres --mode base`"
STANDBY = "a standby: its primary archives the WAL"


def check_pitr(settings: Settings, catalog: Catalog, now: datetime) -> list[HealthCheck]:
    if not pitr_watched(settings):
        return []
    return pitr_checks(assess_pitr(settings, catalog, now))


def pitr_checks(found: PitrAssessment) -> list[HealthCheck]:
    verdict = found.verdict
    if verdict is None:
        # health asks only a server `postgres reachable` found answering: one that went away
        # since, is stuck past the statement timeout or refuses the queries is a failure
        # here, not silence
        why = " ".join(redact(found.server_error).split()) or "no answer"
        return [HealthCheck("PITR archiver", False, f"cannot read the archiver's state: {why}")]
    if not verdict.state.archiving:
        return [HealthCheck("PITR", True, OFF)]
    if not verdict.state.archives_here:
        return [HealthCheck("PITR", True, STANDBY)]
    archiver = HealthCheck("PITR archiver", not verdict.failing, verdict.failing or _works(found))
    lag = HealthCheck("PITR archive lag", not verdict.lagging, verdict.lagging or verdict.summary)
    return [archiver, lag, *_window_checks(found)]


def _window_checks(found: PitrAssessment) -> list[HealthCheck]:
    if found.elsewhere:
        return [HealthCheck("PITR window", True, found.elsewhere)]
    if found.window_error:
        return [HealthCheck("PITR window", False, f"cannot read the archive: {found.window_error}")]
    if not found.windows:
        detail = "no base backup of this cluster yet, so no moment to restore to"
        return [HealthCheck("PITR window", True, detail, warning=TAKE_BASE)]
    lines = [window_line(window) for window in found.windows]
    usable = any(window.ranges for window in found.windows)
    window = HealthCheck(
        "PITR window",
        True,
        "restorable " + "; ".join(lines),
        warning="" if usable else TAKE_BASE,
    )
    gaps = found.gaps
    gap = HealthCheck("PITR gaps", not gaps, "; ".join(gaps) or "no segment missing")
    return [window, gap]


def _works(found: PitrAssessment) -> str:
    assert found.verdict is not None
    state = found.verdict.state
    if state.last_archived_wal is None:
        return "nothing archived yet, nothing failed"
    retried = f"; {state.failed_count} earlier failure(s) retried" if state.failed_count else ""
    return f"the last attempt succeeded ({state.archived_count} file(s) archived{retried})"
