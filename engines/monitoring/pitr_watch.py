"""The watchdog's point-in-time recovery conditions, raised and cleared like the others:
`pitr_archiver_failing` (the archiver's last attempt failed), `pitr_archive_lag` (WAL
waiting beyond BACKUP_WAL_LAG_ALERT_SEGMENTS or BACKUP_WAL_LAG_ALERT_SECONDS) and
`pitr_wal_gap:<system id>/<timeline>` (segments missing from the archive).

A server that cannot be read leaves the conditions as they are: nothing is known either
way. Archiving turned off clears them: point-in-time recovery is optional.
"""

from datetime import datetime

from engines.alerts import AlertDispatcher
from engines.catalog import Catalog
from engines.config import Settings
from engines.monitoring.pitr_assessment import PitrAssessment, assess_pitr, gap_line

FAILING = "pitr_archiver_failing"
LAG = "pitr_archive_lag"
GAP = "pitr_wal_gap"


def watch_pitr(
    settings: Settings,
    catalog: Catalog,
    dispatcher: AlertDispatcher,
    now: datetime,
    found: PitrAssessment | None = None,
) -> list[str]:
    """Alert what is wrong, clear what recovered; the open problems."""
    found = found or assess_pitr(settings, catalog, now)
    verdict = found.verdict
    if verdict is None:
        return []
    if not verdict.state.archiving:
        off = "archiving is off (archive_mode=off)"
        dispatcher.clear_condition(FAILING, off)
        dispatcher.clear_condition(LAG, off)
        _clear_gaps(dispatcher, catalog, set(), off)
        return []
    if not verdict.state.archives_here:
        return []
    problems = []
    if verdict.failing:
        problems.append(verdict.failing)
        dispatcher.raise_condition(FAILING, "critical", verdict.failing)
    else:
        dispatcher.clear_condition(FAILING, f"PostgreSQL archives again: {verdict.summary}")
    if verdict.lagging:
        problems.append(verdict.lagging)
        dispatcher.raise_condition(LAG, "warning", f"{verdict.lagging}; {verdict.summary}")
    else:
        dispatcher.clear_condition(LAG, f"the archive caught up: {verdict.summary}")
    if found.window_error:
        return problems  # the archive unread: its gaps unknown, the open ones stay open
    watched = set()
    for window in found.windows:
        condition = f"{GAP}:{window.system_id}/{window.timeline}"
        watched.add(condition)
        if window.gaps:
            line = gap_line(window)
            problems.append(line)
            dispatcher.raise_condition(condition, "critical", line)
        else:
            dispatcher.clear_condition(
                condition,
                f"cluster {window.system_id} timeline {window.timeline}: no segment missing",
            )
    _clear_gaps(dispatcher, catalog, watched, "no longer in the archive's window")
    return problems


def _clear_gaps(dispatcher: AlertDispatcher, catalog: Catalog, kept: set[str], why: str) -> None:
    for stale in catalog.open_conditions(f"{GAP}:"):
        if stale.kind not in kept:
            dispatcher.clear_condition(stale.kind, f"{stale.kind}: {why}")
