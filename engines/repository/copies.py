"""Copies of the repository on every other destination (the guide's off-site copy).

One listing of the repository and one of the destination say what is missing
there (absent, or of another size); those objects are streamed from the
repository into the destination in an order that never lets a copy reference
what is not there yet: the files store's packs, then its index files, then the
other artifacts, then the snapshot manifests, then the sets' records (an
artifact's sidecar right after it). An interrupted copy leaves only unreferenced
data, which the next copy completes.

Each catalogued artifact gets its copy state per destination: `stored` once it and
its sidecar are there, `failed` (with the error) when its copy did not go through.
A failed copy never touches the repository, and raises the guide's "S3 upload
failure" alert; the next backup or `jarvis-tui sync` pushes what is still missing.
"""

import logging
from dataclasses import dataclass, field

from engines.alerts import AlertDispatcher
from engines.destinations import Destination, StoredObject, copy_destinations
from engines.errors import JarvisError, JobCancelledError
from engines.jobs import JobContext
from engines.pipeline.artifacts import SIDECAR_SUFFIX
from engines.repository.repository_id import ID_FILE
from engines.repository.set_records import SETS_FOLDER
from engines.store.layout import INDEX_PREFIX, PACKS_PREFIX, is_snapshot_key
from engines.workspace import Workspace

logger = logging.getLogger("jarvis.copies")

COPY_BUFFER = 1 << 20
ALERT_WORDS = "S3 upload failure"  # the guide's name of the alert
LISTING = "(listing)"  # the failed step when the destination could not even be listed


def alert_kind(destination: str) -> str:
    return f"upload_failure:{destination}"


def copy_rank(key: str) -> int:
    """Where `key` goes in the copy order: what is referenced before what references it."""
    if key.startswith(PACKS_PREFIX):
        return 0
    if key.startswith(INDEX_PREFIX):
        return 1
    if key.startswith(f"{SETS_FOLDER}/"):
        return 4
    if is_snapshot_key(key.removesuffix(SIDECAR_SUFFIX)):
        return 3
    return 2


@dataclass
class CopyPlan:
    """What one destination lacks, in copy order."""

    destination: str
    missing: list[StoredObject]
    present: set[str]  # repository keys the destination already holds at the same size

    @property
    def bytes(self) -> int:
        return sum(item.size for item in self.missing)


@dataclass
class CopyOutcome:
    destination: str
    planned: list[StoredObject]
    copied: list[str] = field(default_factory=list)
    copied_bytes: int = 0
    error: str | None = None  # the first failure; the objects after it were not copied
    failed_key: str | None = None
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

    def describe(self) -> str:
        if self.error is not None and self.failed_key == LISTING:
            return f"{self.destination}: could not list it: {self.error}; nothing copied"
        if self.dry_run:
            if not self.planned:
                return f"{self.destination}: nothing to copy"
            size = sum(item.size for item in self.planned)
            return f"{self.destination}: would copy {len(self.planned)} object(s), {size} bytes"
        if self.error is not None:
            left = len(self.planned) - len(self.copied)
            return (
                f"{self.destination}: copy failed at {self.failed_key}: {self.error}; "
                f"{len(self.copied)} object(s) copied, {left} not copied"
            )
        if not self.planned:
            return f"{self.destination}: nothing to copy"
        return f"{self.destination}: copied {len(self.copied)} object(s), {self.copied_bytes} bytes"


def bind_repository_id(repository: Destination, destination: Destination) -> None:
    """The destination keeps the repository's id (artifacts are sealed with it, so a host
    rebuilt from the copy needs it to read them); one holding another id is another
    repository's copy, and nothing of ours goes there."""
    ours = repository.repository_id()
    if ours is None:
        return  # nothing stored yet, so nothing sealed with an id
    theirs = destination.ensure_repository_id(ours)
    if theirs != ours:
        raise JarvisError(
            f"it holds another repository (id {theirs}, this one is {ours}); give this host "
            "a prefix of its own (S3_PREFIX)"
        )


def plan_copy(repository: Destination, destination: Destination) -> CopyPlan:
    """One listing of each side; missing means absent there or of another size."""
    there = {item.key: item.size for item in destination.list()}
    missing: list[StoredObject] = []
    present: set[str] = set()
    for item in repository.list():
        if there.get(item.key) == item.size:
            present.add(item.key)
        else:
            missing.append(item)
    missing.sort(key=lambda item: (copy_rank(item.key), item.key))
    return CopyPlan(destination.name, missing, present)


def copy_object(
    repository: Destination,
    destination: Destination,
    item: StoredObject,
    context: JobContext | None,
    done: int,
    total: int,
) -> int:
    """Send one object across; nothing appears there unless it went through whole. An
    object the repository holds as a file is handed over as that file (an S3 upload reads
    it in parts, at once, with no spooled copy); otherwise it is streamed."""
    copied = 0

    def progress(count: int) -> None:
        nonlocal copied
        copied += count
        if context is not None:
            context.progress(done + max(copied, 0), total)
            context.raise_if_cancelled()

    path = repository.local_path(item.key)
    if path is not None:
        size = path.stat().st_size
        if size != item.size:
            raise OSError(f"{item.key}: {size} bytes on disk, {item.size} listed")
        destination.put(path, item.key, progress)
        return size
    with repository.open_read(item.key) as source, destination.open_write(item.key) as output:
        while chunk := source.read(COPY_BUFFER):
            output.write(chunk)
            progress(len(chunk))
        if copied != item.size:
            raise OSError(f"{item.key}: read {copied} bytes of the {item.size} listed")
    return copied


