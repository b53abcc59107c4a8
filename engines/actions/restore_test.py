"""`jarvis-tui test` (the guide's `backup:test`, `test-backup-restore.sh`): a fresh full
backup, then every artifact of it restored into scratch targets and compared.

The backup is `backup full` itself; each artifact then goes through the restore drill
(`verify_drill.drill_artifact`): authenticated end to end, then restored by its source's
own restore into a scratch database, a scratch `redis-server` or a private temporary
folder, and compared with what the backup recorded of the source as it read it (tables
and row counts, keys per database, every file's chunks, mode and size, variables). The
scratch targets are removed whatever the outcome. Any part that did not back up, and any
difference, is a failure.
"""

from dataclasses import dataclass

from engines.actions.backup_full import PartResult, run_backup_full
from engines.actions.verbs import Request
from engines.actions.verify_drill import DrillCheck, drill_artifact
from engines.alerts import AlertDispatcher
from engines.catalog import BackupSet
from engines.jobs import JobContext
from engines.workspace import Workspace


@dataclass
class RestoreTestReport:
    backup_set: BackupSet
    parts: list[PartResult]
    checks: list[DrillCheck]

    @property
    def failures(self) -> list[str]:
        """One line per problem: a part not backed up whole, an artifact that differs."""
        found = [part.summary for part in self.parts if part.state in ("failed", "warning")]
        found += [f"{c.relpath}: {c.detail}" for c in self.checks if not c.ok]
        if not self.checks:
            found.append(f"backup {self.backup_set.id} holds nothing to restore")
        return found


def run_restore_test(
    workspace: Workspace, context: JobContext, *, dispatcher: AlertDispatcher | None = None
) -> RestoreTestReport:
    backup = run_backup_full(workspace, context, tier="manual", dispatcher=dispatcher)
    backup_set = backup.backup_set
    artifacts = [a for a in workspace.catalog.artifacts_of(backup_set.id) if a.status == "complete"]
    checks = []
    # The drills, counted in artifacts (not each restore's bytes), after the backup's parts.
    context.count_in("artifacts", len(artifacts))
    for number, artifact in enumerate(artifacts, start=1):
        context.raise_if_cancelled()
        context.log(f"restoring {artifact.relpath} into a scratch target")
        check = drill_artifact(workspace, artifact.source, artifact, context)
        context.log(
            f"{artifact.relpath}: {'ok' if check.ok else 'DIFFERS'}: {check.detail}",
            level="info" if check.ok else "error",
        )
        checks.append(check)
        context.progress(number, len(artifacts), "artifacts")
    return RestoreTestReport(backup_set, backup.parts, checks)


def run(workspace: Workspace, request: Request, context: JobContext) -> RestoreTestReport:
    """The `test` verb."""
    return run_restore_test(workspace, context, dispatcher=request.dispatcher)
