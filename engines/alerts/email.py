"""E-mail through an SMTP relay: STARTTLS whenever the server offers it.

A password is never sent over a plain connection to anything but loopback.
"""

import smtplib
import socket
import ssl
from email.message import EmailMessage

from engines.alerts.message import AlertMessage, ChannelError
from engines.config import Secret
from engines.plumbing.hosts import is_loopback

IMPLICIT_TLS_PORT = 465


class EmailChannel:
    name = "email"

    def __init__(
        self,
        recipient: str,
        *,
        host: str,
        port: int,
        user: str | None,
        password: Secret | None,
        sender: str | None,
        timeout: float,
    ):
        self.recipient = recipient
        self.host = host
        self.port = port
        self.user = user
        self._password = password
        self.sender = sender or f"jarvis-backup@{socket.getfqdn()}"
        self.timeout = timeout

    def compose(self, message: AlertMessage) -> EmailMessage:
        mail = EmailMessage()
        mail["Subject"] = message.title
        mail["From"] = self.sender
        mail["To"] = self.recipient
        mail.set_content(message.text + "\n")
        return mail

    def send(self, message: AlertMessage) -> str:
        where = f"{self.host}:{self.port}"
        try:
            with self._connect() as smtp:
                encrypted = self.port == IMPLICIT_TLS_PORT
                smtp.ehlo()
                if not encrypted and smtp.has_extn("starttls"):
                    smtp.starttls(context=ssl.create_default_context())
                    smtp.ehlo()
                    encrypted = True
                if self.user:
                    if not encrypted and not is_loopback(self.host):
                        raise ChannelError(
                            f"SMTP server {where} offers no STARTTLS; refusing to send "
                            "SMTP_PASSWORD in clear (use port 465 or a relay with TLS)"
                        )
                    smtp.login(self.user, self._password.reveal() if self._password else "")
                refused = smtp.send_message(self.compose(message))
        except smtplib.SMTPAuthenticationError as error:
            raise ChannelError(
                f"SMTP server {where} refused SMTP_USER's login ({error.smtp_code})"
            ) from None
        except smtplib.SMTPException as error:
            raise ChannelError(f"SMTP server {where}: {error}") from None
        except TimeoutError:
            raise ChannelError(
                f"SMTP server {where}: no answer within {self.timeout:g} s"
            ) from None
        except OSError as error:
            raise ChannelError(
                f"cannot reach SMTP server {where}: {error.strerror or error}"
            ) from None
        if refused:
            raise ChannelError(f"SMTP server {where} refused {', '.join(refused)}")
        return f"accepted by {where}"

    def _connect(self) -> smtplib.SMTP:
        if self.port == IMPLICIT_TLS_PORT:
            return smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=ssl.create_default_context()
            )
        return smtplib.SMTP(self.host, self.port, timeout=self.timeout)
