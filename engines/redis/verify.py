"""Checking Redis artifacts: after each backup, by `jarvis-tui verify`, by restore drills.

`check_artifacts(workspace, artifacts, context)` reads each artifact through its
authenticated stream and compares what it holds with the sealed metadata:

- RDB: the structure is walked (keys per database and per type) while the bytes are
  fed to `redis-check-rdb` (CRC64 checksum, every value decoded by Redis itself);
- JSON: every line is parsed, decoded and compiled to its Redis commands, as a restore's
  first pass does (`json_import.compile_export`: in C for the lines in the exporter's own
  shape, 9x faster than parsing each line into records); keys per database and per
  type, and the export's own end record.

The artifacts are checked at once, each in a thread (redis-check-rdb is a process of its
own and the RDB walk runs without the GIL). The result is recorded on the artifact in
the catalog; a failure also raises an alert and `IntegrityError`.
"""

import contextlib
import io
import re
import shutil
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from engines.catalog import Artifact
from engines.errors import IntegrityError
from engines.jobs import JobContext
from engines.pipeline.artifacts import open_artifact_plain
from engines.pipeline.crypto import Keyring
from engines.redis.json_format import JsonFormatError, per_db
from engines.redis.json_import import compile_export, discard
from engines.redis.options import JSON_MODE, RDB_MODE
from engines.redis.rdb_format import RdbFormatError, read_summary
from engines.repository.resolve import ResolvedArtifact, resolved_from_catalog
from engines.workspace import Workspace

READ_SIZE = 1 << 20
# The JSON check compiles every key, expired or not: no key's expiry is before this.
NOTHING_EXPIRED_MS = -(1 << 62)
CHECKS_AT_ONCE = 2  # a backup's RDB and JSON side by side


@dataclass
class ArtifactCheck:
    label: str
    content: str
    ok: bool
    problems: list[str] = field(default_factory=list)
    facts: list[str] = field(default_factory=list)

    @property
    def detail(self) -> str:
        return "; ".join(self.problems or self.facts)


def content_of(metadata: dict[str, Any]) -> str:
    return str(metadata.get("content") or metadata.get("mode") or "")


def check_artifacts(
    workspace: Workspace, artifacts: list[Artifact | ResolvedArtifact], context: JobContext
) -> list[ArtifactCheck]:
    """Check every artifact; record each result; raise IntegrityError if any failed."""
    keyring = workspace.keyring()
    context.raise_if_cancelled()
    resolved = [_resolved(workspace, item) for item in artifacts]

    def checked(each: ResolvedArtifact) -> ArtifactCheck:
        context.log(f"checking {each.label}")
        return check_artifact(each, keyring)

    checks = []
    with ThreadPoolExecutor(CHECKS_AT_ONCE, thread_name_prefix="check") as pool:
        for each, check in zip(resolved, pool.map(checked, resolved), strict=True):
            checks.append(check)
            _record(workspace, each, check, context)
    failed = [check for check in checks if not check.ok]
    if failed:
        raise IntegrityError("; ".join(f"{c.label}: {c.detail}" for c in failed))
    return checks


def _record(
    workspace: Workspace, each: ResolvedArtifact, check: ArtifactCheck, context: JobContext
) -> None:
    if each.artifact is not None:
        workspace.catalog.record_verification(each.artifact.id, check.ok, check.detail)
    if check.ok:
        context.log(f"{each.label}: ok ({check.detail})")
    else:
        context.log(f"{each.label}: {check.detail}", "error")
        workspace.catalog.record_alert("critical", "verification", f"{each.label}: {check.detail}")


def _resolved(workspace: Workspace, item: Artifact | ResolvedArtifact) -> ResolvedArtifact:
    if isinstance(item, ResolvedArtifact):
        return item
    return resolved_from_catalog(workspace, item)


def check_artifact(resolved: ResolvedArtifact, keyring: Keyring) -> ArtifactCheck:
    content = content_of(resolved.metadata)
    check = ArtifactCheck(resolved.label, content, ok=True)
    try:
        if content == RDB_MODE:
            _check_rdb(resolved, keyring, resolved.metadata, check)
        elif content == JSON_MODE:
            _check_json(resolved, keyring, resolved.metadata, check)
        else:
            check.problems.append(f"not a Redis RDB or JSON artifact (content {content!r})")
    except (IntegrityError, RdbFormatError, JsonFormatError) as error:
        check.problems.append(str(error))
    check.ok = not check.problems
    return check


def _compare(check: ArtifactCheck, metadata: dict[str, Any], found: dict[str, Any]) -> None:
    for name in ("keys", "keys_per_db", "keys_per_type"):
        if name in metadata and name in found and metadata[name] != found[name]:
            check.problems.append(f"{name}: the artifact holds {found[name]}, the metadata "
                                  f"records {metadata[name]}")  # fmt: skip


# --- RDB ---------------------------------------------------------------------------------


class _Tee(io.RawIOBase):
    """Reads from `source` and hands a copy of every block to `sink` (until it stops)."""

    def __init__(self, source: BinaryIO, sink: BinaryIO | None):
        self._source = source
        self._sink = sink
        self.passed = 0  # bytes read from `source`

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._source.read(len(buffer))
        if data and self._sink is not None:
            try:
                self._sink.write(data)
            except (BrokenPipeError, OSError):
                self._sink = None  # the checker stopped (it found a problem): keep reading
        buffer[: len(data)] = data
        self.passed += len(data)
        return len(data)


def redis_check_rdb() -> str | None:
    return shutil.which("redis-check-rdb") or (
        "/usr/bin/redis-check-rdb" if Path("/usr/bin/redis-check-rdb").is_file() else None
    )


