"""Export a set into a new folder: plain .gz streams (PostgreSQL as SQL if asked), a files
snapshot as a tarball. All or nothing: the folder appears only once everything is in it."""

from dataclasses import dataclass
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Static

from jarvis_tui.widgets.marked_toggles import MarkedCheckbox


@dataclass(frozen=True)
class ExportRequest:
    folder: Path
    as_sql: bool


def _holds_something(folder: Path) -> bool:
    return folder.is_dir() and any(folder.iterdir())


def fresh_folder(wanted: Path) -> Path:
    """`wanted`, or `wanted-2`, `wanted-3`… : the first that is not there yet (or empty)."""
    candidate, number = wanted, 1
    while (
        candidate.is_symlink()
        or (candidate.exists() and not candidate.is_dir())
        or (_holds_something(candidate))
    ):
        number += 1
        candidate = wanted.with_name(f"{wanted.name}-{number}")
    return candidate


def folder_problem(folder: Path) -> str | None:
    """Why `folder` cannot receive an export, in one line; None when it can."""
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        return f"{folder} is a file: name a new folder (it is created)."
    if _holds_something(folder):
        return (
            f"{folder} already holds files (an earlier export?): an export goes into a new "
            f"folder, for instance {fresh_folder(folder)}."
        )
    return None


class ExportScreen(ModalScreen[ExportRequest | None]):
    BINDINGS = [("escape", "dismiss(None)", "Back")]

    def __init__(
        self,
        set_id: str,
        artifact_count: int,
        default_folder: Path,
        postgres: bool,
        files: bool = False,
    ):
        super().__init__()
        self.set_id = set_id
        self.artifact_count = artifact_count
        self.default_folder = fresh_folder(default_folder)
        self.postgres = postgres
        self.files = files

    def compose(self) -> ComposeResult:
        tarball = " A files snapshot becomes a tarball (tar -xzf unpacks it)." if self.files else ""
        with Vertical(classes="dialog"):
            yield Static(f"Export {self.set_id}", classes="dialog-title")
            yield Static(
                f"Every chunk of its {self.artifact_count} artifact(s) is authenticated first; "
                "a new folder receives the plain compressed streams (gunzip -c works on "
                f"them).{tarball} All or nothing: the folder appears only once everything "
                "is in it."
            )
            yield Input(str(self.default_folder), id="export-folder")
            sql = MarkedCheckbox("PostgreSQL dumps as plain SQL (.sql.gz)", id="export-sql")
            sql.display = self.postgres
            yield sql
            yield Static("", id="export-problem", classes="problem")
            with Horizontal(classes="buttons"):
                yield Button("Back", id="no")
                yield Button("Export", id="yes", variant="primary")

    @on(Input.Submitted, "#export-folder")
    @on(Button.Pressed, "#yes")
    def _export(self) -> None:
        raw = self.query_one("#export-folder", Input).value.strip()
        problem_line = self.query_one("#export-problem", Static)
        if not raw:
            problem_line.update("Name a new folder to export into.")
            return
        folder = Path(raw).expanduser()
        problem = folder_problem(folder)
        if problem:
            problem_line.update(problem)
            return
        self.dismiss(ExportRequest(folder, self.query_one("#export-sql", Checkbox).value))

    @on(Button.Pressed, "#no")
    def _back(self) -> None:
        self.dismiss(None)
