"""`jarvis-tui s3 lifecycle [--apply]`: the lifecycle rule for S3_PREFIX that retention
allows (engines/destinations/s3_lifecycle.py), merged into the bucket's own rules.

Without --apply (`request.dry_run`) it only reads. With it, the bucket's configuration
is written once with every rule of other prefixes kept, and read back to confirm. No job:
it changes the bucket's settings, never an object.
"""

from dataclasses import dataclass, field
from typing import Any

from engines.actions.s3_audit import s3_destination
from engines.actions.verbs import Request
from engines.destinations import s3_lifecycle
from engines.destinations.read_only import refusal
from engines.destinations.s3_client import DENIED_CODES, S3Error, error_code, explain, failure
from engines.destinations.s3_lifecycle import LifecycleOptions, Merged, Rule
from engines.jobs import JobContext
from engines.scheduling.retention import RetentionPolicy
from engines.workspace import Workspace

MINIMUM_SIZE = "TransitionDefaultMinimumObjectSize"


@dataclass
class LifecycleReport:
    bucket: str
    prefix: str
    policy: RetentionPolicy
    rule: Rule
    described: list[str]
    merged: Merged | None  # None: the bucket's rules could not be read
    applied: bool = False
    unreadable: str | None = None  # why the bucket's rules could not be read
    warnings: list[str] = field(default_factory=list)

    @property
    def configuration(self) -> dict[str, Any]:
        rules = self.merged.rules if self.merged else [self.rule]
        return {"Rules": rules}

    def as_json(self) -> dict[str, Any]:
        merged = self.merged
        return {
            "bucket": self.bucket,
            "prefix": self.prefix,
            "retention": self.policy.describe(),
            "rule": self.rule,
            "lifecycle_configuration": self.configuration,
            "applied": self.applied,
            "changed": bool(merged and merged.changed),
            "replaced": merged.replaced if merged else [],
            "kept": [rule.get("ID") for rule in merged.kept] if merged else [],
            "unreadable": self.unreadable,
            "warnings": self.warnings,
        }


def run(workspace: Workspace, request: Request, context: JobContext | None) -> LifecycleReport:
    settings = workspace.settings
    if settings.browsing and not request.dry_run:  # the bucket's rules: a write like any
        where = f"s3://{settings.s3_bucket}/{settings.browse_prefix}"
        raise refusal("`s3 lifecycle --apply`", where)
    destination = s3_destination(settings)
    bucket, region = destination.bucket, destination.region
    policy = RetentionPolicy.from_settings(settings)
    options = request.options or LifecycleOptions()
    rule = s3_lifecycle.derive_rule(destination.prefix, policy, options)
    report = LifecycleReport(
        bucket,
        destination.prefix,
        policy,
        rule,
        s3_lifecycle.describe_rule(rule, policy),
        merged=None,
    )
    client = destination.client()
    try:
        current = client.get_bucket_lifecycle_configuration(Bucket=bucket)
    except Exception as error:
        if error_code(error) == "NoSuchLifecycleConfiguration":
            current = {"Rules": []}
        elif error_code(error) in DENIED_CODES and request.dry_run:
            report.unreadable = (
                f"access denied reading the bucket's rules; grant "
                f"s3:GetLifecycleConfiguration on arn:aws:s3:::{bucket}"
            )
            return report
        elif error_code(error) in DENIED_CODES:
            raise S3Error(
                f"S3 bucket {bucket}: access denied reading its lifecycle rules, which --apply "
                "must keep; grant s3:GetLifecycleConfiguration (and s3:PutLifecycleConfiguration) "
                f"on arn:aws:s3:::{bucket}; nothing was changed"
            ) from None
        else:
            raise failure(bucket, region, "reading the lifecycle rules", error) from None
    report.merged = s3_lifecycle.merge(current.get("Rules", []), rule, destination.prefix)
    report.warnings = s3_lifecycle.problems(report.merged.rules, destination.prefix, versioned=True)
    if request.dry_run or not report.merged.changed:
        return report
    configuration: dict[str, Any] = {"Bucket": bucket, "LifecycleConfiguration": {}}
    configuration["LifecycleConfiguration"]["Rules"] = report.merged.rules
    if MINIMUM_SIZE in current:
        configuration[MINIMUM_SIZE] = current[MINIMUM_SIZE]
    try:
        client.put_bucket_lifecycle_configuration(**configuration)
        confirmed = client.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", [])
    except Exception as error:
        if error_code(error) in DENIED_CODES:
            raise S3Error(
                f"S3 bucket {bucket}: access denied writing its lifecycle rules; grant "
                f"s3:PutLifecycleConfiguration on arn:aws:s3:::{bucket}; nothing was changed"
            ) from None
        reason = explain(error, bucket, region)
        raise S3Error(f"S3 bucket {bucket}: setting the lifecycle rules failed: {reason}") from None
    if rule not in confirmed:
        raise S3Error(
            f"S3 bucket {bucket}: the lifecycle rule {rule['ID']} is not in the bucket's rules "
            "read back after setting them (another writer at the same time?); run "
            "`jarvis-tui s3 lifecycle --apply` again"
        )
    report.applied = True
    return report
