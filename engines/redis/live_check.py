"""After `restore full`: the keys the Redis server holds now, compared with the backup."""

from typing import Any

from engines.config import Settings
from engines.errors import IntegrityError
from engines.redis.connection import connected, target_from_settings
from engines.redis.inspect import server_facts


def compare_restored_keys(
    settings: Settings, metadata: dict[str, Any], written: dict[str, int], expired: int
) -> str:
    """Keys per database on the server against what the restore wrote (`written`, per
    database), and that plus the keys already expired (`expired`) against the backup."""
    target = target_from_settings(settings)
    with connected(target) as client:
        facts = server_facts(client)
    problems, notes = [], []
    for db, count in sorted(written.items()):
        held = facts.keyspace.get(int(db), 0)
        volatile = facts.expires.get(int(db), 0)
        if held < count and volatile:
            # Keys with a TTL go on expiring after the restore wrote them: said, not failed.
            notes.append(f"db {db}: {count - held} fewer than restored (it holds keys with a TTL)")
        elif held != count:
            problems.append(f"db {db}: {held} keys on the server, {count} restored")
    recorded = metadata.get("keys")
    restored = sum(written.values())
    if recorded is not None and restored + expired != recorded:
        problems.append(
            f"{restored} keys restored and {expired} expired, the backup holds {recorded}"
        )
    if problems:
        raise IntegrityError(f"{target.describe()} differs from the backup: " + "; ".join(problems))
    late = f" ({expired} had expired since the backup)" if expired else ""
    said = "; ".join(notes)
    return f"{target.describe()}: {restored} keys in {len(written)} database(s) match{late}" + (
        f"; {said}" if said else ""
    )
