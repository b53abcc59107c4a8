"""Every message the console's workers post, named as the event that happened.

Worker threads reach the UI only through these (`post_message` is
thread-safe); handlers run on the UI thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.message import Message

if TYPE_CHECKING:
    from jarvis_tui.catalog_view import CatalogIndex, SetDetail, SetExtras
    from jarvis_tui.demo_access import DemoReady
    from jarvis_tui.engine_access import Alert, BackupSet, Job, JobEvent, JobUpdate
    from jarvis_tui.pitr_access import MomentWindow
    from jarvis_tui.restorable import RestorableSet
    from jarvis_tui.restore_access import RestoreReport


@dataclass
class CatalogChanged(Message):
    """Backups were added, verified or removed: reload what shows them."""

    reason: str


@dataclass
class DemoStarted(Message):
    """The demo platform runs (started now or found running); its settings read back."""

    ready: DemoReady


@dataclass
class DemoFailed(Message):
    """The demo platform did not start; `error` is the operator's message."""

    error: str


@dataclass
class WorkspaceFailed(Message):
    """The catalog could not be opened or read; `error` is the operator's message."""

    what: str
    error: str


@dataclass
class JobsPolled(Message):
    jobs: list[Job]


@dataclass
class JobEnded(Message):
    """A job (from this or any other process) was seen finishing."""

    job: Job


@dataclass
class JobUpdated(Message):
    """A job this console runs reported progress, a log line, or its end."""

    update: JobUpdate


@dataclass
class JobEventsLoaded(Message):
    job_id: int
    events: list[JobEvent]
    job: Job | None


@dataclass
class BackupFinished(Message):
    backup_set: BackupSet


@dataclass
class BackupFailed(Message):
    kind: str
    error: str
    cancelled: bool = False  # stopped on request: said as cancelled, not as a failure


@dataclass
class DryRunFinished(Message):
    report: RestoreReport


@dataclass
class DryRunFailed(Message):
    error: str


@dataclass
class RestoreFinished(Message):
    report: RestoreReport


@dataclass
class RestoreFailed(Message):
    error: str
    cancelled: bool = False


@dataclass
class VerifyFinished(Message):
    set_id: str
    problems: list[str]


@dataclass
class VerifyFailed(Message):
    set_id: str
    error: str


@dataclass
class ExportFinished(Message):
    paths: list[Path]


@dataclass
class ExportFailed(Message):
    error: str


@dataclass
class FullRestoreFinished(Message):
    """`restore full` ended well: the engine's report (its steps and their lines)."""

    report: Any


@dataclass
class FullRestoreFailed(Message):
    """`restore full` stopped: the one line saying where and what was restored."""

    error: str
    cancelled: bool = False


@dataclass
class PullFinished(Message):
    """A pull ended: what it downloaded, and each object it could not bring."""

    line: str
    problems: list[str]


@dataclass
class PullFailed(Message):
    error: str


@dataclass
class SyncFinished(Message):
    """Each copy destination's line (what was copied, or where it failed) and whether any failed."""

    lines: list[str]
    failed: bool


@dataclass
class SyncFailed(Message):
    error: str


@dataclass
class DeletionChecked(Message):
    """A set about to be deleted, and the sources whose newest good backup it is."""

    backup_set: BackupSet
    newest_of: list[str]


@dataclass
class SetDeleted(Message):
    set_id: str


@dataclass
class DeleteFailed(Message):
    set_id: str
    error: str


@dataclass
class CatalogLoaded(Message):
    index: CatalogIndex


@dataclass
class CatalogFiltered(Message):
    query: str
    sets: list[BackupSet]
    total: int
    seconds: float


@dataclass
class ExtrasLoaded(Message):
    extras: dict[str, SetExtras]


@dataclass
class DetailLoaded(Message):
    detail: SetDetail


@dataclass
class AlertsLoaded(Message):
    alerts: list[Alert]


@dataclass
class TestAlertSent(Message):
    outcome: str


@dataclass
class DashboardLoaded(Message):
    facts: Any


@dataclass
class ServersProbed(Message):
    """Each configured server's answer to the engine's health probe."""

    probes: dict[str, Any]


@dataclass
class PitrRead(Message):
    """The archiver's state and the recoverable window, for the dashboard's PITR card."""

    facts: Any


@dataclass
class RestorableSetsLoaded(Message):
    """Good sets holding a kind's artifacts, newest first."""

    sets: list[RestorableSet]


@dataclass
class HealthChecked(Message):
    """The walkthrough's health checks ran; `lines` is what each said, `ok` whether all
    passed."""

    step: int
    ok: bool
    lines: list[tuple[bool, str]]


@dataclass
class RetentionPlanned(Message):
    """A cleanup's dry run ended: which sets retention keeps (and why), which it deletes."""

    plan: Any


@dataclass
class RetentionPlanFailed(Message):
    error: str


@dataclass
class MaintenanceFinished(Message):
    """A maintenance job (cleanup, prune, verify all, drill, catalog rebuild) ended."""

    title: str
    lines: list[str]
    failed: bool


@dataclass
class MaintenanceFailed(Message):
    title: str
    error: str
    cancelled: bool = False


@dataclass
class HealthRead(Message):
    """Every check of the health engine, as the Health screen shows them."""

    rows: list[Any]


@dataclass
class SnapshotsCompared(Message):
    """Two files snapshots were compared: the engine's SnapshotDiff (added, removed,
    changed paths) from the set `older` to the set `newer`."""

    diff: Any
    older: str
    newer: str


@dataclass
class SnapshotsCompareFailed(Message):
    error: str


@dataclass
class KeyRotated(Message):
    """Every backup made under an earlier key was sealed again (the rekey job's report)."""

    report: Any


@dataclass
class RekeyFailed(Message):
    error: str
    cancelled: bool = False


@dataclass
class MomentWindowLoaded(Message):
    """The window a point-in-time restore can reach was read (or why none can)."""

    window: MomentWindow
