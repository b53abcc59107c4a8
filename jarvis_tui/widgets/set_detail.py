"""The catalog pane's detail panel: one set, its artifacts, their metadata and copies."""

from typing import Any

from rich.console import Group
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from jarvis_tui.catalog_view import ArtifactDetail, SetDetail
from jarvis_tui.formatting import count, human_size, local_moment

MAX_TABLES_SHOWN = 12
MAX_GAPS_SHOWN = 4  # copies missing or failed, listed under the set's heading
# Metadata shown as "key value" lines; tables and bulky lists are summarised apart.
SUMMARY_KEYS = (
    ("database", "database"),
    ("server_version", "server"),
    ("pg_dump_version", "pg_dump"),
    ("format", "format"),
    ("table_count", "tables"),
    ("total_rows", "rows"),
    ("large_objects", "large objects"),
    ("key_count", "keys"),
    ("keys", "keys"),
    ("file_count", "files"),
    ("files", "files"),
    ("total_bytes", "bytes"),
    ("redis_version", "redis"),
    ("snapshot_id", "snapshot"),
)


def metadata_lines(metadata: dict[str, Any]) -> list[str]:
    lines = []
    facts = []
    for key, label in SUMMARY_KEYS:
        value = metadata.get(key)
        if value is None or isinstance(value, list | dict):
            continue
        facts.append(f"{label} {value:,}" if isinstance(value, int) else f"{label} {value}")
    if facts:
        lines.append(" · ".join(facts))
    tables = metadata.get("tables")
    if isinstance(tables, list) and tables:
        shown = []
        for table in tables[:MAX_TABLES_SHOWN]:
            rows = table.get("rows")
            name = f"{table.get('schema')}.{table.get('name')}"
            shown.append(name if rows is None else f"{name} {rows:,}")
        more = (
            f" … and {len(tables) - MAX_TABLES_SHOWN} more"
            if len(tables) > MAX_TABLES_SHOWN
            else ""
        )
        lines.append("tables: " + ", ".join(shown) + more)
    return lines


def artifact_block(item: ArtifactDetail) -> Text:
    artifact = item.artifact
    text = Text()
    text.append(artifact.relpath, style="bold")
    text.append(f"\n  {artifact.mode} · {artifact.status} · {human_size(artifact.added_bytes)}")
    if artifact.plain_size is not None:
        text.append(f" ({human_size(artifact.plain_size)} plain)")
    places = [f"{c.destination} {c.state}" for c in item.copies]
    places += [f"{name} missing" for name in item.missing_on]
    text.append(f"\n  stored: {', '.join(places) or 'no copies recorded'}")
    if artifact.checksum:
        text.append(f"\n  sha256 {artifact.checksum[:16]}…{artifact.checksum[-8:]}")
    text.append(f"\n  key {artifact.key_id or '-'} · {artifact.codec or '-'}")
    verify = artifact.verify_state or "not verified yet"
    style = {"ok": "green", "failed": "bold red"}.get(artifact.verify_state or "", "dim")
    text.append("\n  verification: ")
    text.append(verify, style=style)
    if artifact.verified_at:
        text.append(f" {local_moment(artifact.verified_at)}")
    if artifact.verify_detail and artifact.verify_state == "failed":
        text.append(f"\n  {artifact.verify_detail}", style="red")
    if artifact.error:
        text.append(f"\n  error: {artifact.error}", style="red")
    for line in metadata_lines(artifact.metadata):
        text.append(f"\n  {line}")
    return text


def detail_renderable(detail: SetDetail) -> Group:
    backup_set = detail.backup_set
    head = Text()
    head.append(backup_set.id, style="bold")
    head.append(f"\n{backup_set.kind} · {backup_set.tier or '-'} · {backup_set.status}")
    verified = {"ok": ("verified ok", "green"), "failed": ("verification FAILED", "bold red")}
    word, style = verified.get(backup_set.verified_state or "", ("not verified", "dim"))
    head.append(" · ")
    head.append(word, style=style)
    head.append(
        f"\ncreated {local_moment(backup_set.created_at)}"
        f" · finished {local_moment(backup_set.finished_at)}"
        f" · {count(len(detail.artifacts), 'artifact')} · {human_size(backup_set.stored_size)}"
    )
    if backup_set.note:
        head.append(f"\n{backup_set.note}", style="italic")
    if backup_set.error:
        head.append(f"\n{backup_set.error}", style="red")
    places = detail.places
    if places is not None and places.destinations and places.artifacts:
        if places.complete_offsite:
            head.append(f"\noff-site: complete on {', '.join(places.destinations)}", style="green")
        else:
            style = "bold red" if places.has_failed_copies else "yellow"
            head.append(f"\noff-site: NOT complete ({places.summary}); s syncs", style=style)
            gaps = places.gaps()
            for gap in gaps[:MAX_GAPS_SHOWN]:
                head.append(f"\n  {gap}", style="red" if " failed: " in gap else "")
            if len(gaps) > MAX_GAPS_SHOWN:
                head.append(f"\n  … and {len(gaps) - MAX_GAPS_SHOWN} more")
    return Group(head, *(Text("\n") + artifact_block(item) for item in detail.artifacts))


class SetDetailPanel(VerticalScroll):
    DEFAULT_CSS = "SetDetailPanel { height: auto; }"

    def compose(self):
        yield Static("Select a backup to see its artifacts.", id="detail-body", classes="muted")

    def show(self, detail: SetDetail | None, problem: str | None = None) -> None:
        body = self.query_one("#detail-body", Static)
        if problem:
            body.update(Text(problem, style="red"))
        elif detail is None:
            body.update(Text("Select a backup to see its artifacts.", style="dim"))
        else:
            body.update(detail_renderable(detail))
        self.scroll_home(animate=False)
