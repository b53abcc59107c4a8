"""`verify --read-data` of a base backup: every chunk decrypted again and the tar's files
checked against its backup_manifest, as they stream past (nothing written to disk)."""

import dataclasses

from engines.errors import IntegrityError
from engines.jobs import JobContext
from engines.pipeline.artifacts import PlainBlocks, VerifyReport
from engines.pipeline.crypto import Keyring
from engines.pitr.base_restore import is_base
from engines.pitr.base_tar import BaseTarWalk, TarFormatError
from engines.repository.resolve import ResolvedArtifact


def with_base_backup_check(
    target: ResolvedArtifact,
    report: VerifyReport,
    keyring: Keyring,
    context: JobContext,
    *,
    read_data: bool,
) -> VerifyReport:
    """`report`, extended (with `read_data`) by the tar-against-manifest check."""
    if not report.ok or not read_data or not is_base(target):
        return report
    walk = BaseTarWalk()
    try:
        for _ in walk.watch(iter(PlainBlocks(target.stored, keyring, target.expected))):
            context.raise_if_cancelled()
        problems = walk.problems()
    except (IntegrityError, TarFormatError) as error:
        problems = [str(error)]
    if problems:
        problems = [f"{target.label}: {problem}" for problem in problems]
        return dataclasses.replace(report, ok=False, problems=problems)
    context.log(f"{target.label}: {len(walk.files)} files match its manifest")
    return report
