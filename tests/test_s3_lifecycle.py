"""`jarvis-tui s3 lifecycle [--apply]`: the rule derived from retention (pure tests with
fixed policies), then printed and set over HTTP on moto's S3, merged with the rules of
other prefixes, and refused credentials said as the permission they lack."""

import json

import pytest

from engines.destinations.s3_lifecycle import (
    LifecycleError,
    LifecycleOptions,
    derive_rule,
    describe_rule,
    merge,
    problems,
    rule_id,
)
from engines.scheduling.retention import RetentionPolicy
from jarvis_tui.exit_codes import ExitCode
from tests.support.files_env import FilesEnv, make_files_env
from tests.support.s3_denying import DenyingS3Proxy

BUCKET = "jarvis-lifecycle"
PREFIX = "hosts/jarvis-1"
POLICIES = (
    RetentionPolicy(7, 4, 12),  # the guide's
    RetentionPolicy(0, 0, 0),
    RetentionPolicy(1, 0, 0),
    RetentionPolicy(30, 8, 24),
    RetentionPolicy(3650, 520, 1200),  # the largest the settings allow
)
OTHER_HOST = {
    "ID": "other-host",
    "Status": "Enabled",
    "Filter": {"Prefix": "hosts/jarvis-2/"},
    "Expiration": {"Days": 30},
}
STALE_OURS = {
    "ID": "old-backups",
    "Status": "Enabled",
    "Filter": {"Prefix": f"{PREFIX}/"},
    "Expiration": {"Days": 90},
}


# --- the derivation, pure -------------------------------------------------------------------


@pytest.mark.parametrize("policy", POLICIES, ids=RetentionPolicy.describe)
@pytest.mark.parametrize("prefix", ["", PREFIX, f"/{PREFIX}/"])
def test_no_policy_yields_a_rule_that_expires_or_archives_a_current_object(policy, prefix):
    rule = derive_rule(prefix, policy, LifecycleOptions())
    scope = f"{PREFIX}/" if prefix else ""
    assert rule == {
        "ID": rule_id(prefix),
        "Status": "Enabled",
        "Filter": {"Prefix": scope},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
        "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
        "Expiration": {"ExpiredObjectDeleteMarker": True},
    }
    assert problems([rule], prefix, versioned=True) == []
    described = describe_rule(rule, policy)
    assert any(f"retention ({policy.describe()})" in line for line in described)
    assert any("no transition" in line for line in described)


def test_rule_ids_tell_prefixes_apart():
    assert rule_id(PREFIX) == rule_id(f"/{PREFIX}/") == "jarvis-backup:hosts/jarvis-1"
    assert rule_id("") == "jarvis-backup:whole-bucket"
    assert rule_id("hosts/jarvis-10") != rule_id(PREFIX)


@pytest.mark.parametrize(
    ("policy", "storage_class", "days"),
    [
        (RetentionPolicy(7, 4, 12), "STANDARD_IA", 30),  # S3's least age for IA
        (RetentionPolicy(60, 4, 12), "STANDARD_IA", 60),  # past the daily tier
        (RetentionPolicy(7, 4, 12), "INTELLIGENT_TIERING", 7),
        (RetentionPolicy(0, 4, 12), "GLACIER_IR", 1),
        (RetentionPolicy(45, 0, 0), "onezone_ia", 45),
    ],
)
def test_a_transition_asked_for_starts_past_the_daily_tier(policy, storage_class, days):
    options = LifecycleOptions(transition_class=storage_class)
    rule = derive_rule(PREFIX, policy, options)
    assert rule["Transitions"] == [{"Days": days, "StorageClass": storage_class.upper()}]
    assert problems([rule], PREFIX, versioned=True) == []
    explicit = derive_rule(
        PREFIX, policy, LifecycleOptions(transition_class=storage_class, transition_days=400)
    )
    assert explicit["Transitions"][0]["Days"] == 400


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (LifecycleOptions(transition_class="GLACIER"), "cannot be read until each is restored"),
        (LifecycleOptions(transition_class="DEEP_ARCHIVE"), "restores would fail"),
        (LifecycleOptions(transition_class="STANDARD_IA", transition_days=10), "from 30 days"),
        (LifecycleOptions(transition_class="CHEAPEST"), "not a storage class"),
        (LifecycleOptions(abort_uploads_days=0), "abort uploads days: expected 1 or more"),
        (LifecycleOptions(keep_deleted_days=-3), "keep deleted days: expected 1 or more"),
    ],
)
def test_rules_that_would_break_restores_are_refused(options, words):
    with pytest.raises(LifecycleError, match=words):
        derive_rule(PREFIX, RetentionPolicy(7, 4, 12), options)


