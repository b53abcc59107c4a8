"""Is the archived WAL from a base backup's start to the target complete? Checked from the
repository's listing before anything is laid out, so a gap is named up front instead of
ending recovery early at it.

Segment names are consecutive per timeline. For a WAL position the last segment needed
is the one holding it; for a moment or a restore point nobody knows which segment holds
it without reading them, so the chain must run unbroken to the newest archived segment.
"""

import contextlib
from dataclasses import dataclass
from datetime import datetime

from engines.destinations import Destination
from engines.errors import JarvisError
from engines.pipeline.crypto import Keyring
from engines.pitr.archive_layout import WAL_FOLDER, candidate_keys, wal_identity
from engines.pitr.archive_store import read_whole
from engines.pitr.restore_target import PitrTarget, lsn_value
from engines.pitr.timeline_history import TimelinePath
from engines.pitr.wal_files import WalNameError, parse_name, read_header, segment_number

SEGMENT_NAME_LENGTH = 24


class WalGapError(JarvisError):
    """The archive lacks a segment the restore needs."""


@dataclass(frozen=True)
class WalChain:
    first: str
    last: str
    count: int


def segment_name(timeline: int, number: int, segment_size: int) -> str:
    per_log = 0x100000000 // segment_size
    return f"{timeline:08X}{number // per_log:08X}{number % per_log:08X}"


def archived_segments(repository: Destination, system_id: int, timeline: int) -> set[str]:
    return set(archived_listing(repository, system_id, timeline))


def archived_listing(repository: Destination, system_id: int, timeline: int) -> dict[str, datetime]:
    """Each archived segment's name and when it was stored (wal-push writes it once).
    Only this timeline's names count: wal-fetch looks for no other name in its folder,
    and a stray file there is no segment."""
    prefix = f"{WAL_FOLDER}/{system_id}/{timeline:08X}/"
    names: dict[str, datetime] = {}
    for stored in repository.list(prefix):
        name = stored.key.rsplit("/", 1)[-1].split(".", 1)[0]
        if len(name) == SEGMENT_NAME_LENGTH and name.startswith(f"{timeline:08X}"):
            with contextlib.suppress(WalNameError):
                if parse_name(name).kind == "segment":
                    names[name] = stored.modified
    return names


def check_chain(
    repository: Destination,
    keyring: Keyring,
    repository_id: str,
    base: dict,
    target: PitrTarget,
    path: TimelinePath | None = None,
) -> WalChain:
    """The segments recovery reads along `path` (default: the base backup's timeline), each
    under the name of the timeline recovery reads it from, all present; WalGapError naming
    the first missing."""
    system_id, timeline = int(base["system_identifier"]), int(base["timeline"])
    path = path or TimelinePath(timeline)
    names = archived_segments(repository, system_id, timeline)
    where = f"wal/{system_id}/{timeline:08X}"
    if not names:
        raise WalGapError(
            f"the archive holds no WAL of cluster {system_id} on timeline {timeline} ({where}); "
            "nothing was changed. Check archiving (`jarvis-tui pitr check`)"
        )
    size = segment_size(repository, keyring, repository_id, system_id, min(names))
    start = lsn_value(base["start_lsn"]) // size
    stop = lsn_value(base["stop_lsn"]) // size
    archived = {line: _numbers(repository, system_id, line, size) for line in path.timelines()}
    end = lsn_value(target.value) // size if target.kind == "lsn" else _newest(archived, path)
    if target.kind == "immediate":
        end = stop
    end = max(end, stop)
    for number in range(start, end + 1):
        line = path.timeline_at(number, size)
        if number not in archived[line]:
            missing = segment_name(line, number, size)
            raise WalGapError(
                f"WAL segment {missing} is not in the archive (wal/{system_id}/{line:08X}), and "
                f"recovery from the base backup to {target.describe()} needs it; nothing was "
                "changed. Fetch it back into the archive, or restore to a point before it"
            )
    first, last = (segment_name(path.timeline_at(n, size), n, size) for n in (start, end))
    return WalChain(first, last, end - start + 1)


def _numbers(repository: Destination, system_id: int, timeline: int, size: int) -> set[int]:
    return {
        segment_number(name, size) for name in archived_segments(repository, system_id, timeline)
    }


def _newest(archived: dict[int, set[int]], path: TimelinePath) -> int:
    """The newest segment of the path's own timeline, else of the nearest ancestor."""
    for line in reversed(path.timelines()):
        if archived[line]:
            return max(archived[line])
    return 0


def segment_size(
    repository: Destination, keyring: Keyring, repository_id: str, system_id: int, name: str
) -> int:
    """From an archived segment's own header (authenticated): no setting to trust."""
    wal = parse_name(name)
    for key in candidate_keys(system_id, wal):
        if repository.stat(key) is not None:
            expected = wal_identity(repository_id, system_id, wal)
            fetched = read_whole(repository, key, keyring, expected)
            return read_header(fetched.data, key).segment_size
    raise WalGapError(f"WAL segment {name} vanished from the archive while it was read")
