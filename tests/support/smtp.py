"""An aiosmtpd server on loopback that keeps what it receives."""

import email
import email.message
import email.policy
import threading
from dataclasses import dataclass
from typing import Any, Self

from tests.support.processes import LOOPBACK, PORT_ATTEMPTS, Server, free_port


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes

    @property
    def message(self) -> email.message.EmailMessage:
        return email.message_from_bytes(self.content, policy=email.policy.default)


class SmtpServer(Server):
    """aiosmtpd on loopback; with `auth=(user, password)` it requires AUTH (no TLS)."""

    host = LOOPBACK

    def __init__(self, *, auth: tuple[str, str] | None = None) -> None:
        self.auth = auth
        self.port = 0
        self.messages: list[ReceivedMail] = []
        self._arrived = threading.Condition()
        self._controller = None
        super().__init__()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        mail = ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
        with self._arrived:
            self.messages.append(mail)
            self._arrived.notify_all()
        return "250 OK"

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any):
        from aiosmtpd.smtp import AuthResult

        expected = tuple(part.encode() for part in self.auth or ())
        # handled=False: aiosmtpd then sends the 535 itself instead of leaving the client hanging.
        return AuthResult(success=(data.login, data.password) == expected, handled=False)

    def start(self) -> Self:
        from aiosmtpd.controller import Controller

        if self._controller is not None:
            return self
        auth_options: dict[str, Any] = {}
        if self.auth:
            auth_options = {
                "authenticator": self._authenticate,
                "auth_required": True,
                "auth_require_tls": False,
            }
        for attempt in range(PORT_ATTEMPTS):
            port = free_port()
            controller = Controller(self, hostname=self.host, port=port, **auth_options)
            try:
                controller.start()
            except Exception:
                if attempt == PORT_ATTEMPTS - 1:
                    raise
                continue
            self._controller, self.port = controller, port
            return self
        raise AssertionError("unreachable")

    def wait_for_messages(self, count: int = 1, timeout: float = 10.0) -> list[ReceivedMail]:
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.messages) >= count, timeout):
                raise TimeoutError(f"expected {count} messages, got {len(self.messages)}")
            return list(self.messages)

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def close(self) -> None:
        self.stop()
        super().close()


# --- webhooks ------------------------------------------------------------------------------
