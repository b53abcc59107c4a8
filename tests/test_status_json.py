"""`status --json`'s per-source lines (engines/monitoring/status.py SourceStatus.to_json),
which GET /api/backups/schedule/status answers as they are."""

from datetime import UTC, datetime, timedelta

from engines.monitoring.status import SourceStatus

T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)


def test_an_age_of_exactly_zero_is_zero_hours_not_unknown() -> None:
    just_made = SourceStatus("files", "files_20260301_020000", T0, timedelta(0), False)
    assert just_made.to_json()["age_hours"] == 0.0


def test_an_age_is_in_hours_and_none_without_a_backup() -> None:
    older = SourceStatus("redis", "redis_20260301_020000", T0, timedelta(minutes=90), False)
    assert older.to_json()["age_hours"] == 1.5
    never = SourceStatus("postgres", None, None, None, True).to_json()
    assert (never["age_hours"], never["created_at"], never["last_good_backup"]) == (None,) * 3
