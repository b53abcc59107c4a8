"""S3 lifecycle rules for a repository's prefix, derived from the retention policy, and
the check that a bucket's rules never expire what retention keeps.

No rule expires current objects, whatever the policy: S3 expires an object by its age,
while retention keeps a set for reasons age does not tell (the newest backup of each
source however old, the only verified one), and a files-store pack uploaded years ago
holds chunks today's snapshot still uses. Deleting what retention no longer keeps is
cleanup's work, which knows what is referenced. The rules only tidy what nothing reads:
multipart uploads left unfinished, versions deleted or replaced by cleanup and prune
(kept a while to undo a mistaken deletion), and the delete markers left behind.

A transition to a cheaper class is offered only to classes read like STANDARD; GLACIER
and DEEP_ARCHIVE objects must be restored before a restore can read them.

Rules are in boto3's shape (`put_bucket_lifecycle_configuration`'s `Rules`).
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from engines.errors import JarvisError
from engines.scheduling.retention import RetentionPolicy

RULE_ID_PREFIX = "jarvis-backup"
ABORT_UPLOADS_DAYS = 7
KEEP_DELETED_DAYS = 30  # the guide's monthly restore test notices a mistaken deletion
ARCHIVE_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE"})
# Classes read directly like STANDARD, with S3's least age for a transition to each.
READABLE_CLASSES = {"STANDARD_IA": 30, "ONEZONE_IA": 30, "INTELLIGENT_TIERING": 0, "GLACIER_IR": 0}
Rule = dict[str, Any]


class LifecycleError(JarvisError):
    """Options that would derive rules breaking restores or retention."""


@dataclass(frozen=True)
class LifecycleOptions:
    abort_uploads_days: int = ABORT_UPLOADS_DAYS
    keep_deleted_days: int = KEEP_DELETED_DAYS
    transition_class: str | None = None
    transition_days: int | None = None  # None: the default for the policy


@dataclass
class Merged:
    """The bucket's rules with ours put in: what changed and what stays as it was."""

    rules: list[Rule]
    added: bool
    replaced: list[Rule] = field(default_factory=list)
    kept: list[Rule] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.added or bool(self.replaced)


def normal_prefix(prefix: str) -> str:
    """S3_PREFIX as the rules scope it: `hosts/a/`, or `` for the whole bucket."""
    stripped = prefix.strip("/")
    return f"{stripped}/" if stripped else ""


def rule_id(prefix: str) -> str:
    scope = normal_prefix(prefix).rstrip("/")
    return f"{RULE_ID_PREFIX}:{scope}" if scope else f"{RULE_ID_PREFIX}:whole-bucket"


def default_transition_days(policy: RetentionPolicy, storage_class: str) -> int:
    """Past the daily tier a set is kept only as a weekly or monthly one, rarely read."""
    return max(READABLE_CLASSES[storage_class], policy.daily, 1)


def derive_rule(prefix: str, policy: RetentionPolicy, options: LifecycleOptions) -> Rule:
    """The one rule for `prefix` (see the module's docstring for what it leaves out)."""
    for name in ("abort_uploads_days", "keep_deleted_days"):
        if getattr(options, name) < 1:
            raise LifecycleError(f"{name.replace('_', ' ')}: expected 1 or more days")
    rule: Rule = {
        "ID": rule_id(prefix),
        "Status": "Enabled",
        "Filter": {"Prefix": normal_prefix(prefix)},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": options.abort_uploads_days},
        # Harmless while versioning is off; right as soon as it is turned on.
        "NoncurrentVersionExpiration": {"NoncurrentDays": options.keep_deleted_days},
        "Expiration": {"ExpiredObjectDeleteMarker": True},
    }
    if options.transition_class:
        rule["Transitions"] = [_transition(policy, options)]
    return rule


def _transition(policy: RetentionPolicy, options: LifecycleOptions) -> dict[str, Any]:
    storage_class = str(options.transition_class).upper()
    if storage_class in ARCHIVE_CLASSES:
        raise LifecycleError(
            f"transition to {storage_class}: objects there cannot be read until each is "
            "restored (hours), so restores would fail; choose one of "
            f"{', '.join(READABLE_CLASSES)} or none"
        )
    if storage_class not in READABLE_CLASSES:
        raise LifecycleError(
            f"transition to {storage_class}: not a storage class; choose one of "
            f"{', '.join(READABLE_CLASSES)}"
        )
    least = READABLE_CLASSES[storage_class]
    days = options.transition_days
    if days is None:
        days = default_transition_days(policy, storage_class)
    if days < least or days < 0:
        raise LifecycleError(
            f"transition to {storage_class} after {days} days: S3 allows it from {least} days"
        )
    return {"Days": days, "StorageClass": storage_class}


