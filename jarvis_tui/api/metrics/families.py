"""What every part of `GET /metrics` builds its families with: the `jarvis_backup_` prefix
and one log line for what could not be read."""

from collections.abc import Iterable

from prometheus_client.core import GaugeMetricFamily

from engines.plumbing.redaction import redact

PREFIX = "jarvis_backup_"


def gauge(name: str, documentation: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(PREFIX + name, documentation, labels=list(labels))


def single(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(PREFIX + name, documentation, value=value)


def one_line(error: BaseException) -> str:
    """An error as one log line, with every configured secret masked."""
    return " ".join(redact(str(error) or type(error).__name__).split())
