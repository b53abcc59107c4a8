"""Raising, deduplicating and delivering alerts.

Every alert is first a catalog row (the outbox); delivery claims pending rows,
sends each to every configured channel at once (a dead or stalled channel costs
only its own timeout and never stops the others) and records the result per
channel. Conditions are deduplicated: one alert when a condition opens, a
reminder every BACKUP_ALERT_REMINDER_HOURS while it stays open, and a recovery
notice when it clears.
"""

import logging
import os
import socket
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from engines.alerts.channels import configured_channels
from engines.alerts.message import TEST_KIND, AlertMessage, Channel, ChannelError
from engines.catalog import Alert, Catalog
from engines.catalog.times import utc_now
from engines.config import Settings
from engines.plumbing.redaction import redact

logger = logging.getLogger("jarvis.alerts")

DELIVERY_WINDOW = timedelta(days=1)
SENT = "sent"
NO_CHANNEL = {"none": "no alert channel is configured"}


@dataclass(frozen=True)
class ChannelResult:
    channel: str
    ok: bool
    detail: str

    @property
    def text(self) -> str:
        return f"{SENT} ({self.detail})" if self.ok else f"failed: {self.detail}"


def send_to_channels(channels: Sequence[Channel], message: AlertMessage) -> list[ChannelResult]:
    """Send to every channel concurrently; each result says what happened there."""
    if not channels:
        return []

    def attempt(channel: Channel) -> ChannelResult:
        try:
            return ChannelResult(channel.name, True, redact(channel.send(message)))
        except ChannelError as error:
            return ChannelResult(channel.name, False, redact(str(error)))
        except Exception as error:  # a channel bug must not stop the other channels
            detail = redact(f"{type(error).__name__}: {error}")
            logger.exception("alert channel %s failed unexpectedly", channel.name)
            return ChannelResult(channel.name, False, detail)

    with ThreadPoolExecutor(max_workers=len(channels), thread_name_prefix="alert") as pool:
        return list(pool.map(attempt, channels))


class AlertDispatcher:
    def __init__(
        self,
        catalog: Catalog,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = utc_now,
        channels: Sequence[Channel] | None = None,
    ):
        self.catalog = catalog
        self.settings = settings
        self.clock = clock
        self.channels = list(configured_channels(settings) if channels is None else channels)
        self.claimant = f"pid {os.getpid()} on {socket.gethostname()}"

    @property
    def remind_after(self) -> timedelta:
        return timedelta(hours=self.settings.backup_alert_reminder_hours)

    def notify(self, kind: str, severity: str, message: str) -> int:
        """A one-off event (a failed backup, a test): record it and deliver it now."""
        alert_id = self.catalog.queue_alert(severity, kind, message, self.clock())
        self.deliver_pending()
        return alert_id

    def raise_condition(self, kind: str, severity: str, message: str) -> int | None:
        """Open (or remind of) a condition; None when it was alerted recently."""
        raised = self.catalog.raise_condition(
            kind, severity, message, self.clock(), self.remind_after
        )
        if raised is None:
            return None
        logger.warning("alert %s (%s): %s", kind, raised[1], message)
        self.deliver_pending()
        return raised[0]

    def clear_condition(self, kind: str, message: str) -> int | None:
        """Close a condition with a recovery notice; None when it was not open."""
        alert_id = self.catalog.clear_condition(kind, message, self.clock())
        if alert_id is not None:
            logger.info("alert %s resolved: %s", kind, message)
            self.deliver_pending()
        return alert_id

    def deliver_pending(self) -> list[Alert]:
        """Deliver every alert nobody has delivered yet (including other engines' rows)."""
        claimed = self.catalog.claim_undelivered_alerts(
            self.claimant, self.clock() - DELIVERY_WINDOW
        )
        for alert in claimed:
            results = send_to_channels(
                self.channels, AlertMessage(alert.severity, alert.kind, alert.message)
            )
            for result in results:
                if not result.ok:
                    logger.warning(
                        "alert %d not delivered to %s: %s", alert.id, result.channel, result.detail
                    )
            delivery = {r.channel: r.text for r in results} if results else NO_CHANNEL
            self.catalog.set_alert_delivery(alert.id, delivery)
        return claimed

    def send_test(self) -> list[ChannelResult]:
        """`jarvis-tui alerts test`: one message to each channel, recorded like any alert."""
        text = f"Test alert from jarvis-tui on {socket.gethostname()}; this channel works."
        alert_id = self.catalog.queue_alert("info", TEST_KIND, text, self.clock())
        self.catalog.claim_undelivered_alerts(self.claimant, self.clock() - DELIVERY_WINDOW)
        results = send_to_channels(self.channels, AlertMessage("info", TEST_KIND, text))
        delivery = {r.channel: r.text for r in results} if results else NO_CHANNEL
        self.catalog.set_alert_delivery(alert_id, delivery)
        return results