def describe_rule(rule: Rule, policy: RetentionPolicy) -> list[str]:
    """The rule in the operator's words."""
    lines = [
        "abort multipart uploads left unfinished after "
        f"{rule['AbortIncompleteMultipartUpload']['DaysAfterInitiation']} days",
        "remove versions deleted or replaced (by cleanup or prune) "
        f"{rule['NoncurrentVersionExpiration']['NoncurrentDays']} days later, when "
        "versioning is on; until then they can be brought back",
        "remove delete markers once no version is left behind them",
        f"expire no current object: retention ({policy.describe()}) keeps sets for reasons "
        "age does not tell (the newest backup of each source, packs newer snapshots use); "
        "cleanup deletes what it no longer keeps",
    ]
    for transition in rule.get("Transitions", ()):
        lines.append(
            f"move objects to {transition['StorageClass']} after {transition['Days']} days "
            "(still read directly by restores)"
        )
    if not rule.get("Transitions"):
        lines.append("no transition: GLACIER and DEEP_ARCHIVE objects cannot be read by restores")
    return lines


# --- the bucket's rules -------------------------------------------------------------------


def rule_prefix(rule: Rule) -> str:
    """The key prefix a rule filters on, in any of S3's three spellings."""
    found = rule.get("Filter", {})
    if "Prefix" in rule:
        return rule["Prefix"] or ""
    return found.get("Prefix") or found.get("And", {}).get("Prefix") or ""


def _narrowed(rule: Rule) -> bool:
    """A rule filtered by tags or size acts on some objects of its prefix only."""
    found = rule.get("Filter", {})
    conditions = {"Tag", "ObjectSizeGreaterThan", "ObjectSizeLessThan"}
    return bool((conditions | {"And"}) & set(found))


def _tagged(rule: Rule) -> bool:
    found = rule.get("Filter", {})
    return "Tag" in found or "Tags" in found.get("And", {})


def touches(rule: Rule, prefix: str) -> bool:
    """The rule acts on some objects under `prefix` (we put no tags on objects)."""
    theirs, ours = rule_prefix(rule), normal_prefix(prefix)
    enabled = rule.get("Status") == "Enabled"
    return enabled and not _tagged(rule) and (ours.startswith(theirs) or theirs.startswith(ours))


def covers(rule: Rule, prefix: str) -> bool:
    """The rule acts on every object under `prefix`."""
    theirs, ours = rule_prefix(rule), normal_prefix(prefix)
    return rule.get("Status") == "Enabled" and not _narrowed(rule) and ours.startswith(theirs)


def _is_ours(rule: Rule, prefix: str) -> bool:
    scoped_exactly = rule_prefix(rule) == normal_prefix(prefix) and not _narrowed(rule)
    return rule.get("ID") == rule_id(prefix) or scoped_exactly


def merge(existing: Iterable[Rule], ours: Rule, prefix: str) -> Merged:
    """`ours` in place of the rules scoped to exactly this prefix; every other rule kept."""
    replaced, kept = [], []
    for rule in existing:
        (replaced if _is_ours(rule, prefix) else kept).append(rule)
    if replaced == [ours]:
        return Merged([*kept, ours], added=False, kept=kept)
    return Merged([*kept, ours], added=not replaced, replaced=replaced, kept=kept)


def problems(rules: Sequence[Rule], prefix: str, *, versioned: bool) -> list[str]:
    """What in `rules` breaks retention or restores under `prefix`, or is missing there."""
    found = []
    for rule in rules:
        if not touches(rule, prefix):
            continue
        name = f"rule {rule.get('ID') or '(no id)'} (prefix {rule_prefix(rule)!r})"
        expiration = rule.get("Expiration", {})
        if "Days" in expiration or "Date" in expiration:
            when = (
                f"after {expiration['Days']} days"
                if "Days" in expiration
                else f"on {expiration['Date']}"
            )
            found.append(
                f"{name} expires current objects {when}, which retention may still keep "
                "(the newest backup of a source, packs newer snapshots use)"
            )
        archived = sorted(
            {t.get("StorageClass") for t in rule.get("Transitions", ())} & ARCHIVE_CLASSES
        )
        if archived:
            found.append(
                f"{name} moves objects to {', '.join(archived)}, which restores cannot read "
                "without a restore-object first"
            )
    covering = [rule for rule in rules if covers(rule, prefix)]
    if not any("AbortIncompleteMultipartUpload" in rule for rule in covering):
        found.append("no rule aborts unfinished multipart uploads (they are billed forever)")
    if versioned and not any("NoncurrentVersionExpiration" in rule for rule in covering):
        found.append("no rule removes deleted or replaced versions (kept and billed forever)")
    return found
