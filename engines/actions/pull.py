"""`jarvis-tui pull [--latest | SET] [--dry-run]`: the repository given what it lacks
from the copy destinations (S3), the guide's `aws s3 sync s3://... /var/backups/jarvis/`.

Everything (no set named), the latest complete set, or one set: its artifacts and
sidecars, its record and, for a files snapshot, the index and the packs holding its
chunks. One listing of each side says what is missing here; each object is
authenticated before it is stored under its name (engines/repository/pulls.py), and
artifacts found here already (brought by `aws s3 sync`) are recorded here. A dry run
lists what would come and changes nothing.
"""

from dataclasses import dataclass

from engines.actions.verbs import Request
from engines.destinations import copy_destinations
from engines.jobs import JobContext
from engines.repository.pulls import (
    PullOutcome,
    PullPlan,
    keys_of_sets,
    listings,
    plan_pull,
    pull,
    record_present,
)
from engines.workspace import Workspace

WORK_PURPOSE = "pull"


@dataclass
class PullReport:
    dry_run: bool
    scope: str  # what was asked: every object, or a set
    sources: list[str]  # the copy destinations read
    plan: PullPlan
    outcome: PullOutcome | None = None  # None for a dry run or with nothing configured

    @property
    def refused(self) -> list[tuple[str, str]]:
        return self.outcome.refused if self.outcome else []

    @property
    def failed(self) -> list[tuple[str, str]]:
        return self.outcome.failed if self.outcome else []


def run(workspace: Workspace, request: Request, context: JobContext) -> PullReport:
    copies = copy_destinations(workspace.settings)
    scope = "every object" if request.reference is None else ""
    if not copies:
        context.log("no copy destination is configured; nothing to pull")
        return PullReport(request.dry_run, scope, [], PullPlan([]))
    set_id = None
    if request.reference is not None:
        set_id = workspace.catalog.get_backup_set(request.reference).id
        scope = f"backup set {set_id}"
    with workspace.lock("pull", reading_only=request.dry_run):
        remote = listings(copies)
        wanted = None if set_id is None else keys_of_sets(workspace, [set_id])
        plan = plan_pull(workspace.repository, remote, wanted)
        report = PullReport(request.dry_run, scope, [copy.name for copy in copies], plan)
        if request.dry_run:
            return report
        record_present(workspace, wanted)
        if not plan.items:
            return report
        context.log(
            f"pulling {len(plan.items)} object(s), {plan.bytes} bytes, of {scope} from "
            f"{', '.join(report.sources)}"
        )
        largest = max(item.size for item in plan.items)
        with workspace.work_folder(WORK_PURPOSE, needed=largest) as staging:
            report.outcome = pull(workspace, plan, staging, context)
    outcome = report.outcome
    context.log(
        f"pulled {len(outcome.pulled)} object(s), {outcome.pulled_bytes} bytes"
        + (f"; {len(outcome.refused)} refused" if outcome.refused else "")
        + (f"; {len(outcome.failed)} failed" if outcome.failed else "")
    )
    return report
