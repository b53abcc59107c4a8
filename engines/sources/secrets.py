"""Secrets as a source: the `.env` file(s) of BACKUP_SECRET_FILES as encrypted artifacts.

A restore writes the file with mode 0600 through a temporary and a rename,
refuses to replace an existing file without `force`, and then keeps the
previous one as `PATH.bak`. Values never leave the process: a dry run shows
variable names only, and which of them differ from the current file.
"""

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engines.catalog import Artifact, BackupSet
from engines.config import Settings
from engines.dotenv import parse_value
from engines.errors import JarvisError, NotFoundError
from engines.jobs import JobContext
from engines.pipeline.artifacts import read_artifact_whole
from engines.plumbing.fsutil import atomic_output, remove_abandoned_temporaries_of
from engines.plumbing.os_errors import explain_os_error
from engines.repository.artifacts import store_artifact
from engines.repository.resolve import ResolvedArtifact, resolved_from_catalog
from engines.sources.base import RestoreReport, Source
from engines.workspace import Workspace

MAX_SECRET_FILE = 16 * 1024 * 1024
SECRET_MODE = 0o600
TARGET_EXISTS = "target-exists"  # the dry run's refusal reason: the file is there, no force
_ASSIGNMENT = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")


@dataclass(frozen=True)
class SecretsRestoreOptions:
    to: Path | None = None
    force: bool = False
    dry_run: bool = False
    file: str | None = None  # which file of the backup, when it holds several


def env_values(text: str) -> dict[str, str | None]:
    """Variable names with their values (None for a line that does not parse)."""
    values: dict[str, str | None] = {}
    for line in text.splitlines():
        match = _ASSIGNMENT.match(line)
        if match and not line.lstrip().startswith("#"):
            values[match.group(1)] = parse_value(match.group(2))
    return values


def compare_names(backup: str, current: str) -> dict[str, list[str]]:
    """Which variable names are added, removed, different or the same; never the values."""
    old, new = env_values(current), env_values(backup)
    return {
        "added": sorted(set(new) - set(old)),
        "removed": sorted(set(old) - set(new)),
        "differ": sorted(name for name in set(new) & set(old) if new[name] != old[name]),
        "same": sorted(name for name in set(new) & set(old) if new[name] == old[name]),
    }


def _read_secret_file(configured: Path) -> tuple[Path, bytes, int]:
    path = Path(os.path.abspath(configured))
    try:
        info = path.stat()
        if not path.is_file():
            raise JarvisError(f"BACKUP_SECRET_FILES: {configured} ({path}) is not a file")
        if info.st_size > MAX_SECRET_FILE:
            raise JarvisError(
                f"BACKUP_SECRET_FILES: {path} is {info.st_size} bytes; secret files are "
                f"limited to {MAX_SECRET_FILE} bytes (is it the right file?)"
            )
        return path, path.read_bytes(), info.st_mode & 0o7777
    except FileNotFoundError:
        raise NotFoundError(
            f"BACKUP_SECRET_FILES: {configured} ({path}) does not exist; set BACKUP_SECRET_FILES "
            "to your .env file(s), comma-separated"
        ) from None
    except PermissionError:
        raise JarvisError(f"BACKUP_SECRET_FILES: cannot read {path} (permission denied)") from None


def _artifact_name(path: Path, taken: set[str]) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", path.name.lstrip(".")) or "secret"
    candidate, number = name, 1
    while candidate in taken:
        number += 1
        candidate = f"{name}-{number}"
    taken.add(candidate)
    return candidate