def test_merge_replaces_only_the_rules_of_this_prefix():
    ours = derive_rule(PREFIX, RetentionPolicy(7, 4, 12), LifecycleOptions())
    wider = {"ID": "tidy", "Status": "Enabled", "Filter": {"Prefix": "hosts/"}}
    merged = merge([OTHER_HOST, STALE_OURS, wider], ours, PREFIX)
    assert merged.rules == [OTHER_HOST, wider, ours]
    assert (merged.added, merged.replaced, merged.kept) == (
        False,
        [STALE_OURS],
        [OTHER_HOST, wider],
    )
    assert merged.changed

    again = merge(merged.rules, ours, PREFIX)
    assert not again.changed and again.rules == merged.rules
    fresh = merge([OTHER_HOST], ours, PREFIX)
    assert fresh.added and fresh.rules == [OTHER_HOST, ours]


def test_problems_name_the_rules_that_break_retention_or_restores():
    ours = derive_rule(PREFIX, RetentionPolicy(7, 4, 12), LifecycleOptions())
    dated = {
        "ID": "by-date",
        "Status": "Enabled",
        "Prefix": "hosts",  # S3's older spelling, no Filter
        "Expiration": {"Date": "2030-01-01T00:00:00Z"},
    }
    archived = {
        "ID": "archive",
        "Status": "Enabled",
        "Filter": {"And": {"Prefix": f"{PREFIX}/files/", "ObjectSizeGreaterThan": 1024}},
        "Transitions": [{"Days": 90, "StorageClass": "DEEP_ARCHIVE"}],
    }
    disabled = {**STALE_OURS, "ID": "disabled", "Status": "Disabled"}
    found = problems([OTHER_HOST, ours, dated, archived, disabled], PREFIX, versioned=True)
    assert found == [
        "rule by-date (prefix 'hosts') expires current objects on 2030-01-01T00:00:00Z, "
        "which retention may still keep (the newest backup of a source, packs newer "
        "snapshots use)",
        f"rule archive (prefix '{PREFIX}/files/') moves objects to DEEP_ARCHIVE, which "
        "restores cannot read without a restore-object first",
    ]
    # A rule that acts on some objects only (a size filter) does not tidy the prefix.
    assert problems([archived], PREFIX, versioned=False) == [
        found[1],
        "no rule aborts unfinished multipart uploads (they are billed forever)",
    ]


# --- over HTTP on moto --------------------------------------------------------------------


@pytest.fixture
def env(tmp_path, isolated_env, s3_server) -> FilesEnv:
    env = make_files_env(tmp_path / "files")
    env.set(
        S3_ENABLED="true",
        S3_BUCKET=BUCKET,
        S3_ENDPOINT_URL=s3_server.endpoint_url,
        S3_ACCESS_KEY=s3_server.access_key,
        S3_SECRET_KEY=s3_server.secret_key,
        AWS_REGION=s3_server.region,
        S3_PREFIX=PREFIX,
    )
    s3_server.create_bucket(BUCKET)
    return env


def bucket_rules(s3_server) -> list[dict] | None:
    client = s3_server.client()
    try:
        return client.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]
    except client.exceptions.ClientError as error:
        assert error.response["Error"]["Code"] == "NoSuchLifecycleConfiguration"
        return None


def set_rules(s3_server, rules: list[dict]) -> None:
    s3_server.client().put_bucket_lifecycle_configuration(
        Bucket=BUCKET, LifecycleConfiguration={"Rules": rules}
    )


def test_printing_the_rules_changes_nothing(env, s3_server, capsys):
    assert env.cli("s3", "lifecycle") == ExitCode.OK
    out = capsys.readouterr().out
    assert f"s3 lifecycle: bucket {BUCKET}, prefix {PREFIX}/, retention daily 7" in out
    assert f"would add rule jarvis-backup:{PREFIX}" in out
    configuration = json.loads(out[out.index("\n{") : out.rindex("}") + 1])
    expected = derive_rule(PREFIX, RetentionPolicy(7, 4, 12), LifecycleOptions())
    assert configuration == {"Rules": [expected]}
    assert "nothing was changed; run with --apply" in out
    assert bucket_rules(s3_server) is None


