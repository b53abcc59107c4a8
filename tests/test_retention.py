"""GFS retention: restic's forget semantics against a reference model, the safety rules,
and `cleanup` deleting for real."""

import os
import socket
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engines.actions.cleanup import run_cleanup
from engines.errors import RepositoryLockedError
from engines.jobs import run_job
from engines.repository.lock import RepositoryLock
from engines.scheduling.retention import Candidate, RetentionPolicy, bucket_keys, plan_retention
from engines.workspace import Workspace
from jarvis_tui.cli import main
from jarvis_tui.exit_codes import ExitCode
from tests.scheduling_support import T0, add_set, make_settings, write_env_file

ZONES = [UTC, ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York"), ZoneInfo("Pacific/Chatham")]


def reference_kept(times: list[datetime], policy: RetentionPolicy, zone) -> set[datetime]:
    """The obvious model: for each rule, the newest backup of each of its newest N buckets."""
    kept: set[datetime] = set()
    for rule, count in (
        ("daily", policy.daily),
        ("weekly", policy.weekly),
        ("monthly", policy.monthly),
    ):
        buckets: dict[tuple, list[datetime]] = {}
        for moment in times:
            buckets.setdefault(bucket_keys(moment, zone)[rule], []).append(moment)
        for key in sorted(buckets, reverse=True)[:count]:
            kept.add(max(buckets[key]))
    return kept


def candidates_at(times: list[datetime], kind: str = "full") -> list[Candidate]:
    return [
        Candidate(f"{kind}_{moment.isoformat()}", kind, "complete", moment, frozenset({kind}))
        for moment in times
    ]


def kept_ids(decisions) -> set[str]:
    return {d.candidate.set_id for d in decisions if d.keep}


moments = st.integers(min_value=0, max_value=3 * 365 * 24 * 60).map(
    lambda minutes: T0 + timedelta(minutes=minutes)
)


@settings(max_examples=300, deadline=None)
@given(
    times=st.lists(moments, min_size=1, max_size=120, unique=True),
    daily=st.integers(0, 12),
    weekly=st.integers(0, 8),
    monthly=st.integers(0, 14),
    zone=st.sampled_from(ZONES),
)
def test_gfs_keeps_exactly_what_the_reference_model_keeps(times, daily, weekly, monthly, zone):
    policy = RetentionPolicy(daily, weekly, monthly)
    candidates = candidates_at(times)
    decisions = plan_retention(candidates, policy, zone)
    gfs_kept = {
        d.candidate.created_at
        for d in decisions
        if any(reason in ("daily", "weekly", "monthly") for reason in d.reasons)
    }
    assert gfs_kept == reference_kept(times, policy, zone)
    # The newest backup always stays, whatever the policy says.
    assert max(times) in {d.candidate.created_at for d in decisions if d.keep}


@settings(max_examples=200, deadline=None)
@given(
    times=st.lists(moments, min_size=1, max_size=40, unique=True),
    data=st.data(),
)
def test_safety_rules_hold_whatever_gfs_says(times, data):
    sources = ("postgres", "redis", "files")
    candidates = []
    for number, moment in enumerate(times):
        good = frozenset(data.draw(st.sets(st.sampled_from(sources)), label=f"good {number}"))
        verified = (
            frozenset(data.draw(st.sets(st.sampled_from(sorted(good))))) if good else frozenset()
        )
        status = data.draw(st.sampled_from(["complete", "partial", "failed", "running"]))
        candidates.append(Candidate(f"s{number}", "full", status, moment, good, verified))
    decisions = plan_retention(candidates, RetentionPolicy(0, 0, 0), UTC)
    kept = [d.candidate for d in decisions if d.keep]
    for source in sources:
        holders = [c for c in candidates if source in c.good_sources and c.status != "running"]
        if holders:
            assert any(source in c.good_sources for c in kept)
        if any(source in c.verified_sources and c.status != "running" for c in candidates):
            assert any(source in c.verified_sources for c in kept)
    assert all(d.keep for d in decisions if d.candidate.status == "running")


def test_a_month_of_nightly_sets_with_the_guides_policy():
    # 2025-03-01 (Saturday) to 2025-03-31, every night at 02:00 UTC
    times = [datetime(2025, 3, day, 2, 0, tzinfo=UTC) for day in range(1, 32)]
    decisions = plan_retention(candidates_at(times), RetentionPolicy(7, 4, 12), UTC)
    reasons = {d.candidate.created_at.day: d.reasons for d in decisions if d.keep}
    assert reasons == {
        31: ["daily", "weekly", "monthly", "newest full"],
        30: ["daily", "weekly"],  # Sunday: the newest of ISO week 13
        29: ["daily"],
        28: ["daily"],
        27: ["daily"],
        26: ["daily"],
        25: ["daily"],
        23: ["weekly"],
        16: ["weekly"],
    }
    texts = {d.candidate.created_at.day: d.text for d in decisions}
    assert texts[30] == "kept because: daily, weekly"
    assert texts[24] == "deleted"


def test_empty_periods_do_not_use_up_slots():
    # Backups only every tenth day: seven daily slots reach back seventy days.
    times = [T0 + timedelta(days=10 * n) for n in range(12)]
    decisions = plan_retention(candidates_at(times), RetentionPolicy(7, 0, 0), UTC)
    assert len(kept_ids(decisions)) == 7


def test_kinds_are_retained_separately():
    full = candidates_at([T0 + timedelta(hours=h) for h in range(3)], "full")
    postgres = candidates_at([T0 + timedelta(hours=h, minutes=30) for h in range(3)], "postgres")
    decisions = plan_retention(full + postgres, RetentionPolicy(1, 0, 0), UTC)
    assert {d.candidate.created_at for d in decisions if d.keep} == {
        T0 + timedelta(hours=2),
        T0 + timedelta(hours=2, minutes=30),
    }


def test_the_newest_backup_of_each_source_and_the_only_verified_one_stay():
    old_verified = Candidate(
        "a", "full", "complete", T0, frozenset({"redis"}), frozenset({"redis"})
    )
    only_redis = Candidate("b", "full", "partial", T0 + timedelta(days=1), frozenset({"redis"}))
    newest = Candidate("c", "full", "partial", T0 + timedelta(days=2), frozenset({"postgres"}))
    failed = Candidate("d", "full", "failed", T0 + timedelta(days=3))
    running = Candidate("e", "full", "running", T0 + timedelta(days=4))
    decisions = {
        d.candidate.set_id: d.text
        for d in plan_retention(
            [old_verified, only_redis, newest, failed, running], RetentionPolicy(0, 0, 0), UTC
        )
    }
    assert decisions == {
        "a": "kept because: only verified redis",
        "b": "kept because: newest redis",
        "c": "kept because: newest postgres",
        "d": "deleted (failed backup)",
        "e": "kept because: still being written",
    }


def test_sets_in_use_by_a_reader_stay():
    times = [T0 + timedelta(days=n) for n in range(5)]
    candidates = candidates_at(times)
    pinned = candidates[0].set_id
    decisions = plan_retention(
        candidates, RetentionPolicy(1, 0, 0), UTC, in_use={pinned: "in use by job 7 (restore)"}
    )
    assert kept_ids(decisions) == {pinned, candidates[-1].set_id}
    everything = plan_retention(
        candidates, RetentionPolicy(1, 0, 0), UTC, everything_in_use="job 8 is running"
    )
    assert all(d.keep for d in everything)


# --- cleanup against a real repository ---------------------------------------------------


@pytest.fixture
def workspace(tmp_path, isolated_env):
    settings = make_settings(
        tmp_path,
        BACKUP_RETENTION_DAILY="2",
        BACKUP_RETENTION_WEEKLY="0",
        BACKUP_RETENTION_MONTHLY="0",
    )
    with Workspace.open(settings) as opened:
        yield opened


def files_of(workspace: Workspace) -> set[str]:
    """Artifacts and sidecars (the files store keeps its own index under files/)."""
    return {obj.key for obj in workspace.repository.list() if not obj.key.startswith("files/")}


def test_cleanup_deletes_artifacts_sidecars_and_rows_and_a_dry_run_nothing(workspace):
    sets = [
        add_set(workspace, T0 + timedelta(days=n), sources=("postgres", "redis")) for n in range(4)
    ]
    before = files_of(workspace)
    assert len(before) == 16  # 4 sets x 2 artifacts x (artifact + sidecar)

    dry = run_job(
        workspace.catalog, "cleanup", "dry", lambda ctx: run_cleanup(workspace, ctx, dry_run=True)
    )
    assert [d.candidate.set_id for d in dry.to_delete] == [sets[1].id, sets[0].id]
    assert files_of(workspace) == before
    assert len(workspace.catalog.list_backup_sets()) == 4

    report = run_job(workspace.catalog, "cleanup", "real", lambda ctx: run_cleanup(workspace, ctx))
    assert sorted(report.deleted) == sorted([sets[0].id, sets[1].id])
    assert report.problems == []
    assert [s.id for s in workspace.catalog.list_backup_sets()] == [sets[3].id, sets[2].id]
    remaining = files_of(workspace)
    assert len(remaining) == 8
    assert all(sets[2].id in key or sets[3].id in key for key in remaining)


def test_cleanup_waits_while_a_restore_may_read_any_set(workspace):
    for n in range(3):
        add_set(workspace, T0 + timedelta(days=n))
    restore = workspace.catalog.create_job("restore", "restore postgres latest")
    assert restore.pid == os.getpid() and restore.host == socket.gethostname()

    report = run_job(workspace.catalog, "cleanup", "c", lambda ctx: run_cleanup(workspace, ctx))
    assert report.deleted == []
    assert all("deletion waits" in d.text for d in report.decisions if "daily" not in d.reasons)
    assert len(workspace.catalog.list_backup_sets()) == 3

    workspace.catalog.finish_job(restore.id, "succeeded")
    report = run_job(workspace.catalog, "cleanup", "c", lambda ctx: run_cleanup(workspace, ctx))
    assert len(report.deleted) == 1


def test_cleanup_refuses_while_a_backup_holds_the_repository(workspace):
    add_set(workspace, T0)
    with (
        RepositoryLock(workspace.repository.root, "backup full"),
        pytest.raises(RepositoryLockedError),
    ):
        run_job(workspace.catalog, "cleanup", "c", lambda ctx: run_cleanup(workspace, ctx))
    assert len(workspace.catalog.list_backup_sets()) == 1


def test_cli_cleanup_prints_why_each_set_is_kept(tmp_path, isolated_env, capsys):
    policy = {
        "BACKUP_RETENTION_DAILY": "1",
        "BACKUP_RETENTION_WEEKLY": "2",
        "BACKUP_RETENTION_MONTHLY": "0",
    }
    env_file = write_env_file(tmp_path, **policy)
    settings = make_settings(tmp_path, **policy)
    with Workspace.open(settings) as workspace:
        # Wednesday 2025-01-01 .. Tuesday 2025-01-07: week 1 ends on Sunday the 5th.
        sets = [add_set(workspace, T0 + timedelta(days=n, hours=2)) for n in range(7)]

    assert main(["--env-file", str(env_file), "cleanup", "--dry-run"]) == ExitCode.OK
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("full_")}
    assert lines[sets[6].id].endswith("kept because: daily, weekly, newest postgres")
    assert lines[sets[4].id].endswith("kept because: weekly")  # Sunday 5th, ISO week 1
    assert lines[sets[5].id].endswith("deleted")
    assert "dry run" in out and "5 set(s) would be deleted" in out

    assert main(["--env-file", str(env_file), "cleanup"]) == ExitCode.OK
    assert "5 set(s) deleted" in capsys.readouterr().out
    with Workspace.open(settings) as workspace:
        assert {s.id for s in workspace.catalog.list_backup_sets()} == {sets[4].id, sets[6].id}
