"""The scheduled restore drill (BACKUP_VERIFY_RESTORE_TIME, weekly by default).

For each source, its newest good backup (and, if that is a PostgreSQL base backup, the
newest dump as well: `drilled_sets`) is authenticated end to end and then,
where the source offers a restore check (`Source.verify_restore`), restored into
a scratch target and compared with its metadata. The check returns what it checked
(None when the artifact has no restore check, e.g. PostgreSQL globals) and raises
JarvisError when the copy does not match.
Results are recorded on each artifact (and so on its set) and failures alerted.
"""

from dataclasses import dataclass, field

from engines.actions.verbs import Request
from engines.alerts import AlertDispatcher
from engines.catalog import Artifact
from engines.errors import JarvisError, JobCancelledError, NotFoundError
from engines.jobs import JobContext
from engines.pipeline.artifacts import verify_artifact
from engines.repository.resolve import log_copies_read, resolved_from_catalog
from engines.sources import SOURCES, get_source
from engines.sources.base import Source
from engines.workspace import Workspace


@dataclass(frozen=True)
class DrillCheck:
    source: str
    set_id: str
    relpath: str
    ok: bool
    detail: str


@dataclass
class DrillReport:
    checks: list[DrillCheck] = field(default_factory=list)
    untested_sources: list[str] = field(default_factory=list)  # configured, never backed up

    @property
    def failed(self) -> list[DrillCheck]:
        return [check for check in self.checks if not check.ok]


def drill_artifact(
    workspace: Workspace, source_kind: str, artifact: Artifact, context: JobContext
) -> DrillCheck:
    def result(ok: bool, detail: str) -> DrillCheck:
        workspace.catalog.record_verification(artifact.id, ok, f"restore drill: {detail}")
        return DrillCheck(source_kind, artifact.set_id, artifact.relpath, ok, detail)

    if workspace.reader().stat(artifact.relpath) is None:
        copies = " and every copy" if workspace.reader() is not workspace.repository else ""
        return result(False, f"{artifact.relpath} is missing from the repository{copies}")
    try:
        resolved = resolved_from_catalog(workspace, artifact)
        log_copies_read(workspace, [resolved], context)
        report = verify_artifact(resolved.stored, workspace.keyring(), expected=resolved.expected)
    except JarvisError as error:
        return result(False, str(error))
    if not report.ok:
        return result(False, "; ".join(report.problems))
    try:
        detail = get_source(source_kind).verify_restore(workspace, artifact, context)
    except JobCancelledError:
        raise
    except JarvisError as error:
        return result(False, str(error))
    if detail is None:
        return result(True, f"authenticated ({report.chunks} chunks)")
    return result(True, detail)


def run_restore_drill(
    workspace: Workspace, context: JobContext, *, dispatcher: AlertDispatcher | None = None
) -> DrillReport:
    dispatcher = dispatcher or AlertDispatcher(workspace.catalog, workspace.settings)
    report = DrillReport()
    latest = workspace.catalog.last_good_backups()
    for entry in SOURCES:
        kind = entry.kind
        if kind not in latest:
            if entry.source.configured(workspace.settings) is None:
                report.untested_sources.append(kind)
            continue
        artifacts = [
            a
            for set_id in drilled_sets(workspace, entry.source, latest[kind].set_id)
            for a in workspace.catalog.artifacts_of(set_id)
            if a.source == kind and a.status == "complete"
        ]
        for artifact in artifacts:
            context.raise_if_cancelled()
            context.log(f"restore drill: {artifact.relpath}")
            check = drill_artifact(workspace, kind, artifact, context)
            report.checks.append(check)
            context.log(
                f"{artifact.relpath}: {'ok' if check.ok else 'FAILED'}: {check.detail}",
                level="info" if check.ok else "error",
            )
            alert_verification(dispatcher, artifact.relpath, check.ok, check.detail)
    for kind in report.untested_sources:
        context.log(f"restore drill: {kind} is configured but has no good backup yet", "warning")
    return report


def drilled_sets(workspace: Workspace, source: Source, newest: str) -> list[str]:
    """The source's newest good set and, when that is not what a restore picks as `latest`
    (a PostgreSQL base backup newer than the newest dump), that one too: neither kind
    goes undrilled because of the other."""
    try:
        restorable = source.newest_for_restore(workspace, None).id
    except NotFoundError:  # only base backups so far
        return [newest]
    return list(dict.fromkeys([newest, restorable]))


def alert_verification(dispatcher: AlertDispatcher, relpath: str, ok: bool, detail: str) -> None:
    """One open condition per artifact, closed when that artifact verifies again."""
    condition = f"verification_failure:{relpath}"
    if ok:
        dispatcher.clear_condition(condition, f"{relpath} verifies again")
    else:
        dispatcher.raise_condition(condition, "critical", f"{relpath}: {detail}")


def run(workspace: Workspace, request: Request, context: JobContext) -> DrillReport:
    """The `drill` verb (`jarvis-tui drill` and the schedule's restore drill)."""
    return run_restore_drill(workspace, context, dispatcher=request.dispatcher)
