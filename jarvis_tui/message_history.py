"""Every notification the console showed, kept for the Messages screen; toasts kept in check.

Toasts are Textual's notifications. Mixed into the app, `KeptNotifications`
records each one (time, severity, title, text) before it is drawn, shows at
most `MAX_TOASTS` at a time (the oldest go first: they stay in the history),
and holds them back while a dialog is open, so a toast never covers the
dialog (those already shown step aside too); they are shown when it closes.
"""

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from time import time
from uuid import uuid4

from textual.app import App, ScreenStackError
from textual.notifications import Notification, Notify
from textual.screen import ModalScreen, Screen
from textual.signal import Signal

from jarvis_tui.engine_access import printable, redact

MAX_TOASTS = 3
# A session's history is bounded: a job failing in a loop must not grow the console.
KEPT_MESSAGES = 500


@dataclass(frozen=True)
class KeptMessage:
    at: datetime
    severity: str  # Textual's words: information, warning, error
    title: str
    text: str


class MessageHistory:
    """The notifications of this console session, oldest first."""

    def __init__(self) -> None:
        self.messages: list[KeptMessage] = []  # the newest KEPT_MESSAGES
        self.forgotten = 0  # older ones, no longer kept

    @property
    def count(self) -> int:
        """Every notification of the session, those forgotten too."""
        return len(self.messages) + self.forgotten

    def keep(self, notification: Notification, at: datetime) -> KeptMessage:
        kept = KeptMessage(at, notification.severity, notification.title, notification.message)
        self.messages.append(kept)
        if len(self.messages) > KEPT_MESSAGES:
            del self.messages[0]
            self.forgotten += 1
        return kept


def _safe(text: str) -> str:
    """`text` with secrets masked and control characters escaped, its line breaks kept."""
    return "\n".join(printable(line) for line in redact(text).split("\n"))


class KeptNotifications(App):
    """Mixed into the console app (which provides `clock`)."""

    clock: Callable[[], datetime]
    # The screens under a dialog get this class; the stylesheet hides their toasts.
    SUSPENDED_SCREEN_CLASS = "-suspended"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.message_history = MessageHistory()
        self.messages_signal: Signal[KeptMessage] = Signal(self, "messages")
        self._held_toasts: list[Notification] = []
        self._shown_again: set[str] = set()

    def on_mount(self) -> None:
        self.screen_change_signal.subscribe(self, self._screen_changed)

    def on_notify(self, event: Notify) -> None:
        # Runs before App's own handler, which draws the toast unless told not to.
        notification = event.notification
        # An error echoing a connection string or a key: masked on screen and in the history;
        # a file name's ESC sequence shown escaped (Textual hands it to the terminal).
        notification.message = _safe(notification.message)
        notification.title = _safe(notification.title)
        if notification.identity in self._shown_again:
            self._shown_again.discard(notification.identity)
        else:
            kept = self.message_history.keep(notification, self.clock())
            self.messages_signal.publish(kept)
        if self._dialog_open():
            # Only the newest MAX_TOASTS would be shown when the dialog closes.
            self._held_toasts = [*self._held_toasts[1 - MAX_TOASTS :], notification]
            event.prevent_default()
            return
        # Textual has no limit of its own: make room by forgetting the oldest toasts.
        shown = list(self._notifications)
        for oldest in shown[: max(0, len(shown) - MAX_TOASTS + 1)]:
            self._unnotify(oldest, refresh=False)

    def _dialog_open(self) -> bool:
        try:
            return isinstance(self.screen, ModalScreen)
        except ScreenStackError:  # nothing on the screen yet
            return False

    def _screen_changed(self, screen: Screen) -> None:
        if isinstance(screen, ModalScreen):
            for shown in list(self._notifications):  # step aside until the dialog closes
                self._held_toasts.append(shown)
                self._unnotify(shown, refresh=False)
            return
        held, self._held_toasts = self._held_toasts, []
        for notification in held:
            # A new toast (a new identity: the old one's timer may still run), its time to
            # read starting now.
            again = replace(notification, raised_at=time(), identity=str(uuid4()))
            self._shown_again.add(again.identity)
            self.post_message(Notify(again))
