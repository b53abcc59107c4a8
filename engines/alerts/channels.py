"""The channels the settings configure, in a fixed order."""

from engines.alerts.email import EmailChannel
from engines.alerts.message import Channel
from engines.alerts.pushover import PushoverChannel
from engines.alerts.slack import SlackChannel
from engines.config import Settings

CHANNEL_TIMEOUT_S = 10.0


def configured_channels(settings: Settings, *, timeout: float = CHANNEL_TIMEOUT_S) -> list[Channel]:
    channels: list[Channel] = []
    if settings.pushover_user_key and settings.pushover_api_token:
        channels.append(
            PushoverChannel(
                settings.pushover_api_url,
                settings.pushover_user_key,
                settings.pushover_api_token,
                timeout=timeout,
            )
        )
    if settings.slack_webhook_url:
        channels.append(SlackChannel(settings.slack_webhook_url, timeout=timeout))
    if settings.notification_email:
        channels.append(
            EmailChannel(
                settings.notification_email,
                host=settings.smtp_host,
                port=settings.smtp_port,
                user=settings.smtp_user,
                password=settings.smtp_password,
                sender=settings.smtp_from,
                timeout=timeout,
            )
        )
    return channels
