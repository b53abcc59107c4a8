"""Settings: the effective configuration, secrets masked, each problem beside its variable."""

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from jarvis_tui.engine_access import Settings, all_problems
from jarvis_tui.screens.base import PaneScreen


def problems_by_variable(
    settings: Settings, problems: tuple[str, ...]
) -> tuple[dict[str, str], list[str]]:
    """Problems keyed by the variable they name, and those naming none (a bad .env line)."""
    names = {row[0] for row in settings.display_rows()}
    keyed: dict[str, str] = {}
    loose: list[str] = []
    for problem in problems:
        name, _, message = problem.partition(": ")
        if name in names:
            keyed[name] = message if name not in keyed else f"{keyed[name]}; {message}"
        else:
            loose.append(problem)
    return keyed, loose


def origin_word(origin: str, settings: Settings) -> str:
    """`environment`, `default`, or `.env` for the file named in the summary line."""
    if settings.env_file is not None and origin == str(settings.env_file):
        return ".env file"
    return origin


class SettingsScreen(PaneScreen):
    PANE = "settings"
    BINDINGS = [
        Binding("r", "reload", "Reload"),
        Binding("k", "app.offer_key", "Key"),  # a new one, or rotate the one set
        Binding("p", "next_problem", "Next problem"),
    ]

    def compose_pane(self) -> ComposeResult:
        yield Static("", id="settings-summary")
        yield DataTable(id="settings-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        self.layout_width = 0
        self.show_settings()

    def on_resize(self) -> None:
        if self.size.width != self.layout_width:
            self.show_settings()

    def _fit_columns(self, table: DataTable) -> None:
        """The variable names and origins keep their width; values take the rest."""
        self.layout_width = self.size.width
        name, origin = 31, 11
        value = max(20, self.layout_width - name - origin - 2 * 3 - 2)
        table.clear(columns=True)
        table.add_column("Variable", key="variable", width=name)
        table.add_column("Value", key="value", width=value)
        table.add_column("From", key="from", width=origin)

    def catalog_changed(self, reason: str) -> None:
        if reason == "settings reloaded":
            self.show_settings()

    def show_settings(self) -> None:
        settings = self.console.settings
        problems = all_problems(settings)
        keyed, loose = problems_by_variable(settings, problems)
        self.problem_rows: list[int] = []
        table = self.query_one("#settings-table", DataTable)
        self._fit_columns(table)
        for number, (name, shown, origin) in enumerate(settings.display_rows()):
            if name in keyed:
                value = Text.assemble(("✗ ", "bold red"), (keyed[name], "red"))
                self.problem_rows.append(number)
                label = Text(name, style="bold red")
            else:
                value, label = Text(shown), Text(name)
            table.add_row(label, value, origin_word(origin, settings), key=name)
        summary = Text()
        source = settings.env_file or "no .env file (environment and defaults only)"
        summary.append(f"Settings from {source}; the environment wins over the file.\n")
        if problems:
            summary.append(
                f"{len(problems)} problem(s): the console keeps going with defaults for "
                "those; backups may be refused until they are fixed. p jumps to the next one, "
                "r reloads after you edit the file.",
                style="bold red",
            )
            for problem in loose:
                summary.append(f"\n  {problem}", style="red")
        else:
            summary.append("All settings are valid. Secrets show as ****.", style="green")
        self.query_one("#settings-summary", Static).update(summary)
        if self.problem_rows:
            table.move_cursor(row=self.problem_rows[0])

    def action_reload(self) -> None:
        self.console.reload_settings()

    def action_next_problem(self) -> None:
        if not self.problem_rows:
            self.notify("No settings problems.", timeout=3)
            return
        table = self.query_one("#settings-table", DataTable)
        later = [row for row in self.problem_rows if row > table.cursor_row]
        table.move_cursor(row=(later or self.problem_rows)[0])
        table.focus()
