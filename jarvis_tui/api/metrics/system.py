"""The parts of `GET /metrics` read outside the catalog's tables: copy destinations (from
the settings, counted by the catalog), free space on the repository's and the catalog's
file systems, and PostgreSQL's WAL archiver for point-in-time recovery.

The archiver is read only while it is watched (PostgreSQL configured, not browsing another
host's repository), as health and the watchdog read it, with a short timeout, in a thread
the scrape waits for at most PITR_DEADLINE_S; one reading at a time, so a stuck server
never piles threads up. A server that does not answer is `jarvis_backup_pitr_up 0` and
one log line, never a failed scrape.
"""

import logging
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from engines.catalog.times import utc_now
from engines.config import Settings
from engines.monitoring.watchdog import disk_space
from engines.repository.whereabouts import copy_destination_names
from jarvis_tui.api.context import ApiContext
from jarvis_tui.api.metrics.families import PREFIX, gauge, one_line, single

logger = logging.getLogger("jarvis.api")

PITR_TIMEOUT_S = 2  # libpq's shortest connect_timeout; also each query's statement_timeout
PITR_DEADLINE_S = 5.0
_READING = threading.Lock()


def destination_metrics(context: ApiContext) -> Iterator[Metric]:
    behind = gauge(
        "sets_not_offsite",
        "Finished sets with a complete artifact not stored on the copy destination",
        ["destination"],
    )
    failed = gauge(
        "copies_failed",
        "Copies of complete artifacts recorded failed on the copy destination",
        ["destination"],
    )
    last = gauge(
        "last_copy_timestamp_seconds",
        "When a copy was last confirmed stored on the copy destination",
        ["destination"],
    )
    for name in copy_destination_names(context.settings):
        backlog = context.catalog.offsite_summary(name)
        behind.add_metric([name], backlog.incomplete_sets)
        failed.add_metric([name], backlog.failed_copies)
        last_copy_at = context.catalog.last_copy_on(name)
        if last_copy_at is not None:
            last.add_metric([name], last_copy_at.timestamp())
    yield from (behind, failed, last)


def space_metrics(context: ApiContext) -> Iterator[Metric]:
    settings = context.settings
    free = gauge("filesystem_free_bytes", "Free bytes on the file system of the volume", ["volume"])
    size = gauge(
        "filesystem_size_bytes", "Size in bytes of the file system of the volume", ["volume"]
    )
    if not settings.browsing:  # the browsed repository is another host's S3 prefix
        repository = disk_space(settings)
        free.add_metric(["repository"], repository.free_bytes)
        size.add_metric(["repository"], repository.total_bytes)
    catalog = shutil.disk_usage(_existing(Path(settings.catalog_path).parent))
    free.add_metric(["catalog"], catalog.free)
    size.add_metric(["catalog"], catalog.total)
    yield from (free, size)
    yield single(
        "min_free_ratio",
        "BACKUP_MIN_FREE_PERCENT as a ratio: less free on the repository's disk is alerted",
        settings.backup_min_free_percent / 100,
    )


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def pitr_metrics(context: ApiContext) -> Iterator[Metric]:
    from engines.monitoring.pitr_assessment import pitr_watched

    settings = context.settings
    watched = pitr_watched(settings)
    yield single(
        "pitr_watched",
        "1 while PostgreSQL is configured, so its WAL archiver is read at each scrape",
        1 if watched else 0,
    )
    if not watched:
        return
    try:
        verdict = _read_verdict(settings)
    except Exception as error:  # any failure to read the server: pitr_up 0, never raised
        logger.warning("metrics: PostgreSQL's archiver not read: %s", one_line(error))
        yield _up(0)
        return
    yield _up(1)
    state = verdict.state
    yield single(
        "pitr_archiving",
        "1 when this server archives WAL (archive_mode on)",
        1 if state.archives_here else 0,
    )
    yield single(
        "pitr_archiver_failing",
        "1 when the archiver's last attempt failed",
        1 if verdict.failing else 0,
    )
    yield single(
        "pitr_archive_lagging",
        "1 when WAL waits beyond BACKUP_WAL_LAG_ALERT_SEGMENTS or _SECONDS",
        1 if verdict.lagging else 0,
    )
    if state.waiting is not None:
        yield single(
            "pitr_wal_waiting_files",
            "WAL files waiting to be archived (.ready files, else an estimate)",
            state.waiting,
        )
    yield single(
        "pitr_oldest_wal_waiting_seconds",
        "How long the oldest WAL file waiting to be archived has waited (0: none waits)",
        verdict.waited_s or 0.0,
    )
    if state.last_archived_time is not None:
        yield single(
            "pitr_last_archived_timestamp_seconds",
            "When PostgreSQL last archived a WAL file",
            state.last_archived_time.timestamp(),
        )
    yield CounterMetricFamily(
        PREFIX + "pitr_archived",
        "WAL files archived (pg_stat_archiver)",
        value=state.archived_count,
    )
    yield CounterMetricFamily(
        PREFIX + "pitr_archive_failures",
        "Failed attempts to archive a WAL file (pg_stat_archiver)",
        value=state.failed_count,
    )


def _read_verdict(settings: Settings):
    """read_verdict within PITR_DEADLINE_S, in a daemon thread a stuck server cannot hold
    past its own timeouts; while one reading still waits, the next scrape does not start
    another."""
    from engines.monitoring.pitr_assessment import read_verdict

    if not _READING.acquire(blocking=False):
        raise TimeoutError("the previous scrape's reading still waits for the server")
    found: dict[str, object] = {}

    def read() -> None:
        try:
            found["verdict"] = read_verdict(settings, utc_now(), PITR_TIMEOUT_S)
        except BaseException as error:
            found["error"] = error
        finally:
            _READING.release()

    reader = threading.Thread(target=read, name="metrics-pitr", daemon=True)
    reader.start()
    reader.join(PITR_DEADLINE_S)
    if reader.is_alive():
        raise TimeoutError(f"PostgreSQL did not answer within {PITR_DEADLINE_S:g} s")
    if "error" in found:
        raise found["error"]  # type: ignore[misc]
    return found["verdict"]


def _up(value: int) -> GaugeMetricFamily:
    return single(
        "pitr_up",
        "1 when PostgreSQL's archiver was read at this scrape, 0 when "
        "the server did not answer (PITR metrics then left out)",
        value,
    )
