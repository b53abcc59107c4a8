"""GFS retention with restic's `forget` semantics, and the rules that override it.

Per kind of set (full, postgres, ...), newest first: the newest set of each of
the last BACKUP_RETENTION_DAILY days that have a backup is kept, likewise the
last BACKUP_RETENTION_WEEKLY ISO weeks and BACKUP_RETENTION_MONTHLY months.
Rules are ORed; a period without a backup does not use up a slot; buckets use
the time the set was started, in the schedule's time zone. Only complete and
partial sets fill buckets.

PostgreSQL base backups (mode `base`) count apart from the dumps: a set of them is
bucketed in its own group and counts as a backup of "postgres base backup", so a base
backup taken after the nightly dump never takes that dump's slot or its "newest".

Whatever GFS says, a set is kept when it holds the newest good backup of a
source, when it holds the only verified backup of a source, while a job may be
reading it, and while it is still being written. WAL under `wal/` is never
deleted here: it belongs to point-in-time recovery, which prunes it against the
oldest kept base backup.
"""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo

from engines.catalog import Artifact, BackupSet
from engines.catalog.rows import BASE_MODE
from engines.config import Settings

GOOD_STATUSES = ("complete", "partial")
RULES = ("daily", "weekly", "monthly")


@dataclass(frozen=True)
class RetentionPolicy:
    daily: int
    weekly: int
    monthly: int

    @classmethod
    def from_settings(cls, settings: Settings) -> "RetentionPolicy":
        return cls(
            settings.backup_retention_daily,
            settings.backup_retention_weekly,
            settings.backup_retention_monthly,
        )

    def describe(self) -> str:
        return f"daily {self.daily}, weekly {self.weekly}, monthly {self.monthly}"


@dataclass(frozen=True)
class Candidate:
    """What retention needs to know of one backup set."""

    set_id: str
    kind: str
    status: str
    created_at: datetime
    good_sources: frozenset[str] = frozenset()  # sources with a complete artifact here
    verified_sources: frozenset[str] = frozenset()  # ... whose artifact verified ok
    base: bool = False  # a set of PostgreSQL base backups: bucketed apart from the dumps

    @classmethod
    def of(cls, backup_set: BackupSet, artifacts: Iterable[Artifact]) -> "Candidate":
        complete = [a for a in artifacts if a.status == "complete"]
        sources = {a.counted_as for a in complete}
        failed = {a.counted_as for a in complete if a.verify_state == "failed"}
        verified = {a.counted_as for a in complete if a.verify_state == "ok"} - failed
        return cls(
            backup_set.id,
            backup_set.kind,
            backup_set.status,
            backup_set.created_at,
            frozenset(sources),
            frozenset(verified),
            base=bool(complete) and all(a.mode == BASE_MODE for a in complete),
        )


@dataclass
class Decision:
    candidate: Candidate
    reasons: list[str] = field(default_factory=list)

    @property
    def keep(self) -> bool:
        return bool(self.reasons)

    @property
    def text(self) -> str:
        if self.keep:
            return "kept because: " + ", ".join(self.reasons)
        if self.candidate.status == "failed":
            return "deleted (failed backup)"
        return "deleted"


def bucket_keys(moment: datetime, zone: tzinfo) -> dict[str, tuple[int, ...]]:
    local = moment.astimezone(zone)
    iso = local.isocalendar()
    return {
        "daily": (local.year, local.month, local.day),
        "weekly": (iso.year, iso.week),
        "monthly": (local.year, local.month),
    }


def newest_first(candidates: Iterable[Candidate]) -> list[Candidate]:
    return sorted(candidates, key=lambda c: (c.created_at, c.set_id), reverse=True)


def gfs_reasons(
    candidates: Sequence[Candidate], policy: RetentionPolicy, zone: tzinfo
) -> dict[str, list[str]]:
    """restic's algorithm: walking newest first, a set is the keeper of each rule's bucket
    it is the first to enter, while that rule has slots left."""
    reasons: dict[str, list[str]] = {}
    by_kind: dict[tuple[str, bool], list[Candidate]] = {}
    for candidate in candidates:
        if candidate.status in GOOD_STATUSES:
            by_kind.setdefault((candidate.kind, candidate.base), []).append(candidate)
    for group in by_kind.values():
        slots = {"daily": policy.daily, "weekly": policy.weekly, "monthly": policy.monthly}
        last: dict[str, tuple[int, ...] | None] = dict.fromkeys(RULES)
        for candidate in newest_first(group):
            keys = bucket_keys(candidate.created_at, zone)
            for rule in RULES:
                if slots[rule] > 0 and keys[rule] != last[rule]:
                    reasons.setdefault(candidate.set_id, []).append(rule)
                    slots[rule] -= 1
                    last[rule] = keys[rule]
    return reasons


def _newest_with(
    candidates: Sequence[Candidate], has: Callable[[Candidate], bool]
) -> Candidate | None:
    """The newest good set satisfying `has`, else the newest set of any status that does."""
    matching = [c for c in newest_first(candidates) if has(c) and c.status != "running"]
    good = [c for c in matching if c.status in GOOD_STATUSES]
    return (good or matching or [None])[0]


def plan_retention(
    candidates: Sequence[Candidate],
    policy: RetentionPolicy,
    zone: tzinfo,
    *,
    in_use: dict[str, str] | None = None,
    everything_in_use: str | None = None,
) -> list[Decision]:
    """One decision per set, newest first.

    `in_use` maps set ids to why a job may be reading them; `everything_in_use`
    explains why no set may be deleted at all now (a reader we cannot pin down).
    """
    in_use = in_use or {}
    decisions = {c.set_id: Decision(c) for c in candidates}
    for set_id, rules in gfs_reasons(candidates, policy, zone).items():
        decisions[set_id].reasons.extend(rules)

    sources = sorted({s for c in candidates for s in c.good_sources})
    for source in sources:
        newest = _newest_with(candidates, lambda c, s=source: s in c.good_sources)
        if newest is not None:
            decisions[newest.set_id].reasons.append(f"newest {source}")
    for source in sorted({s for c in candidates for s in c.verified_sources}):
        kept_verified = any(
            d.keep and source in d.candidate.verified_sources for d in decisions.values()
        )
        if not kept_verified:
            only = _newest_with(candidates, lambda c, s=source: s in c.verified_sources)
            if only is not None:
                decisions[only.set_id].reasons.append(f"only verified {source}")

    for decision in decisions.values():
        candidate = decision.candidate
        if candidate.status == "running":
            decision.reasons.append("still being written")
        if candidate.set_id in in_use:
            decision.reasons.append(in_use[candidate.set_id])
        if everything_in_use and not decision.keep:
            decision.reasons.append(everything_in_use)
    return [decisions[c.set_id] for c in newest_first(candidates)]
