"""`jarvis-tui s3 audit` against moto's S3 over HTTP on loopback: a bare bucket fails the
guide's checks by name with what to do, a bucket set up as the guide advises passes, and
a check the credentials may not make names the permission it needs."""

import json

import pytest

from jarvis_tui.exit_codes import ExitCode
from tests.support.aws_role import RoleCredentialsServer
from tests.support.files_env import FilesEnv, make_files_env
from tests.support.s3_denying import DenyingS3Proxy

BUCKET = "jarvis-audit"
LOG_BUCKET = "jarvis-audit-logs"
PREFIX = "hosts/jarvis-1"
SECRET = "audit-secret-key-4242"
CHECKS = (
    "credentials",
    "versioning",
    "mfa-delete",
    "encryption",
    "public-access",
    "access-logging",
    "lifecycle",
)
ALL_BLOCKED = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}


@pytest.fixture
def env(tmp_path, isolated_env, s3_server, monkeypatch) -> FilesEnv:
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance role to look for
    env = make_files_env(tmp_path / "files")
    env.set(
        S3_ENABLED="true",
        S3_BUCKET=BUCKET,
        S3_ENDPOINT_URL=s3_server.endpoint_url,
        S3_ACCESS_KEY=s3_server.access_key,
        S3_SECRET_KEY=SECRET,
        AWS_REGION=s3_server.region,
        S3_PREFIX=PREFIX,
    )
    s3_server.create_bucket(BUCKET)
    return env


def audit(env: FilesEnv, capsys) -> tuple[int, dict[str, dict], str]:
    capsys.readouterr()
    code = env.cli("s3", "audit", "--json")
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert [check["name"] for check in report["checks"]] == list(CHECKS)
    return code, {check["name"]: check for check in report["checks"]}, captured.err


def use_role_credentials(env: FilesEnv, s3_server, monkeypatch) -> RoleCredentialsServer:
    """No keys in the settings: the host's role (here a container role on loopback)."""
    role = RoleCredentialsServer(s3_server.access_key, SECRET).start()
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", role.url)
    del env.settings["S3_ACCESS_KEY"], env.settings["S3_SECRET_KEY"]
    env.set()
    return role


def configure_as_advised(client) -> None:
    client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    encryption = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}
    client.put_bucket_encryption(Bucket=BUCKET, ServerSideEncryptionConfiguration=encryption)
    client.put_public_access_block(Bucket=BUCKET, PublicAccessBlockConfiguration=ALL_BLOCKED)
    client.create_bucket(Bucket=LOG_BUCKET)
    client.put_bucket_acl(Bucket=LOG_BUCKET, ACL="log-delivery-write")
    logging = {"LoggingEnabled": {"TargetBucket": LOG_BUCKET, "TargetPrefix": f"{BUCKET}/"}}
    client.put_bucket_logging(Bucket=BUCKET, BucketLoggingStatus=logging)


def test_a_bare_bucket_fails_each_check_of_the_guide_with_what_to_do(env, capsys):
    code, checks, _ = audit(env, capsys)
    assert code == ExitCode.FAILED
    assert {name: check["status"] for name, check in checks.items()} == {
        "credentials": "missing",
        "versioning": "missing",
        "mfa-delete": "advice",
        "encryption": "missing",
        "public-access": "missing",
        "access-logging": "missing",
        "lifecycle": "missing",
    }
    assert "S3_ACCESS_KEY and S3_SECRET_KEY" in checks["credentials"]["detail"]
    assert "IAM role" in checks["credentials"]["fix"]
    assert checks["versioning"]["fix"] == (
        f"aws s3api put-bucket-versioning --bucket {BUCKET} "
        "--versioning-configuration Status=Enabled"
    )
    assert f"put-bucket-encryption --bucket {BUCKET}" in checks["encryption"]["fix"]
    assert "S3_SSE=AES256" in checks["encryption"]["fix"]
    assert checks["public-access"]["fix"] == (
        f"aws s3api put-public-access-block --bucket {BUCKET} "
        "--public-access-block-configuration BlockPublicAcls=true,IgnorePublicAcls=true,"
        "BlockPublicPolicy=true,RestrictPublicBuckets=true"
    )
    assert f"put-bucket-logging --bucket {BUCKET}" in checks["access-logging"]["fix"]
    assert "multipart" in checks["lifecycle"]["detail"]
    assert checks["lifecycle"]["fix"] == "jarvis-tui s3 lifecycle --apply"
    assert "lifecycle" in checks["mfa-delete"]["detail"]  # why it is advice only

    # The same as text: one line per check, the fix on it, and the exit code.
    assert env.cli("s3", "audit") == ExitCode.FAILED
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == f"s3 audit: bucket {BUCKET}, prefix {PREFIX}/"
    for name, line in zip(CHECKS, lines[1:-1], strict=True):
        assert line.startswith(f"{checks[name]['status']:<8} {name}: "), line
    versioning_line = lines[1 + CHECKS.index("versioning")]
    assert versioning_line.endswith(f"; to fix: {checks['versioning']['fix']}")
    assert lines[-1] == "s3 audit: 6 of 7 not ok"
    assert SECRET not in out


