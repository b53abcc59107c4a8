"""The checks of `jarvis-tui s3 audit` on one bucket: the guide's "Secure S3 Bucket" and
"Audit Backup Access" advice (IAM roles rather than access keys, versioning, MFA delete,
encryption, access logging), with public access blocked and lifecycle rules consistent
with retention. Only the bucket's settings are read, never an object.

Each check is ok, missing (with the command or console step that fixes it), denied (the
permission the check needs) or failed (the bucket's error). MFA delete is advice only:
S3 refuses lifecycle rules on a bucket with MFA delete, so the two cannot both be had.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass

from engines.config import Settings
from engines.destinations import s3_lifecycle
from engines.destinations.s3 import S3Destination
from engines.destinations.s3_client import (
    DENIED_CODES,
    MISSING_BUCKET_CODES,
    error_code,
    explain,
    failure,
)
from engines.plumbing.redaction import redact
from engines.scheduling.retention import RetentionPolicy

PASSING = ("ok", "advice")
# How boto3 found credentials that are keys kept on the host, not a role's.
STATIC_CREDENTIALS = {
    "explicit": "S3_ACCESS_KEY and S3_SECRET_KEY",
    "env": "AWS_ACCESS_KEY_ID in the environment",
    "shared-credentials-file": "keys in ~/.aws/credentials",
    "config-file": "keys in ~/.aws/config",
    "boto-config": "keys in a boto config file",
}
PUBLIC_ACCESS_FLAGS = (
    "BlockPublicAcls",
    "IgnorePublicAcls",
    "BlockPublicPolicy",
    "RestrictPublicBuckets",
)
NOT_CONFIGURED = {
    "ServerSideEncryptionConfigurationNotFoundError",
    "NoSuchPublicAccessBlockConfiguration",
    "NoSuchLifecycleConfiguration",
}


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok, missing, denied, failed; advice: missing, but not counted
    detail: str
    fix: str = ""


def audit_bucket(destination: S3Destination, settings: Settings) -> list[Check]:
    """Every check, in the order they are shown; raises S3Error when the bucket cannot be
    reached at all (missing, no credentials, no network)."""
    return _BucketAudit(destination, settings).checks()


class _BucketAudit:
    def __init__(self, destination: S3Destination, settings: Settings) -> None:
        self.destination = destination
        self.settings = settings
        self.bucket = destination.bucket
        self.client = destination.client()

    def checks(self) -> list[Check]:
        self._bucket_exists()
        versioning = self._ask(self.client.get_bucket_versioning, "s3:GetBucketVersioning")
        checks = [
            self._credentials(),
            self._versioning(versioning),
            self._mfa_delete(versioning),
            self._encryption(),
            self._public_access(),
            self._logging(),
            self._lifecycle(versioning),
        ]
        return checks

    # --- calls ---------------------------------------------------------------------------

    def _bucket_exists(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except Exception as error:
            if error_code(error) in DENIED_CODES:
                return  # HeadBucket needs s3:ListBucket; the checks may still be allowed
            raise self._failure("reaching the bucket", error) from None

    def _ask(self, call: Callable[..., dict], permission: str) -> "_Answer":
        """One read of the bucket's settings; `permission` is what it needs in IAM."""
        try:
            return _Answer(call(Bucket=self.bucket), None, permission)
        except Exception as error:
            code = error_code(error)
            if code in NOT_CONFIGURED:
                return _Answer({}, None, permission)
            if code in MISSING_BUCKET_CODES:
                raise self._failure(f"reading its settings ({permission})", error) from None
            return _Answer(None, error, permission)

    def _failure(self, doing: str, error: BaseException) -> Exception:
        return failure(self.bucket, self.destination.region, doing, error)

    def _refused(self, name: str, answer: "_Answer") -> Check:
        error = answer.error
        assert error is not None
        if error_code(error) in DENIED_CODES:
            return Check(
                name,
                "denied",
                f"could not check: access denied ({error_code(error)})",
                f"grant {answer.permission} on arn:aws:s3:::{self.bucket} to these credentials",
            )
        reason = explain(error, self.bucket, self.destination.region)
        return Check(name, "failed", f"could not check: {redact(reason)}")

    # --- the checks ----------------------------------------------------------------------

    def _credentials(self) -> Check:
        name = "credentials"
        try:
            method = _credential_method(self.settings)
        except Exception as error:  # a role endpoint that does not answer, a bad profile
            return Check(name, "failed", f"could not find credentials: {redact(str(error))}")
        if method is None:
            return Check(
                name,
                "missing",
                "no AWS credentials found",
                "give the host an IAM role (EC2 instance profile, ECS task role) allowed on "
                "the bucket",
            )
        if method in STATIC_CREDENTIALS:
            return Check(
                name,
                "missing",
                f"long-lived access keys ({STATIC_CREDENTIALS[method]}); the guide advises "
                "IAM roles, not access keys",
                "give the host an IAM role (EC2 instance profile, ECS task role) allowed on "
                "the bucket, then remove the keys",
            )
        return Check(name, "ok", f"temporary credentials from {method}")

    def _versioning(self, answer: "_Answer") -> Check:
        name = "versioning"
        if answer.error:
            return self._refused(name, answer)
        status = (answer.value or {}).get("Status")
        if status == "Enabled":
            return Check(name, "ok", "enabled")
        return Check(
            name,
            "missing",
            "suspended" if status == "Suspended" else "never enabled",
            f"aws s3api put-bucket-versioning --bucket {self.bucket} "
            "--versioning-configuration Status=Enabled",
        )

    def _mfa_delete(self, answer: "_Answer") -> Check:
        name = "mfa-delete"
        if answer.error:
            return self._refused(name, answer)
        if (answer.value or {}).get("MFADelete") == "Enabled":
            return Check(name, "ok", "enabled (S3 then allows no lifecycle rules)")
        return Check(
            name,
            "advice",
            "off; the guide advises it, but S3 refuses lifecycle rules on a bucket with "
            "MFA delete (deleted versions and unfinished uploads are then kept forever)",
            "as the root account with its MFA device: aws s3api put-bucket-versioning "
            f"--bucket {self.bucket} --versioning-configuration Status=Enabled,MFADelete=Enabled "
            "--mfa 'MFA_SERIAL CODE' (after removing the lifecycle rules)",
        )

    def _encryption(self) -> Check:
        name = "encryption"
        answer = self._ask(self.client.get_bucket_encryption, "s3:GetEncryptionConfiguration")
        if answer.error:
            return self._refused(name, answer)
        rules = (answer.value or {}).get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
        algorithms = [
            rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"]
            for rule in rules
            if "ApplyServerSideEncryptionByDefault" in rule
        ]
        if algorithms:
            return Check(name, "ok", f"default encryption {', '.join(algorithms)}")
        if self.settings.s3_sse:
            return Check(name, "ok", f"every upload asks for S3_SSE={self.settings.s3_sse}")
        configuration = {
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        }
        return Check(
            name,
            "missing",
            "no default encryption and S3_SSE is not set",
            f"aws s3api put-bucket-encryption --bucket {self.bucket} "
            f"--server-side-encryption-configuration '{json.dumps(configuration)}' "
            "(or set S3_SSE=AES256)",
        )

    def _public_access(self) -> Check:
        name = "public-access"
        answer = self._ask(self.client.get_public_access_block, "s3:GetBucketPublicAccessBlock")
        if answer.error:
            return self._refused(name, answer)
        flags = (answer.value or {}).get("PublicAccessBlockConfiguration", {})
        off = [flag for flag in PUBLIC_ACCESS_FLAGS if not flags.get(flag)]
        if not off:
            return Check(name, "ok", "blocked (all four settings on)")
        settings = ",".join(f"{flag}=true" for flag in PUBLIC_ACCESS_FLAGS)
        detail = "not blocked" if not flags else f"not blocked: {', '.join(off)} off"
        return Check(
            name,
            "missing",
            detail,
            f"aws s3api put-public-access-block --bucket {self.bucket} "
            f"--public-access-block-configuration {settings}",
        )

    def _logging(self) -> Check:
        name = "access-logging"
        answer = self._ask(self.client.get_bucket_logging, "s3:GetBucketLogging")
        if answer.error:
            return self._refused(name, answer)
        enabled = (answer.value or {}).get("LoggingEnabled")
        status = {
            "LoggingEnabled": {"TargetBucket": "LOG_BUCKET", "TargetPrefix": f"{self.bucket}/"}
        }
        fix = (
            f"aws s3api put-bucket-logging --bucket {self.bucket} --bucket-logging-status "
            f"'{json.dumps(status)}' (LOG_BUCKET: another bucket the logging service may write)"
        )
        if not enabled:
            return Check(name, "missing", "off", fix)
        target = f"s3://{enabled['TargetBucket']}/{enabled.get('TargetPrefix', '')}"
        inside = enabled["TargetBucket"] == self.bucket and enabled.get(
            "TargetPrefix", ""
        ).startswith(self.destination.prefix)
        if inside:
            return Check(name, "missing", f"logs go to {target}, among the backups", fix)
        return Check(name, "ok", f"logs go to {target}")

    def _lifecycle(self, versioning: "_Answer") -> Check:
        name = "lifecycle"
        if versioning.value and versioning.value.get("MFADelete") == "Enabled":
            return Check(name, "ok", "none possible with MFA delete on")
        lifecycle = self.client.get_bucket_lifecycle_configuration
        answer = self._ask(lifecycle, "s3:GetLifecycleConfiguration")
        if answer.error:
            return self._refused(name, answer)
        rules = (answer.value or {}).get("Rules", [])
        versioned = (versioning.value or {}).get("Status") in ("Enabled", "Suspended")
        found = s3_lifecycle.problems(rules, self.destination.prefix, versioned=versioned)
        policy = RetentionPolicy.from_settings(self.settings)
        if not found:
            return Check(name, "ok", f"consistent with retention ({policy.describe()})")
        return Check(name, "missing", "; ".join(found), "jarvis-tui s3 lifecycle --apply")


@dataclass(frozen=True)
class _Answer:
    value: dict | None
    error: BaseException | None
    permission: str


def _credential_method(settings: Settings) -> str | None:
    """How boto3 finds credentials for the bucket: `explicit` (the settings' keys), `env`,
    `iam-role`, `container-role`, ...; None when it finds none."""
    if settings.s3_access_key:
        return "explicit"
    import boto3.session

    credentials = boto3.session.Session(region_name=settings.aws_region).get_credentials()
    return None if credentials is None else credentials.method
