"""`restore files`: a snapshot (or part of it) back into place, never outside the target.

The manifest is authenticated and checked first (engines.store.snapshots
refuses hostile paths); then every entry is planned (create, overwrite, skip
and why) against what is on disk, which is all a dry run does. Files are
written through `TargetTree`, so no symlink is ever followed below the target,
and each one replaces the old file by rename only once it is complete. Modes,
times and symlinks are restored, owners when running as root.
"""

from engines.errors import JarvisError
from engines.jobs import JobContext
from engines.resolve import ResolvedArtifact
from engines.sources.base import RestoreReport
from engines.store.index import load_index
from engines.store.pack_reader import BlobReader
from engines.store.resolve import pick_manifest
from engines.store.restore_plan import (
    CREATE,
    OVERWRITE,
    OVERWRITE_POLICIES,
    SKIP,
    FilesRestoreOptions,
    plan,
    select_entries,
    target_root,
)
from engines.store.restore_writer import execute, file_blocks
from engines.store.snapshots import load_manifest, shown
from engines.store.target import TargetTree
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
    snapshot = pick_manifest(artifacts)
    keyring = workspace.keyring()
    manifest = load_manifest(snapshot.path, keyring, snapshot.label, snapshot.expected)
    chosen = select_entries(manifest.entries, options.paths, options.strip_prefix)
    root = target_root(options)
    report = RestoreReport("files", options.dry_run, str(root))
    if options.dry_run and not root.exists():
        report.add(f"would create the target folder {root}")
        steps = plan(None, chosen, options.overwrite)
    else:
        if not root.exists():
            root.mkdir(parents=True, mode=0o700)
        with TargetTree(root) as tree:
            steps = plan(tree, chosen, options.overwrite)
    counts = {
        action: sum(1 for s in steps if s.action == action) for action in (CREATE, OVERWRITE, SKIP)
    }
    if options.dry_run:
        for step in steps:
            path = shown("/".join(step.parts))
            report.add(f"{step.action:9} {path}" + (f"  ({step.reason})" if step.reason else ""))
        report.add(
            f"would create {counts[CREATE]}, overwrite {counts[OVERWRITE]}, skip {counts[SKIP]}"
        )
        return report
    index = load_index(workspace.repository, keyring)
    with TargetTree(root) as tree, BlobReader(workspace.repository, keyring) as reader:
        outcome = execute(tree, steps, index, reader, options, context)
    report.add(
        f"created {outcome.created}, overwrote {outcome.overwritten}, skipped {counts[SKIP]} "
        f"({outcome.bytes_written} bytes written)"
    )
    skipped = [s for s in steps if s.action == SKIP]
    for step in skipped[:SHOWN_SKIPS]:
        report.warnings.append(f"skipped {shown('/'.join(step.parts))}: {step.reason}")
    if len(skipped) > SHOWN_SKIPS:
        report.warnings.append(f"... and {len(skipped) - SHOWN_SKIPS} more skipped (see --dry-run)")
    for failure in outcome.failed:
        report.warnings.append(f"failed: {failure}")
    report.details.update(
        created=outcome.created,
        overwritten=outcome.overwritten,
        skipped=counts[SKIP],
        failed=len(outcome.failed),
    )
    return report
