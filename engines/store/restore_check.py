"""Before a files restore writes anything: can it finish?

Every chunk of every file to write must be in the index, and each pack holding
them present, readable, a pack under a configured key and long enough for the
blobs wanted. A file that fails any of this is named with the reason, and the
restore refuses before its first write (or, when asked, leaves those files out).
The blobs themselves are authenticated as they are read: damage inside a pack
fails its own file only, and the file already on disk stays as it was.
"""

from collections import defaultdict
from dataclasses import dataclass

from engines.errors import JarvisError, KeyNotAvailableError
from engines.store.index import Index
from engines.store.layout import pack_key
from engines.store.pack_reader import BlobReader
from engines.store.restore_plan import CREATE, OVERWRITE, Step
from engines.store.snapshots import FILE


@dataclass(frozen=True)
class Unreadable:
    step: Step
    reason: str
    damaged: bool  # data missing or damaged, rather than an OS error such as a permission


def unreadable_files(steps: list[Step], index: Index, reader: BlobReader) -> list[Unreadable]:
    """The files of the plan whose data cannot all be read, each with why."""
    problems: dict[int, tuple[str, bool]] = {}
    users: dict[str, list[Step]] = defaultdict(list)
    ends: dict[str, int] = {}
    for step in steps:
        if step.action not in (CREATE, OVERWRITE) or step.entry.type != FILE:
            continue
        packs: set[str] = set()
        for chunk_id in step.entry.chunk_ids():
            location = index.get(chunk_id)
            if location is None:
                reason = f"chunk {chunk_id.hex()[:16]} is not in the repository's index"
                problems[id(step)] = (reason, True)
                break
            packs.add(location.pack)
            ends[location.pack] = max(ends.get(location.pack, 0), location.offset + location.length)
        for pack in packs:
            users[pack].append(step)
    for pack in sorted(ends):
        try:
            reader.check_pack(pack, ends[pack])
        except KeyNotAvailableError:
            raise  # not damage: the operator adds the key and every file restores
        except JarvisError as exc:
            problem = (str(exc), True)
        except OSError as exc:
            problem = (f"cannot read pack {pack_key(pack)} ({exc.strerror or exc})", False)
        else:
            continue
        for step in users[pack]:
            problems.setdefault(id(step), problem)
    return [Unreadable(step, *problems[id(step)]) for step in steps if id(step) in problems]
