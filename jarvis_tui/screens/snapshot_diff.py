"""Compare two files snapshots: the paths added, removed and changed from the older to the
newer (the command line's `diff`). Opened from the Catalog on a set holding a snapshot;
its predecessor is offered first."""

from typing import TYPE_CHECKING, cast

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from jarvis_tui.catalog_view import compare_snapshots
from jarvis_tui.formatting import local_moment
from jarvis_tui.messages import (
    RestorableSetsLoaded,
    SnapshotsCompared,
    SnapshotsCompareFailed,
    WorkspaceFailed,
)
from jarvis_tui.restorable import RestorableSet, restorable_sets

if TYPE_CHECKING:
    from jarvis_tui.app import JarvisConsole

SHOWN_PATHS = 400  # beyond this, a count: the command line lists them all


def diff_lines(diff, older: str, newer: str) -> Text:
    """The engine's SnapshotDiff as the operator reads it: a summary first, then each path."""
    text = Text()
    text.append(
        f"From {older} to {newer}: {len(diff.added)} added, "
        f"{len(diff.removed)} removed, {len(diff.changed)} changed\n",
        style="bold",
    )
    rows = [("+ ", path, "", "green") for path in diff.added]
    rows += [("- ", path, "", "red") for path in diff.removed]
    rows += [("~ ", path, f"  ({', '.join(what)})", "yellow") for path, what in diff.changed]
    for mark, path, note, style in rows[:SHOWN_PATHS]:
        text.append(mark, style=style)
        text.append(path)
        text.append(f"{note}\n", style="dim")
    if len(rows) > SHOWN_PATHS:
        text.append(f"… and {len(rows) - SHOWN_PATHS} more\n", style="dim")
    if not rows:
        text.append("The two snapshots hold the same files.\n")
    return text


class SnapshotDiffScreen(ModalScreen[None]):
    DEFAULT_CSS = "#diff-body { height: 1fr; }"
    BINDINGS = [("escape", "dismiss(None)", "Close")]

    def __init__(self, set_id: str):
        super().__init__()
        self.set_id = set_id
        self.others: list[RestorableSet] = []

    @property
    def console(self) -> "JarvisConsole":
        return cast("JarvisConsole", self.app)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide", id="diff-dialog"):
            yield Static(f"Compare the files snapshot of {self.set_id}", classes="dialog-title")
            yield Static("Reading the files snapshots…", id="diff-intro", classes="muted")
            yield OptionList(id="diff-others")
            with VerticalScroll(id="diff-body"):
                yield Static("", id="diff-result")

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="diff-load")
    def load(self) -> None:
        try:
            sets = restorable_sets(self.console.access.catalog(), "files")
        except Exception as error:
            self.post_message(WorkspaceFailed("snapshots", str(error) or type(error).__name__))
            return
        self.post_message(RestorableSetsLoaded(sets))

    def on_restorable_sets_loaded(self, message: RestorableSetsLoaded) -> None:
        intro = self.query_one("#diff-intro", Static)
        mine = next((s for s in message.sets if s.backup_set.id == self.set_id), None)
        if mine is None:
            intro.update(f"{self.set_id} holds no complete files snapshot.")
            return
        # Newest first, so a snapshot listed after this one is older (even in the same second).
        self.newest_first = [s.backup_set.id for s in message.sets]
        self.others = [s for s in message.sets if s.backup_set.id != self.set_id]
        if not self.others:
            intro.update("There is no other files snapshot to compare with yet.")
            return
        intro.update("Compare with (enter; the one before it is highlighted):")
        options = self.query_one("#diff-others", OptionList)
        for other in self.others:
            when = "earlier" if self._older(other.backup_set.id) else "later"
            label = f"{other.backup_set.id}  {local_moment(other.backup_set.created_at)} ({when})"
            options.add_option(Option(label, id=other.backup_set.id))
        earlier = [i for i, s in enumerate(self.others) if self._older(s.backup_set.id)]
        options.highlighted = earlier[0] if earlier else 0
        options.focus()

    def on_workspace_failed(self, message: WorkspaceFailed) -> None:
        message.stop()
        self.query_one("#diff-intro", Static).update(
            Text(f"The catalog could not be read: {message.error}", style="red")
        )

    def _older(self, other: str) -> bool:
        return self.newest_first.index(other) > self.newest_first.index(self.set_id)

    @on(OptionList.OptionSelected, "#diff-others")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        other = str(event.option.id)
        older, newer = (other, self.set_id) if self._older(other) else (self.set_id, other)
        self.query_one("#diff-result", Static).update("Comparing…")
        self.compare(older, newer)

    @work(thread=True, exclusive=True, exit_on_error=False, group="diff")
    def compare(self, older: str, newer: str) -> None:
        try:
            diff = compare_snapshots(self.console.access, older, newer)
        except Exception as error:
            self.post_message(SnapshotsCompareFailed(str(error) or type(error).__name__))
            return
        self.post_message(SnapshotsCompared(diff, older, newer))

    def on_snapshots_compared(self, message: SnapshotsCompared) -> None:
        shown = diff_lines(message.diff, message.older, message.newer)
        self.query_one("#diff-result", Static).update(shown)

    def on_snapshots_compare_failed(self, message: SnapshotsCompareFailed) -> None:
        self.query_one("#diff-result", Static).update(
            Text(f"Could not compare: {message.error}", style="red")
        )
