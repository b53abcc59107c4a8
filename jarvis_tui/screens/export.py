"""Export a set: decrypt its artifacts into a folder as plain .gz (or PostgreSQL as SQL)."""

from dataclasses import dataclass
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Static


@dataclass(frozen=True)
class ExportRequest:
    folder: Path
    as_sql: bool


class ExportScreen(ModalScreen[ExportRequest | None]):
    BINDINGS = [("escape", "dismiss(None)", "Back")]

    def __init__(self, set_id: str, artifact_count: int, default_folder: Path, postgres: bool):
        super().__init__()
        self.set_id = set_id
        self.artifact_count = artifact_count
        self.default_folder = default_folder
        self.postgres = postgres

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(f"Export {self.set_id}", classes="dialog-title")
            yield Static(
                f"Every chunk of its {self.artifact_count} artifact(s) is authenticated first; "
                "the folder receives the plain compressed streams (gunzip -c works on them). "
                "Existing files are never overwritten."
            )
            yield Input(str(self.default_folder), id="export-folder")
            sql = Checkbox("PostgreSQL dumps as plain SQL (.sql.gz)", id="export-sql")
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
        if not raw:
            self.query_one("#export-problem", Static).update("Name a folder to export into.")
            return
        folder = Path(raw).expanduser()
        if folder.exists() and not folder.is_dir():
            self.query_one("#export-problem", Static).update(
                f"{folder} is a file; name a folder (it is created when missing)."
            )
            return
        self.dismiss(ExportRequest(folder, self.query_one("#export-sql", Checkbox).value))

    @on(Button.Pressed, "#no")
    def _back(self) -> None:
        self.dismiss(None)
