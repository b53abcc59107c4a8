"""Pushover (the guide's iPhone notifications): a form POST to the messages API."""

import json

from engines.alerts.http import post
from engines.alerts.message import AlertMessage, ChannelError
from engines.config import Secret

PRIORITY = {"info": -1, "warning": 0, "critical": 1}
TITLE_LIMIT = 250
MESSAGE_LIMIT = 1024


class PushoverChannel:
    name = "pushover"

    def __init__(self, api_url: str, user_key: Secret, api_token: Secret, *, timeout: float):
        self.api_url = api_url
        self._user_key = user_key
        self._api_token = api_token
        self.timeout = timeout

    def send(self, message: AlertMessage) -> str:
        status, body = post(
            self.api_url,
            form={
                "token": self._api_token.reveal(),
                "user": self._user_key.reveal(),
                "title": message.title[:TITLE_LIMIT],
                "message": message.text[:MESSAGE_LIMIT],
                "priority": PRIORITY.get(message.severity, 0),
            },
            timeout=self.timeout,
        )
        try:
            answer = json.loads(body or b"{}")
        except ValueError:
            answer = {}
        if isinstance(answer, dict) and answer.get("status") not in (None, 1):
            problems = answer.get("errors") or ["status " + str(answer.get("status"))]
            raise ChannelError(f"Pushover refused the message: {'; '.join(map(str, problems))}")
        return f"HTTP {status}"