class _Checker:
    """`redis-check-rdb /dev/stdin`, its output collected by a thread."""

    def __init__(self, binary: str):
        self.process = subprocess.Popen(
            [binary, "/dev/stdin"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.output = b""
        self._reader = threading.Thread(target=self._collect, daemon=True)
        self._reader.start()

    def _collect(self) -> None:
        assert self.process.stdout is not None
        self.output = self.process.stdout.read()

    def finish(self) -> tuple[int, str]:
        assert self.process.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self.process.stdin.close()
        code = self.process.wait()
        self._reader.join()
        return code, self.output.decode(errors="replace")

    def kill(self) -> None:
        self.process.kill()
        self.finish()


def _check_rdb(
    resolved: ResolvedArtifact, keyring: Keyring, metadata: dict[str, Any], check: ArtifactCheck
):
    binary = redis_check_rdb()
    checker = _Checker(binary) if binary else None
    unread: RdbFormatError | None = None
    try:
        with open_artifact_plain(resolved.stored, keyring, resolved.expected) as plain:
            raw = _Tee(plain, checker.process.stdin if checker else None)
            tee = io.BufferedReader(raw, READ_SIZE)
            try:
                summary = read_summary(tee)
            except RdbFormatError as error:
                # Known at backup time (the server's counts were recorded instead): the
                # structure is left to redis-check-rdb, which must then vouch for it.
                if metadata.get("counts_from") != "server":
                    raise
                unread, summary = error, None
            while tee.read(READ_SIZE):
                pass
    except BaseException:
        if checker is not None:
            checker.kill()
        raise
    if summary is None:
        _check_rdb_unread(checker, unread, check)
        return
    # What passed beyond the end marker and the CRC64 after it (RDB 5 on), counted from
    # where the walk says the RDB ended: the C walk reads ahead, so what is left unread
    # after it tells nothing.
    checksum = 8 if summary.version >= 5 else 0
    trailing = raw.passed - (summary.end_offset or raw.passed) - checksum
    if trailing > 0:
        check.problems.append(f"{trailing} unexpected bytes after the end of the RDB")
    found = summary.counts()
    _compare(check, metadata, found)
    if metadata.get("rdb_version") not in (None, summary.version):
        check.problems.append(
            f"RDB version {summary.version}, the metadata records {metadata['rdb_version']}"
        )
    check.facts.append(
        f"RDB version {summary.version}, {summary.total_keys} keys ({per_db(found)})"
    )
    if checker is None:
        check.facts.append("redis-check-rdb not installed: checksum not checked")
        return
    code, output = checker.finish()
    _read_checker(output, code, summary.total_keys, check)


def _check_rdb_unread(
    checker: "_Checker | None", unread: RdbFormatError | None, check: ArtifactCheck
) -> None:
    check.facts.append(f"structure not read by this version ({unread}), as at backup time")
    if checker is None:
        check.problems.append(f"the RDB could not be read ({unread}) and redis-check-rdb is "
                              "not installed")  # fmt: skip
        return
    code, output = checker.finish()
    if not _read_checker(output, code, None, check):
        check.problems.append(f"neither this version nor redis-check-rdb can read the RDB "
                              f"({unread})")  # fmt: skip


def _read_checker(output: str, code: int, keys: int | None, check: ArtifactCheck) -> bool:
    """Whether redis-check-rdb checked the RDB (its verdict in `check`)."""
    if "Can't handle RDB format version" in output:
        check.facts.append("redis-check-rdb here is older than the RDB: checksum not checked")
        return False
    if code != 0 or "RDB looks OK" not in output:
        check.problems.append(f"redis-check-rdb rejected the RDB: {_checker_reason(output)}")
        return True
    read = re.search(r"(\d+) keys read", output)
    if read and keys is not None and int(read.group(1)) != keys:
        check.problems.append(f"redis-check-rdb read {read.group(1)} keys, expected {keys}")
    check.facts.append("checksum and every value checked by redis-check-rdb")
    return True


def _checker_reason(output: str) -> str:
    """The line after redis-check-rdb's "--- RDB ERROR DETECTED ---" banner, which says
    what and where ("[offset 36] RDB CRC error"), with what it was doing."""
    lines = [line.strip() for line in output.splitlines()]
    if _BANNER in lines:
        after = lines[lines.index(_BANNER) + 1 :]
        what = next((line for line in after if line.startswith("[offset")), "")
        doing = next((line for line in after if line.startswith(_DOING)), "")
        if what:
            return what + (f" (while doing: {doing[len(_DOING) :].strip()})" if doing else "")
    reason = next((line for line in lines if "error" in line.lower()), "")
    return reason or output[-300:]


_BANNER = "--- RDB ERROR DETECTED ---"
_DOING = "[additional info] While doing:"


# --- JSON --------------------------------------------------------------------------------


def _check_json(
    resolved: ResolvedArtifact, keyring: Keyring, metadata: dict[str, Any], check: ArtifactCheck
):
    with open_artifact_plain(resolved.stored, keyring, resolved.expected) as plain:
        compiled = compile_export(plain, discard, work_folder=Path(), now_ms=NOTHING_EXPIRED_MS,
                                  only_db=None, delete_first=False)  # fmt: skip
    counts = compiled.reader.counts
    found = {
        "keys": counts.total,
        "keys_per_db": counts.keys_per_db(),
        # The compile step counts every type of a run of lines, those it did not see as 0.
        "keys_per_type": {kind: n for kind, n in counts.keys_per_type().items() if n},
    }
    _compare(check, metadata, found)
    check.facts.append(f"every line parsed, {counts.total} keys ({per_db(found)})")
