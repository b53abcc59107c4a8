"""The complete-system walkthrough's last step: what each of its restores wrote, compared
with the backup it came from by the source's own `check_restored`, as `restore full`
compares after its restores (tables and row counts, key counts, file counts)."""

from dataclasses import dataclass

from engines.actions.verbs import Request
from engines.errors import IntegrityError
from engines.jobs import JobContext
from engines.reports import RestoreReport
from engines.repository.resolve import resolve_artifacts
from engines.sources import source_entry
from engines.workspace import Workspace


@dataclass(frozen=True)
class Restored:
    """One restore that ran: its source, the backup it read (`reference`), its report."""

    kind: str
    reference: str
    report: RestoreReport


def run(workspace: Workspace, request: Request, context: JobContext) -> list[str]:
    """What matched, one line per restore; IntegrityError naming every difference."""
    restored: list[Restored] = list(request.options or ())
    lines, differences = [], []
    for part in restored:
        context.raise_if_cancelled()
        resolved = resolve_artifacts(workspace, part.reference, part.kind, check=False)
        try:
            found = source_entry(part.kind).source.check_restored(
                workspace, resolved, part.report, context
            )
        except IntegrityError as error:
            differences.append(f"{part.kind}: {error}")
            continue
        line = f"{part.kind}: {found or 'nothing to compare'}"
        context.log(line)
        lines.append(line)
    if differences:
        raise IntegrityError("what was restored differs from the backup: " + "; ".join(differences))
    return lines