def test_a_bucket_set_up_as_the_guide_advises_passes(env, s3_server, monkeypatch, capsys):
    role = use_role_credentials(env, s3_server, monkeypatch)
    try:
        configure_as_advised(s3_server.client())
        assert env.cli("s3", "lifecycle", "--apply") == ExitCode.OK
        code, checks, err = audit(env, capsys)
    finally:
        role.close()
    assert code == ExitCode.OK, checks
    assert all(checks[name]["status"] == "ok" for name in CHECKS if name != "mfa-delete")
    assert checks["mfa-delete"]["status"] == "advice"  # moto keeps no MFA delete
    assert checks["credentials"]["detail"] == "temporary credentials from container-role"
    assert checks["encryption"]["detail"] == "default encryption AES256"
    assert checks["access-logging"]["detail"] == f"logs go to s3://{LOG_BUCKET}/{BUCKET}/"
    assert "daily 7, weekly 4, monthly 12" in checks["lifecycle"]["detail"]
    assert err == ""


def test_each_shortfall_is_named(env, s3_server, capsys):
    """Half-done settings: what exactly is off, and S3_SSE standing in for a default."""
    client = s3_server.client()
    client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Suspended"})
    half = {**ALL_BLOCKED, "IgnorePublicAcls": False, "RestrictPublicBuckets": False}
    client.put_public_access_block(Bucket=BUCKET, PublicAccessBlockConfiguration=half)
    client.put_bucket_acl(Bucket=BUCKET, ACL="log-delivery-write")
    logging = {"LoggingEnabled": {"TargetBucket": BUCKET, "TargetPrefix": f"{PREFIX}/logs/"}}
    client.put_bucket_logging(Bucket=BUCKET, BucketLoggingStatus=logging)
    rules = [
        {
            "ID": "expire-everything",
            "Status": "Enabled",
            "Filter": {"Prefix": ""},
            "Expiration": {"Days": 400},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 3},
        },
        {
            "ID": "to-glacier",
            "Status": "Enabled",
            "Filter": {"Prefix": "hosts/"},
            "Transitions": [{"Days": 90, "StorageClass": "GLACIER"}],
        },
        {  # another host's prefix, and objects we never tag: neither touches ours
            "ID": "other-host",
            "Status": "Enabled",
            "Filter": {"Prefix": f"{PREFIX}0/"},
            "Expiration": {"Days": 1},
        },
        {
            "ID": "tagged-only",
            "Status": "Enabled",
            "Filter": {"Tag": {"Key": "scratch", "Value": "yes"}},
            "Expiration": {"Days": 1},
        },
    ]
    client.put_bucket_lifecycle_configuration(
        Bucket=BUCKET, LifecycleConfiguration={"Rules": rules}
    )
    env.set(S3_SSE="AES256")

    code, checks, _ = audit(env, capsys)
    assert code == ExitCode.FAILED
    assert checks["versioning"]["detail"] == "suspended"
    assert checks["encryption"] == {
        "name": "encryption",
        "status": "ok",
        "detail": "every upload asks for S3_SSE=AES256",
        "fix": "",
    }
    assert checks["public-access"]["detail"] == (
        "not blocked: IgnorePublicAcls, RestrictPublicBuckets off"
    )
    assert checks["access-logging"]["status"] == "missing"
    assert "among the backups" in checks["access-logging"]["detail"]
    lifecycle = checks["lifecycle"]["detail"]
    assert "rule expire-everything (prefix '') expires current objects after 400 days" in lifecycle
    assert "rule to-glacier (prefix 'hosts/') moves objects to GLACIER" in lifecycle
    assert "other-host" not in lifecycle and "tagged-only" not in lifecycle
    # Versioning was on once (suspended): versions exist and nothing removes them.
    assert "no rule removes deleted or replaced versions" in lifecycle
    assert "multipart" not in lifecycle  # the bucket-wide rule aborts them


def test_a_check_the_credentials_may_not_make_names_the_permission(env, s3_server, capsys):
    denied = {("GET", "logging"), ("GET", "lifecycle"), ("GET", "encryption")}
    with DenyingS3Proxy(s3_server.endpoint_url, denied).start() as proxy:
        env.set(S3_ENDPOINT_URL=proxy.endpoint_url)
        code, checks, err = audit(env, capsys)
        assert sorted(set(proxy.refused)) == sorted(denied)
    assert code == ExitCode.FAILED
    for name, permission in (
        ("access-logging", "s3:GetBucketLogging"),
        ("lifecycle", "s3:GetLifecycleConfiguration"),
        ("encryption", "s3:GetEncryptionConfiguration"),
    ):
        assert checks[name]["status"] == "denied"
        assert checks[name]["detail"] == "could not check: access denied (AccessDenied)"
        assert checks[name]["fix"] == (
            f"grant {permission} on arn:aws:s3:::{BUCKET} to these credentials"
        )
    assert checks["versioning"]["status"] == "missing"  # the others are still checked
    assert err == ""


def test_without_s3_or_its_bucket_one_line_says_what_to_do(env, s3_server, capsys):
    env.set(S3_BUCKET="jarvis-no-such-bucket")
    assert env.cli("s3", "audit") == ExitCode.FAILED
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert "jarvis-no-such-bucket" in line and "create it, or correct S3_BUCKET" in line
    assert SECRET not in line

    del env.settings["S3_ACCESS_KEY"], env.settings["S3_SECRET_KEY"]
    env.set(S3_BUCKET=BUCKET)  # no keys, no role, no profile: boto3 finds nothing
    assert env.cli("s3", "audit") == ExitCode.FAILED
    (line,) = capsys.readouterr().err.splitlines()
    assert "no AWS credentials found" in line

    env.set(S3_ENABLED="false")
    assert env.cli("s3", "audit") == ExitCode.INVALID_SETTINGS
    err = capsys.readouterr().err
    assert "S3_ENABLED / S3_BUCKET: no bucket configured" in err
    assert "Traceback" not in err
