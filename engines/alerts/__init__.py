"""Alerts: Pushover, Slack and e-mail channels behind one deduplicating dispatcher."""

from engines.alerts.dispatcher import AlertDispatcher, ChannelResult, send_to_channels
from engines.alerts.message import AlertMessage, Channel, ChannelError

__all__ = [
    "AlertDispatcher",
    "AlertMessage",
    "Channel",
    "ChannelError",
    "ChannelResult",
    "send_to_channels",
]