def push(
    workspace: Workspace,
    destination: Destination,
    plan: CopyPlan,
    context: JobContext | None,
) -> CopyOutcome:
    """Copy the plan's objects in order, stopping at the first failure (what follows
    may reference it), then record every artifact's copy state there."""
    outcome = CopyOutcome(destination.name, plan.missing)
    total = plan.bytes
    try:
        bind_repository_id(workspace.repository, destination)
    except Exception as error:  # before any object: a foreign copy gets none of ours
        outcome.error = str(error) or type(error).__name__
        outcome.failed_key = ID_FILE
        record_copy_states(workspace, outcome, plan.present)
        return outcome
    for item in plan.missing:
        if context is not None:
            context.raise_if_cancelled()
        try:
            outcome.copied_bytes += copy_object(
                workspace.repository, destination, item, context, outcome.copied_bytes, total
            )
        except JobCancelledError:
            record_copy_states(workspace, outcome, plan.present | set(outcome.copied))
            raise
        except Exception as error:  # whatever the destination says, never a silent success
            outcome.error = str(error) or type(error).__name__
            outcome.failed_key = item.key
            break
        outcome.copied.append(item.key)
    record_copy_states(workspace, outcome, plan.present | set(outcome.copied))
    return outcome


def record_copy_states(workspace: Workspace, outcome: CopyOutcome, present: set[str]) -> None:
    """`stored` for each complete artifact whose object and sidecar are there; `failed`
    for those this copy meant to send and did not."""
    catalog = workspace.catalog
    not_sent = {item.key for item in outcome.planned} - present
    states = catalog.copy_states_on(outcome.destination)
    for artifact in catalog.all_artifacts():
        if artifact.status != "complete":
            continue
        keys = {artifact.relpath, artifact.relpath + SIDECAR_SUFFIX}
        if keys <= present:
            if states.get(artifact.id) != "stored":
                catalog.set_copy_state(artifact.id, outcome.destination, "stored")
        elif keys & not_sent and outcome.error is not None:
            error = f"{outcome.failed_key}: {outcome.error}"
            catalog.set_copy_state(artifact.id, outcome.destination, "failed", error)


def record_unreachable(workspace: Workspace, outcome: CopyOutcome) -> None:
    """A destination whose listing failed: every complete artifact not known to be
    stored there is recorded failed (a new backup's among them)."""
    catalog = workspace.catalog
    error = f"listing {outcome.destination}: {outcome.error}"
    states = catalog.copy_states_on(outcome.destination)
    for artifact in catalog.all_artifacts():
        if artifact.status != "complete":
            continue
        if states.get(artifact.id) != "stored":
            catalog.set_copy_state(artifact.id, outcome.destination, "failed", error)


def copy_to_destinations(
    workspace: Workspace,
    context: JobContext | None,
    destinations: list[Destination] | None = None,
    *,
    dry_run: bool = False,
) -> list[CopyOutcome]:
    """Bring every copy destination up to the repository; run under the repository lock."""
    if destinations is None:
        destinations = copy_destinations(workspace.settings)
    outcomes = []
    for destination in destinations:
        try:
            plan = plan_copy(workspace.repository, destination)
        except JobCancelledError:
            raise
        except Exception as error:  # an unreachable destination: its listing fails
            outcome = CopyOutcome(destination.name, [], dry_run=dry_run)
            outcome.error = str(error) or type(error).__name__
            outcome.failed_key = LISTING
            if not dry_run:
                record_unreachable(workspace, outcome)
        else:
            if dry_run:
                outcome = CopyOutcome(destination.name, plan.missing, dry_run=True)
            else:
                if context is not None and plan.missing:
                    context.log(
                        f"copying {len(plan.missing)} object(s), {plan.bytes} bytes, "
                        f"to {destination.name}"
                    )
                outcome = push(workspace, destination, plan, context)
        if context is not None:
            if outcome.ok:
                context.log(outcome.describe())
            else:
                context.log(
                    f"{outcome.describe()}; the backups stay stored locally; "
                    "`jarvis-tui sync` retries",
                    level="error",
                )
        outcomes.append(outcome)
    return outcomes


def alert_copy_outcomes(
    workspace: Workspace, outcomes: list[CopyOutcome], dispatcher: AlertDispatcher | None = None
) -> None:
    """Raise the upload failure alert for each destination a copy failed on, clear it for
    each that is complete again. Never raises: the copies are recorded either way."""
    if not any(not outcome.dry_run for outcome in outcomes):
        return
    try:
        dispatcher = dispatcher or AlertDispatcher(workspace.catalog, workspace.settings)
        for outcome in outcomes:
            if outcome.dry_run:
                continue
            if outcome.ok:
                dispatcher.clear_condition(
                    alert_kind(outcome.destination),
                    f"{outcome.destination}: every backup is copied again",
                )
            else:
                dispatcher.raise_condition(
                    alert_kind(outcome.destination),
                    "critical",
                    f"{ALERT_WORDS}: {outcome.describe()}",
                )
    except Exception:
        logger.exception("could not record the copy alerts")