class SecretsSource(Source):
    kind = "secrets"

    def configured(self, settings: Settings) -> str | None:
        if settings.backup_secret_files:
            return None
        return "BACKUP_SECRET_FILES is empty; name the .env file(s) to back up"

    def back_up(
        self, workspace: Workspace, backup_set: BackupSet, options: Any, context: JobContext
    ) -> list[Artifact]:
        files = [_read_secret_file(p) for p in workspace.settings.backup_secret_files]
        artifacts, taken = [], set()
        for path, data, mode in files:
            artifacts.append(
                store_artifact(
                    workspace,
                    backup_set,
                    context,
                    source="secrets",
                    mode="file",
                    name=_artifact_name(path, taken),
                    stream=[data],
                    metadata={
                        "original_path": str(path),
                        "file_name": path.name,
                        "file_mode": mode,
                        "variables": len(env_values(data.decode("utf-8", "replace"))),
                    },
                )
            )
        return artifacts

    def restore(
        self,
        workspace: Workspace,
        artifacts: list[ResolvedArtifact],
        options: Any,
        context: JobContext,
    ) -> RestoreReport:
        options = options or SecretsRestoreOptions()
        chosen = _choose(artifacts, options.file)
        target = Path(os.path.abspath(options.to or chosen.metadata.get("original_path", "")))
        if options.to is None and not chosen.metadata.get("original_path"):
            raise JarvisError(f"{chosen.label}: name where to write it with --to PATH")
        content = read_artifact_whole(chosen.stored, workspace.keyring(), chosen.expected)
        report = RestoreReport("secrets", options.dry_run, str(target))
        if target.is_dir():
            raise JarvisError(f"--to {target} is a folder; name the file to write")
        if not target.parent.is_dir():
            raise JarvisError(f"--to {target}: folder {target.parent} does not exist")
        exists = target.exists()
        backup_copy = target.with_name(target.name + ".bak")
        if options.dry_run:
            _describe_dry_run(report, content, target, exists, options.force)
            return report
        if exists and not options.force:
            raise JarvisError(
                f"{target} exists; add --force to replace it (the current file is kept as "
                f"{backup_copy}), or use --dry-run to see which variables differ"
            )
        for path in (target, backup_copy):  # plaintext a killed restore left beside them
            for left in remove_abandoned_temporaries_of(path):
                report.add(f"removed {left.name}, left by an interrupted restore")
        if exists:
            _write_private(backup_copy, target.read_bytes())
            report.add(f"kept the previous file as {backup_copy} (mode 0600)")
        _write_private(target, content)
        count = len(env_values(content.decode("utf-8", "replace")))
        report.add(f"wrote {target} (mode 0600): {count} variables")
        context.log(f"restored secrets {chosen.label} to {target} ({count} variables)")
        return report

    def full_restore_options(
        self, artifacts: list[Artifact], dry_run: bool
    ) -> list[SecretsRestoreOptions]:
        """Each secret file back where it was (the previous one kept as NAME.bak)."""
        return [
            SecretsRestoreOptions(force=True, dry_run=dry_run, file=a.relpath) for a in artifacts
        ]

    def check_restored(
        self,
        workspace: Workspace,
        artifacts: list[ResolvedArtifact],
        report: RestoreReport,
        context: JobContext,
    ) -> str | None:
        from engines.sources.restore_drills import compare_secrets

        written = Path(report.target)
        for artifact in artifacts:
            if Path(os.path.abspath(artifact.metadata.get("original_path", ""))) == written:
                return f"{written}: " + compare_secrets(artifact, written)
        return None

    def verify_restore(
        self, workspace: Workspace, artifact: Artifact, context: JobContext
    ) -> str | None:
        """The scheduled restore drill: restored into a scratch place and compared."""
        from engines.sources.restore_drills import drill_secrets

        return drill_secrets(workspace, resolved_from_catalog(workspace, artifact), context)


def _choose(artifacts: list[ResolvedArtifact], wanted: str | None) -> ResolvedArtifact:
    if wanted:
        for artifact in artifacts:
            names = {artifact.metadata.get("file_name"), artifact.metadata.get("original_path")}
            if wanted in names or artifact.label.endswith(wanted):
                return artifact
        raise NotFoundError(f"--file {wanted}: not in this backup; it holds {_names(artifacts)}")
    if len(artifacts) > 1:
        raise JarvisError(
            f"this backup holds {len(artifacts)} secret files ({_names(artifacts)}); "
            "name one with --file"
        )
    return artifacts[0]


def _names(artifacts: list[ResolvedArtifact]) -> str:
    return ", ".join(str(a.metadata.get("original_path") or a.label) for a in artifacts)


def _describe_dry_run(
    report: RestoreReport, content: bytes, target: Path, exists: bool, force: bool
) -> None:
    backup_text = content.decode("utf-8", "replace")
    if not exists:
        names = sorted(env_values(backup_text))
        report.add(f"would create {target} (mode 0600) with {len(names)} variables:")
        report.add("  " + (", ".join(names) or "(none)"))
        return
    current = target.read_bytes().decode("utf-8", "replace")
    if force:
        report.add(f"would replace {target}; the current file would be kept as {target.name}.bak")
    else:
        report.refuse(
            f"would refuse to replace (add --force) {target}; the current file would be kept "
            f"as {target.name}.bak",
            reason=TARGET_EXISTS,
        )
    for kind, names in compare_names(backup_text, current).items():
        report.add(f"{kind:8} {len(names):3}: {', '.join(names) or '-'}")


def _write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` (mode 0600) through a temporary; the old file stays on failure."""
    try:
        with atomic_output(path, mode=SECRET_MODE) as handle:
            handle.write(data)
        os.chmod(path, SECRET_MODE)
    except OSError as exc:
        explained = explain_os_error(OSError(exc.errno, exc.strerror), where=path)  # full: 8
        raise type(explained)(f"cannot write {explained}; nothing was changed there") from None


SOURCE = SecretsSource()
