"""What the PostgreSQL wizard's "a moment in time" takes from the engine: the recoverable
window (the `pitr-timeline` verb, the computation `jarvis-tui pitr timeline` prints), why
the choice is unavailable when it is, and the checked recovery target.

Part of the console's access layer: loaded with the PostgreSQL wizard, read in worker
threads (the window lists the archive and authenticates one segment's header).
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from engines.catalog import LATEST
from engines.errors import JarvisError
from engines.pitr.restore_target import ACTIONS, DEFAULT_ACTION, KINDS, PitrTarget, StartRequest
from jarvis_tui.engine_access import EngineAccess

__all__ = [
    "ACTIONS",
    "DEFAULT_ACTION",
    "KINDS",
    "LATEST",
    "MomentWindow",
    "PitrTarget",
    "StartRequest",
    "WindowSpan",
]

SETUP_ADVICE = "`jarvis-tui pitr setup --apply` turns it on, `jarvis-tui pitr check` confirms it"
BASE_ADVICE = "`jarvis-tui backup postgres --mode base` takes one"


@dataclass(frozen=True)
class WindowSpan:
    """One range of a cluster's timeline a restore can reach."""

    cluster: str  # "cluster 7412…, timeline 1"
    earliest_time: str
    earliest_lsn: str
    latest_time: str  # when the last segment of the range was archived
    latest_lsn: str
    base_backups: tuple[str, ...]


@dataclass(frozen=True)
class MomentWindow:
    """The window per cluster and timeline, shown as lines; `unavailable` says why no
    moment can be restored to (None when one can)."""

    spans: list[WindowSpan] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    unavailable: str | None = None

    def outside(self, target: PitrTarget) -> str | None:
        """Why a moment or WAL position lies outside every range (one line naming the
        window); None when it lies inside one, or cannot be placed (xid, name, immediate)."""
        if target.kind not in ("time", "lsn") or not self.spans:
            return None
        if any(_inside(span, target) for span in self.spans):
            return None
        ranges = "; ".join(
            f"{shown_time(s.earliest_time)} to {shown_time(s.latest_time)}"
            if target.kind == "time"
            else f"LSN {s.earliest_lsn} to {s.latest_lsn}"
            for s in self.spans
        )
        return f"{target.describe().capitalize()} is outside the recoverable window: {ranges}."


def load_window(access: EngineAccess) -> MomentWindow:
    """The `pitr-timeline` verb's report in the wizard's words (blocking: worker threads)."""
    from engines.actions.verbs import Request, run_verb
    from engines.pitr.archive_layout import WAL_FOLDER
    from engines.workspace import Workspace

    with Workspace.open(access.settings) as workspace:
        report = run_verb(workspace, "pitr-timeline", Request())
        if not report.windows:
            any_wal = next(iter(workspace.repository.list(f"{WAL_FOLDER}/")), None) is not None
            return MomentWindow(unavailable=_no_base_reason(any_wal))
    spans, lines, notes = [], [], []
    for window in report.windows:
        where = f"cluster {window.system_id}, timeline {window.timeline}"
        if window.note:
            notes.append(f"{where}: {window.note}")
            lines.append(f"{where}: {window.note}")
            continue
        lines.append(f"{where}:")
        for part in window.ranges:
            span = WindowSpan(
                where, part.earliest_time, part.earliest_lsn, part.latest_archived_at,
                part.latest_lsn, tuple(part.base_backups),
            )  # fmt: skip
            spans.append(span)
            lines.append(
                f"  {shown_time(span.earliest_time)} to {shown_time(span.latest_time)}"
                f" (LSN {span.earliest_lsn} to {span.latest_lsn}); base backup"
                f"{'s' if len(span.base_backups) > 1 else ''} {', '.join(span.base_backups)}"
            )
        for gap in window.gaps:
            lines.append(f"  gap: {gap.count} segment(s) missing, {gap.span}")
        if window.unusable:
            lines.append(
                f"  base backups whose own WAL is not all archived: {', '.join(window.unusable)}"
            )
    if spans:
        return MomentWindow(spans, lines)
    why = notes[0] if notes else "no base backup has all its own WAL in the archive"
    advice = "" if notes else f"; once WAL arrives, {BASE_ADVICE}"
    return MomentWindow(lines=lines, unavailable=f"Unavailable: {why}{advice}.")


def _no_base_reason(any_wal: bool) -> str:
    if not any_wal:
        return (
            f"Unavailable: WAL archiving is off (no WAL in the archive). {SETUP_ADVICE}; then "
            f"a base backup: {BASE_ADVICE}."
        )
    return f"Unavailable: WAL is archived, but there is no base backup yet; {BASE_ADVICE}."


def moment_target(kind: str, value: str, action: str, env_file: Path | None) -> PitrTarget:
    """The checked target, with restore_command naming this jarvis-tui and settings file
    (as `restore postgres --pitr` writes it); JarvisError, one line, otherwise."""
    from engines.config import find_env_file
    from engines.pitr.restore_target import parse_target
    from engines.pitr.setup import restore_command
    from jarvis_tui.launch import jarvis_executable

    command = restore_command(jarvis_executable(), find_env_file(env_file))
    return parse_target(kind, value, action, command)


def target_problem(kind: str, value: str, action: str, window: MomentWindow | None) -> str | None:
    """Why the typed target cannot be restored to, in one line; None when it can."""
    if kind != "immediate" and not value.strip():
        return "Type the target: " + TARGET_HINTS[kind]
    try:
        target = moment_target(kind, value, action, None)
    except JarvisError as error:
        return str(error)
    return None if window is None else window.outside(target)


TARGET_HINTS = {
    "time": "a time with its zone, e.g. 2026-11-27 14:03:00+00",
    "lsn": "a WAL position, e.g. 0/3000148 (pg_current_wal_lsn())",
    "name": "the name pg_create_restore_point was given",
    "xid": "a transaction id (txid_current())",
    "immediate": "the base backup's end: nothing to type",
}


def _inside(span: WindowSpan, target: PitrTarget) -> bool:
    """Inside [the oldest base backup's end, the range's end], by the restore's own rule
    for the start (restore_pitr.ended_before: a stop time to the second counts to the end
    of that second)."""
    from engines.pitr.restore_pitr import ended_before
    from engines.pitr.restore_target import lsn_value, target_time

    if target.kind == "lsn":
        start = lsn_value(span.earliest_lsn)
        return start <= lsn_value(target.value) <= lsn_value(span.latest_lsn)
    if span.earliest_time and not ended_before({"stop_time": span.earliest_time}, target):
        return False
    latest = datetime.fromisoformat(span.latest_time)  # archived at, to the second
    return target_time(target.value) < latest + timedelta(seconds=1)


def shown_time(value: str) -> str:
    """An ISO moment as the operator can type it back: `2026-12-06 03:30:01+00:00`."""
    try:
        return datetime.fromisoformat(value).isoformat(sep=" ", timespec="seconds")
    except ValueError:
        return value
