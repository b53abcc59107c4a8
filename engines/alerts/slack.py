"""Slack incoming webhook: one JSON POST with the text."""

from engines.alerts.http import post
from engines.alerts.message import AlertMessage
from engines.config import Secret

TEST_EMOJI = ":bell:"
EMOJI = {"info": ":white_check_mark:", "warning": ":warning:", "critical": ":rotating_light:"}


class SlackChannel:
    name = "slack"

    def __init__(self, webhook_url: Secret, *, timeout: float):
        self._webhook_url = webhook_url
        self.timeout = timeout

    def send(self, message: AlertMessage) -> str:
        icon = TEST_EMOJI if message.is_test else EMOJI.get(message.severity, "")
        status, _ = post(
            self._webhook_url.reveal(),
            payload={"text": f"{icon} *{message.title}*\n{message.text}".strip()},
            timeout=self.timeout,
        )
        return f"HTTP {status}"
