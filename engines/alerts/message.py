"""What an alert channel sends, and how a channel reports that it could not."""

import socket
from dataclasses import dataclass
from typing import Protocol

from engines.errors import JarvisError

SEVERITY_WORDS = {"info": "resolved / info", "warning": "warning", "critical": "CRITICAL"}
TEST_KIND = "test"


class ChannelError(JarvisError):
    """A channel failed to deliver; the message never contains a token or URL."""


@dataclass(frozen=True)
class AlertMessage:
    severity: str  # info, warning, critical
    kind: str  # e.g. backup_failure:postgres
    text: str
    host: str = socket.gethostname()

    @property
    def is_test(self) -> bool:
        return self.kind == TEST_KIND

    @property
    def title(self) -> str:
        if self.is_test:
            return f"Jarvis backup on {self.host}: nothing is wrong, this is a test"
        word = SEVERITY_WORDS.get(self.severity, self.severity)
        return f"Jarvis backup on {self.host}: {word}: {self.kind}"


class Channel(Protocol):
    name: str

    def send(self, message: AlertMessage) -> str:
        """Deliver `message`; return a short receipt, or raise ChannelError."""
        ...
