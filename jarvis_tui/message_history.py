"""Every notification the console showed, kept for the Messages screen; toasts kept in check.

Toasts are Textual's notifications. Mixed into the app, `KeptNotifications`
records each one (time, severity, title, text) before it is drawn, shows at
most `MAX_TOASTS` at a time (the oldest go first: they stay in the history),
and holds them back while a dialog is open, so a toast never covers the
dialog; they are shown when it closes.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from time import time

from textual.app import App
from textual.notifications import Notification, Notify
from textual.screen import ModalScreen, Screen
from textual.signal import Signal

MAX_TOASTS = 3


@dataclass(frozen=True)
class KeptMessage:
    at: datetime
    severity: str  # Textual's words: information, warning, error
    title: str
    text: str


class MessageHistory:
    """The notifications of this console session, oldest first."""

    def __init__(self) -> None:
        self.messages: list[KeptMessage] = []
        self._seen: set[str] = set()

    def keep(self, notification: Notification, at: datetime) -> KeptMessage | None:
        """Record `notification` once (a held one is posted again when it is shown)."""
        if notification.identity in self._seen:
            return None
        self._seen.add(notification.identity)
        kept = KeptMessage(at, notification.severity, notification.title, notification.message)
        self.messages.append(kept)
        return kept


class KeptNotifications(App):
    """Mixed into the console app (which provides `clock`)."""

    clock: Callable[[], datetime]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.message_history = MessageHistory()
        self.messages_signal: Signal[KeptMessage] = Signal(self, "messages")
        self._held_toasts: list[Notification] = []

    def on_mount(self) -> None:
        self.screen_change_signal.subscribe(self, self._show_held_toasts)

    def on_notify(self, event: Notify) -> None:
        # Runs before App's own handler, which draws the toast unless told not to.
        notification = event.notification
        kept = self.message_history.keep(notification, self.clock())
        if kept is not None:
            self.messages_signal.publish(kept)
        if isinstance(self.screen, ModalScreen):
            self._held_toasts.append(notification)
            event.prevent_default()
            return
        # Textual has no limit of its own: make room by forgetting the oldest toasts.
        shown = list(self._notifications)
        for oldest in shown[: max(0, len(shown) - MAX_TOASTS + 1)]:
            self._unnotify(oldest, refresh=False)

    def _show_held_toasts(self, screen: Screen) -> None:
        if isinstance(screen, ModalScreen) or not self._held_toasts:
            return
        held, self._held_toasts = self._held_toasts, []
        for notification in held:
            notification.raised_at = time()  # its time to read starts now
            self.post_message(Notify(notification))