def test_apply_sets_the_rule_keeps_other_prefixes_and_says_what_changed(env, s3_server, capsys):
    set_rules(s3_server, [OTHER_HOST, STALE_OURS])
    env.set(BACKUP_RETENTION_DAILY="45")
    capsys.readouterr()
    assert (
        env.cli("s3", "lifecycle", "--apply", "--keep-deleted", "14", "--transition", "STANDARD_IA")
        == ExitCode.OK
    )
    out = capsys.readouterr().out
    assert f"replaced rule old-backups: {json.dumps(STALE_OURS, sort_keys=True)}" in out
    assert "kept rule other-host (prefix 'hosts/jarvis-2/')" in out
    ours = bucket_rules(s3_server)[-1]
    assert bucket_rules(s3_server) == [OTHER_HOST, ours]
    assert ours["ID"] == f"jarvis-backup:{PREFIX}"
    assert ours["NoncurrentVersionExpiration"] == {"NoncurrentDays": 14}
    assert ours["Transitions"] == [{"Days": 45, "StorageClass": "STANDARD_IA"}]
    assert "Days" not in ours["Expiration"]

    # Again: nothing to change, no write.
    assert (
        env.cli(
            "s3",
            "lifecycle",
            "--apply",
            "--keep-deleted",
            "14",
            "--transition",
            "STANDARD_IA",
            "--json",
        )
        == ExitCode.OK
    )
    report = json.loads(capsys.readouterr().out)
    assert (report["applied"], report["changed"]) == (False, False)
    assert report["kept"] == ["other-host"]
    assert report["lifecycle_configuration"] == {"Rules": [OTHER_HOST, ours]}

    # And the audit finds the rules consistent with retention.
    assert env.cli("s3", "audit", "--json") == ExitCode.FAILED  # versioning and the rest
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    assert checks["lifecycle"]["status"] == "ok"


def test_a_wider_rule_that_expires_our_objects_is_kept_and_warned_of(env, s3_server, capsys):
    everything = {
        "ID": "delete-after-a-year",
        "Status": "Enabled",
        "Filter": {"Prefix": ""},
        "Expiration": {"Days": 365},
    }
    set_rules(s3_server, [everything])
    assert env.cli("s3", "lifecycle", "--apply") == ExitCode.FAILED
    captured = capsys.readouterr()
    assert f"added rule jarvis-backup:{PREFIX}" in captured.out
    (warning,) = captured.err.splitlines()
    assert warning.startswith(
        "warning: rule delete-after-a-year (prefix '') expires current objects after 365 days"
    )
    assert [rule["ID"] for rule in bucket_rules(s3_server)] == [
        "delete-after-a-year",
        f"jarvis-backup:{PREFIX}",
    ]


def test_refused_permissions_are_named_and_nothing_changes(env, s3_server, capsys):
    set_rules(s3_server, [OTHER_HOST])
    with DenyingS3Proxy(s3_server.endpoint_url, {("PUT", "lifecycle")}) as proxy:
        env.set(S3_ENDPOINT_URL=proxy.endpoint_url)
        assert env.cli("s3", "lifecycle", "--apply") == ExitCode.FAILED
        (line,) = capsys.readouterr().err.splitlines()
        assert line == (
            f"jarvis-tui: S3 bucket {BUCKET}: access denied writing its lifecycle rules; "
            f"grant s3:PutLifecycleConfiguration on arn:aws:s3:::{BUCKET}; nothing was changed"
        )
        assert proxy.refused == [("PUT", "lifecycle")]
    assert bucket_rules(s3_server) == [OTHER_HOST]

    with DenyingS3Proxy(s3_server.endpoint_url, {("GET", "lifecycle")}) as proxy:
        env.set(S3_ENDPOINT_URL=proxy.endpoint_url)
        assert env.cli("s3", "lifecycle", "--apply") == ExitCode.FAILED
        (line,) = capsys.readouterr().err.splitlines()
        assert "access denied reading its lifecycle rules, which --apply must keep" in line
        assert "grant s3:GetLifecycleConfiguration" in line

        # Printing still shows the rule, and says what it could not read.
        assert env.cli("s3", "lifecycle") == ExitCode.FAILED
        out = capsys.readouterr().out
        assert f"rule jarvis-backup:{PREFIX}:" in out
        assert (
            "the bucket's own rules: unknown (access denied reading the bucket's rules; "
            "grant s3:GetLifecycleConfiguration" in out
        )
    assert bucket_rules(s3_server) == [OTHER_HOST]


def test_an_archive_transition_is_refused_in_one_line(env, s3_server, capsys):
    assert env.cli("s3", "lifecycle", "--apply", "--transition", "GLACIER") == ExitCode.FAILED
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("jarvis-tui: transition to GLACIER: objects there cannot be read")
    assert bucket_rules(s3_server) is None
