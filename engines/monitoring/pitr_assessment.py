"""Point-in-time recovery at a glance, for health, the watchdog and the dashboard: the
archiver's verdict (read from the server) and the recoverable window of the server's
cluster with its gaps (from the repository's listing, as `pitr timeline` reads it).

Only with PostgreSQL configured and not while browsing another host's repository (its
cluster is not the server here).
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from engines.catalog import Catalog
from engines.config import Settings
from engines.destinations import repository_from_settings
from engines.errors import JarvisError
from engines.keys import keyring_from_settings
from engines.pitr.archiver_state import read_archiver_state
from engines.pitr.archiver_verdict import (
    ArchiverVerdict,
    LagLimits,
    judge_archiver,
    moment_text,
)
from engines.pitr.archiving import runs_wal_push
from engines.pitr.timeline import (
    TimelineReport,
    TimelineWindow,
    base_backups,
    recoverable_timeline,
)

logger = logging.getLogger("jarvis.monitoring")
ELSEWHERE = (
    "the server archives through its own archive_command, not jarvis-tui wal-push: "
    "no window in this repository (`jarvis-tui pitr setup` shows ours)"
)
STATEMENT_TIMEOUT_S = 10

Windows = Callable[[Settings, Catalog], TimelineReport]


@dataclass(frozen=True)
class PitrAssessment:
    verdict: ArchiverVerdict | None  # None: the server was not read (server_error says why)
    server_error: str = ""
    windows: list[TimelineWindow] = field(default_factory=list)  # the server's cluster's
    window_note: str = ""  # no base backup yet
    window_error: str = ""  # the archive could not be read
    elsewhere: str = ""  # archive_command is not wal-push: this repository holds no window

    @property
    def gaps(self) -> list[str]:
        """One line per timeline with segments missing."""
        return [gap_line(window) for window in self.windows if window.gaps]


def pitr_watched(settings: Settings) -> bool:
    return settings.postgres_configured and not settings.browsing


def read_timeline(settings: Settings, catalog: Catalog) -> TimelineReport:
    repository = repository_from_settings(settings)
    keyring = keyring_from_settings(settings)
    return recoverable_timeline(catalog, repository, keyring, repository.repository_id() or "")


class CachedTimeline:
    """read_timeline again only when the archive's listing or the base backups changed:
    each reading authenticates one archived segment whole (its header gives the segment
    size), too much for a dashboard's every refresh; a listing of the local repository
    is cheap."""

    def __init__(self) -> None:
        self._key: object = None
        self._report: TimelineReport | None = None

    def __call__(self, settings: Settings, catalog: Catalog) -> TimelineReport:
        listed = frozenset(
            (stored.key, stored.modified)
            for stored in repository_from_settings(settings).list("wal/")
        )
        bases = {key: [b.set_id for b in found] for key, found in base_backups(catalog).items()}
        key = (listed, sorted(bases.items()))
        if self._report is None or key != self._key:
            self._report, self._key = read_timeline(settings, catalog), key
        return self._report


def read_verdict(
    settings: Settings, now: datetime, timeout_s: int = STATEMENT_TIMEOUT_S
) -> ArchiverVerdict:
    """`timeout_s` bounds the connection and each query: shorter for a metrics scrape."""
    from engines.postgres.connection import connect, target_from_settings

    with connect(target_from_settings(settings), timeout_s=timeout_s) as conn:
        # The watchdog and the dashboard must never hang on a stuck server: bounded.
        conn.execute(f"SET statement_timeout = '{int(timeout_s)}s'")
        state = read_archiver_state(conn)
    return judge_archiver(state, now, LagLimits.from_settings(settings))


def assess_pitr(
    settings: Settings, catalog: Catalog, now: datetime, windows: Windows = read_timeline
) -> PitrAssessment:
    """The archiver's verdict and, while archiving is on, the window of its cluster."""
    try:
        verdict = read_verdict(settings, now)
    except JarvisError as error:
        return PitrAssessment(None, str(error))
    except Exception as error:  # e.g. a server refusing a function: reported, never raised
        return PitrAssessment(None, f"{type(error).__name__}: {error}")
    if not verdict.state.archives_here:
        return PitrAssessment(verdict)
    if not runs_wal_push(verdict.state.archive_command):
        return PitrAssessment(verdict, elsewhere=ELSEWHERE)
    try:
        report = windows(settings, catalog)
    except JarvisError as error:
        return PitrAssessment(verdict, window_error=str(error))
    except OSError as error:  # the repository's folder unreadable: said, never raised
        return PitrAssessment(verdict, window_error=f"{error.strerror or error}")
    except Exception as error:  # a bug in reading the window must not hide the archiver's state
        logger.exception("reading the PITR window failed")
        return PitrAssessment(verdict, window_error=f"unexpected {type(error).__name__}: {error}")
    system_id = str(verdict.state.system_id)
    mine = [w for w in report.windows if w.system_id == system_id]
    return PitrAssessment(verdict, windows=mine, window_note=report.note)


def window_line(window: TimelineWindow, show: Callable[[datetime], str] = moment_text) -> str:
    """`timeline 1: from <end of the oldest base backup> to <newest segment archived>`."""
    if not window.ranges:
        return f"timeline {window.timeline}: {window.note or 'no base backup with its WAL'}"
    spans = [
        f"from {_moment(part.earliest_time, show) or part.earliest_lsn} "
        f"to {_moment(part.latest_archived_at, show)}"
        for part in window.ranges
    ]
    return f"timeline {window.timeline}: " + " and ".join(spans)


def _moment(text: str, show: Callable[[datetime], str]) -> str:
    try:
        return show(datetime.fromisoformat(text))
    except ValueError:
        return text


def gap_line(window: TimelineWindow) -> str:
    missing = sum(gap.count for gap in window.gaps)
    shown = ", ".join(
        gap.first if gap.count == 1 else f"{gap.first}..{gap.last}" for gap in window.gaps[:3]
    )
    more = f" and {len(window.gaps) - 3} more gap(s)" if len(window.gaps) > 3 else ""
    return (
        f"cluster {window.system_id} timeline {window.timeline}: {missing} WAL segment(s) "
        f"missing from the archive ({shown}{more}); no restore reaches past a gap from a "
        "base backup before it: take a base backup (`jarvis-tui backup postgres --mode base`)"
    )
