"""`restore files`: a snapshot (or part of it) back into place, never outside the target.

The manifest is authenticated and checked first (engines.store.snapshots
refuses hostile paths); then every entry is planned (create, overwrite, skip
and why) against what is on disk, and every chunk the files need is located in
a pack that can be read (engines.store.restore_check), which is all a dry run
does. A file whose data cannot be read refuses the restore before its first
write, unless `skip_missing` leaves such files out. Temporaries a killed restore
left in the folders it touches are removed first. Files are written through
`TargetTree`, so no symlink is ever followed below the target, and each one
replaces the old file by rename only once it is complete. Modes, times and
symlinks are restored, owners when running as root. Entries skipped for safety
or left out for unreadable data are counted in the report (the CLI exits 1).
"""

from collections import Counter
from pathlib import Path

from engines.errors import IntegrityError, JarvisError
from engines.jobs import JobContext
from engines.reports import RestoreReport
from engines.repository.resolve import ResolvedArtifact
from engines.store.index import load_index
from engines.store.pack_reader import BlobReader
from engines.store.resolve import pick_manifest
from engines.store.restore_check import Unreadable, unreadable_files
from engines.store.restore_plan import (
    CREATE,
    FOR_SAFETY,
    OVERWRITE,
    OVERWRITE_POLICIES,
    SKIP,
    UNREADABLE,
    FilesRestoreOptions,
    Step,
    plan,
    select_entries,
    target_root,
)
from engines.store.restore_writer import Outcome, execute, file_blocks
from engines.store.snapshots import DIR, load_manifest, shown
from engines.store.target import TargetTree, remove_abandoned_temporaries
from engines.workspace import Workspace

__all__ = ["OVERWRITE_POLICIES", "FilesRestoreOptions", "file_blocks", "restore_files"]

SHOWN_SKIPS = 50


def restore_files(
    workspace: Workspace,
    artifacts: list[ResolvedArtifact],
    options: FilesRestoreOptions,
    context: JobContext,
) -> RestoreReport:
    if options.overwrite not in OVERWRITE_POLICIES:
        raise JarvisError(
            f"--overwrite {options.overwrite}: use one of {', '.join(OVERWRITE_POLICIES)}"
        )
    if options.strip_prefix and options.target_dir is None:
        # The original locations are the stored paths: without the prefix they are others.
        raise JarvisError(
            f"--strip-prefix {options.strip_prefix} needs --target-dir: the paths below the "
            "prefix are laid out in that folder, never in the original locations"
        )
    snapshot = pick_manifest(artifacts)
    keyring = workspace.keyring()
    manifest = load_manifest(snapshot.stored, keyring, snapshot.label, snapshot.expected)
    chosen = select_entries(manifest.entries, options.paths, options.strip_prefix)
    root = target_root(options)
    report = RestoreReport("files", options.dry_run, str(root))
    if root.exists():
        with TargetTree(root) as tree:
            steps = plan(tree, chosen, options.overwrite)
    else:
        if options.dry_run:
            report.add(f"would create the target folder {root}")
        steps = plan(None, chosen, options.overwrite)
    index = load_index(workspace.reader(), keyring)
    with BlobReader(workspace.reader(), keyring) as reader:
        unreadable = unreadable_files(steps, index, reader)
        refusal = _refusal(unreadable, root) if unreadable and not options.skip_missing else None
        if refusal and not options.dry_run:
            damaged = any(problem.damaged for problem in unreadable)
            raise (IntegrityError if damaged else JarvisError)(refusal)
        for problem in unreadable:
            step = problem.step
            step.action, step.reason, step.refused = SKIP, problem.reason, UNREADABLE
        if options.dry_run:
            _describe_plan(report, steps, refusal)
            return report
        if not root.exists():
            root.mkdir(parents=True, mode=0o700)
        with TargetTree(root) as tree:
            removed = remove_abandoned_temporaries(tree, _folders(steps))
            outcome = execute(tree, steps, index, reader, options, context)
    if removed:
        report.add(f"removed {removed} temporaries left by an interrupted restore")
    _describe_outcome(report, steps, outcome, root)
    return report


def _refusal(unreadable: list[Unreadable], root: Path) -> str:
    named = "; ".join(
        f"{shown(str(root.joinpath(*p.step.parts)))} ({p.reason})" for p in unreadable[:5]
    )
    more = f" and {len(unreadable) - 5} more" if len(unreadable) > 5 else ""
    return (
        f"{len(unreadable)} file(s) cannot be restored because their data cannot be read: "
        f"{named}{more}. Nothing was written. Add --skip-missing to restore everything else "
        "(those files are left out and listed); `jarvis-tui verify SNAPSHOT --read-data` "
        "shows what the repository lost and `jarvis-tui repair` salvages what still "
        "authenticates"
    )


def _folders(steps: list[Step]) -> set[tuple[str, ...]]:
    """Every folder a restore of `steps` looks into (where a killed one left temporaries)."""
    folders = {step.parts[:-1] for step in steps}
    folders.update(step.parts for step in steps if step.entry.type == DIR)
    return folders


def _describe_plan(report: RestoreReport, steps: list[Step], refusal: str | None) -> None:
    """The counts and any refusal first, then every file: the summary is not lost below
    a long list."""
    counts = Counter(step.action for step in steps)
    report.add(f"would create {counts[CREATE]}, overwrite {counts[OVERWRITE]}, skip {counts[SKIP]}")
    if refusal:
        report.refuse(refusal)
    for step in steps:
        path = shown("/".join(step.parts))
        report.add(f"{step.action:9} {path}" + (f"  ({step.reason})" if step.reason else ""))
    _note_refused(report, steps)


def _note_refused(report: RestoreReport, steps: list[Step]) -> None:
    """Count what an incomplete restore left out; the command fails on these."""
    counts = Counter(step.refused for step in steps if step.refused)
    report.details.update(skipped_for_safety=counts[FOR_SAFETY], unreadable=counts[UNREADABLE])


def _describe_outcome(
    report: RestoreReport, steps: list[Step], outcome: Outcome, root: Path
) -> None:
    skipped = [s for s in steps if s.action == SKIP]
    report.add(
        f"created {outcome.created}, overwrote {outcome.overwritten}, skipped {len(skipped)} "
        f"({outcome.bytes_written} bytes written)"
    )
    refused = [s for s in skipped if s.refused]
    for step in refused[:SHOWN_SKIPS]:
        where = shown(str(root.joinpath(*step.parts)))
        report.warnings.append(f"not restored, {step.refused}: {where}: {step.reason}")
    if len(refused) > SHOWN_SKIPS:
        report.warnings.append(
            f"... and {len(refused) - SHOWN_SKIPS} more not restored (see --dry-run)"
        )
    others = [s for s in skipped if not s.refused]
    for step in others[:SHOWN_SKIPS]:
        report.warnings.append(f"skipped {shown('/'.join(step.parts))}: {step.reason}")
    if len(others) > SHOWN_SKIPS:
        report.warnings.append(f"... and {len(others) - SHOWN_SKIPS} more skipped (see --dry-run)")
    for failure in outcome.failed:
        report.warnings.append(f"failed: {failure}")
    report.details.update(
        created=outcome.created,
        overwritten=outcome.overwritten,
        skipped=len(skipped),
        failed=len(outcome.failed),
    )
    _note_refused(report, steps)
