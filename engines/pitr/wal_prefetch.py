"""Prefetch for wal-fetch: PostgreSQL asks for one segment at a time, so while it replays
one, the next few are brought from the copy destination (S3) into a spool on this host.

The spool holds the sealed objects exactly as stored (under the archive's own keys in
`<BACKUP_DIR>/.wal-prefetch/`), never plaintext: wal-fetch reads a spooled segment like
any other copy, authenticating it and checking its identity before use, and removes
it once used; a damaged or forged spooled file is dropped and fetched again from the
archive. Only segments read from a copy destination are prefetched: the repository on
this host is as near as the spool.
"""

from pathlib import Path

from engines.config import Settings
from engines.destinations import LocalRepository, copy_destinations, repository_from_settings
from engines.pitr.archive_layout import candidate_keys
from engines.pitr.archive_store import find_key
from engines.pitr.wal_files import WalName, parse_name

PREFETCH_COUNT = 8
SPOOL_FOLDER = ".wal-prefetch"


def spool(settings: Settings) -> LocalRepository:
    return LocalRepository(Path(settings.repository_dir) / SPOOL_FOLDER, name="prefetch spool")


def following(name: WalName, segment_size: int, count: int = PREFETCH_COUNT) -> list[WalName]:
    """The `count` segment names after `name` on its timeline."""
    per_log = 0x100000000 // segment_size
    number = int(name.name[8:16], 16) * per_log + int(name.name[16:24], 16)
    return [
        parse_name(f"{name.timeline}{n // per_log:08X}{n % per_log:08X}")
        for n in range(number + 1, number + 1 + count)
    ]


def prefetch(settings: Settings, system_id: int, names: list[WalName]) -> int:
    """Copy the sealed objects of `names` that a copy destination holds (and neither the
    repository nor the spool does) into the spool; how many. Stops at the first name no
    destination holds (the end of the archive)."""
    repository = repository_from_settings(settings)
    spooled = spool(settings)
    copies = copy_destinations(settings)
    count = 0
    for name in names:
        keys = candidate_keys(system_id, name)
        if find_key(repository, keys) or find_key(spooled, keys):
            continue
        for copy in copies:
            key = find_key(copy, keys)
            if key is not None:
                with copy.open_read(key) as source, spooled.open_write(key) as output:
                    while block := source.read(1 << 20):
                        output.write(block)
                count += 1
                break
        else:
            return count
    return count
