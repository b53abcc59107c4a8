"""`GET /metrics`: the installation's state for Prometheus, read from the catalog at scrape.

The API is one of several processes writing the catalog (CLI, console, scheduler), so
counters kept in this process would miss their work: a custom Collector on a private
registry asks the catalog on each scrape instead, through grouped queries
(engines/catalog/metrics.py) that stay fast with 10,000 sets. Each part is read on its
own; a part that fails sets `jarvis_backup_scrape_error{part}` to 1 and logs one line,
and the rest of the scrape is served. No label or value carries a secret: sources, kinds,
statuses, channel and destination names, and alert kinds (whose messages stay out).

Job durations are a histogram over every finished job, not over the recent N: a window
would make `_count` and `_bucket` fall as old jobs leave it, which Prometheus reads as
counter resets, so rate() and histogram_quantile() would be wrong.
"""

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime

from prometheus_client.core import (
    CounterMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString

from engines.catalog import Catalog
from engines.catalog.rows import JOB_FINAL_STATUSES, SET_FINAL_STATUSES
from engines.monitoring.watchdog import configured_sources
from jarvis_tui.api.context import ApiContext
from jarvis_tui.api.metrics.families import PREFIX, gauge, one_line, single
from jarvis_tui.api.metrics.system import destination_metrics, pitr_metrics, space_metrics

logger = logging.getLogger("jarvis.api")

# From a quick verify to a long base backup or restore.
DURATION_BOUNDS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0)

Part = Callable[[ApiContext], Iterable[Metric]]


def backup_metrics(context: ApiContext) -> Iterator[Metric]:
    catalog: Catalog = context.catalog
    settings = context.settings
    configured = gauge(
        "source_configured", "1 for each source the settings configure for backup", ["source"]
    )
    for source in configured_sources(settings):
        configured.add_metric([source], 1)
    yield configured
    yield single(
        "max_age_seconds",
        "BACKUP_MAX_AGE_HOURS in seconds: a source's last success older than this is alerted",
        settings.backup_max_age_hours * 3600,
    )
    when = gauge(
        "last_success_timestamp_seconds",
        "Start of the newest complete or partial set holding a complete artifact of the source",
        ["source"],
    )
    size = gauge(
        "last_success_size_bytes",
        "Bytes that newest good set's artifacts of the source added to the repository",
        ["source"],
    )
    for last in catalog.last_successes():
        when.add_metric([last.source], last.created_at.timestamp())
        size.add_metric([last.source], last.added_bytes)
    yield when
    yield size
    sets = gauge(
        "sets",
        "Backup sets in the catalog by kind (a source, or full) and status",
        ["kind", "status"],
    )
    for (kind, status), count in sorted(catalog.set_counts().items()):
        sets.add_metric([kind, status], count)
    yield sets
    last_status = gauge(
        "last_status",
        "1 for the status of the newest finished set of each kind, 0 for the others",
        ["kind", "status"],
    )
    for kind, (status, _) in sorted(catalog.last_set_statuses().items()):
        for each in SET_FINAL_STATUSES:
            last_status.add_metric([kind, each], 1 if each == status else 0)
    yield last_status


def job_metrics(context: ApiContext) -> Iterator[Metric]:
    catalog = context.catalog
    finished = CounterMetricFamily(
        PREFIX + "jobs", "Finished jobs by kind and final status", labels=["kind", "status"]
    )
    unfinished = gauge(
        "jobs_unfinished", "Jobs queued or running, by kind and status", ["kind", "status"]
    )
    for (kind, status), count in sorted(catalog.job_counts().items()):
        (finished if status in JOB_FINAL_STATUSES else unfinished).add_metric([kind, status], count)
    yield finished
    yield unfinished
    histogram = HistogramMetricFamily(
        PREFIX + "job_duration_seconds",
        "How long finished jobs took, by kind and final status (every job in the catalog)",
        labels=["kind", "status"],
    )
    for found in catalog.job_durations(DURATION_BOUNDS):
        buckets = [
            (floatToGoString(b), n) for b, n in zip(DURATION_BOUNDS, found.buckets, strict=True)
        ]
        buckets.append(("+Inf", found.count))
        histogram.add_metric([found.kind, found.status], buckets, found.sum_seconds)
    yield histogram
    last = gauge(
        "job_last_duration_seconds", "How long the newest finished job of each kind took", ["kind"]
    )
    for job in catalog.last_jobs():
        last.add_metric([job.kind], job.seconds)
    yield last


def verification_metrics(context: ApiContext) -> Iterator[Metric]:
    artifacts = gauge(
        "artifacts_verification",
        "Complete artifacts by source and verification result (ok, failed, never verified)",
        ["source", "result"],
    )
    newest: dict[str, datetime] = {}
    for found in context.catalog.verification_counts():
        artifacts.add_metric([found.source, found.state], found.artifacts)
        if found.last_verified_at is not None:
            known = newest.get(found.source)
            newest[found.source] = max(filter(None, (known, found.last_verified_at)))
    yield artifacts
    last = gauge(
        "last_verification_timestamp_seconds",
        "When an artifact of the source was last verified",
        ["source"],
    )
    for source, moment in sorted(newest.items()):
        last.add_metric([source], moment.timestamp())
    yield last


def alert_metrics(context: ApiContext) -> Iterator[Metric]:
    catalog = context.catalog
    active = gauge(
        "alert_active",
        "1 for each open alert condition: alert is its kind (missing_backup, backup_failure, "
        "pitr_archive_lag, ...), key what it is about (a source, an artifact, a timeline)",
        ["alert", "key", "severity"],
    )
    for alert in sorted(catalog.open_conditions(), key=lambda alert: alert.kind):
        kind, _, key = alert.kind.partition(":")
        active.add_metric([kind, key, alert.severity], 1)
    yield active
    failed = CounterMetricFamily(
        PREFIX + "alert_deliveries_failed", "Alerts a channel failed to deliver", labels=["channel"]
    )
    for channel, count in sorted(catalog.failed_alert_deliveries().items()):
        failed.add_metric([channel], count)
    yield failed
    yield single(
        "alerts_undelivered",
        "Alerts recorded that no dispatcher has delivered yet",
        catalog.undelivered_alerts(),
    )


PARTS: dict[str, Part] = {
    "backups": backup_metrics,
    "jobs": job_metrics,
    "verification": verification_metrics,
    "alerts": alert_metrics,
    "destinations": destination_metrics,
    "space": space_metrics,
    "pitr": pitr_metrics,
}


class BackupCollector(Collector):
    """Every part read afresh at each scrape; a failing part never fails the scrape."""

    def __init__(self, context: ApiContext, parts: dict[str, Part] = PARTS):
        self.context = context
        self.parts = parts

    def collect(self) -> Iterator[Metric]:
        started = time.perf_counter()
        errors = gauge(
            "scrape_error", "1 for a part of the metrics that could not be read", ["part"]
        )
        for name, part in self.parts.items():
            try:
                metrics = list(part(self.context))
            except Exception as error:  # reported as a metric and one line, never raised
                logger.warning("metrics: %s not read: %s", name, one_line(error))
                errors.add_metric([name], 1)
                continue
            errors.add_metric([name], 0)
            yield from metrics
        yield errors
        yield single(
            "scrape_duration_seconds",
            "How long reading these metrics took",
            time.perf_counter() - started,
        )

    def describe(self) -> list[Metric]:
        return []  # nothing read at registration: the catalog is asked only when scraped


def metrics_registry(context: ApiContext) -> CollectorRegistry:
    """A registry of its own per app: nothing of the process-wide default registry."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BackupCollector(context))
    return registry
