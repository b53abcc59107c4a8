"""The API's backup items built from catalog rows: a running full set's parts, a failed
verification, a copy that failed, a set whose deletion began."""

from datetime import UTC, datetime
from pathlib import Path

from engines.catalog import Catalog
from engines.repository.whereabouts import set_places
from jarvis_tui.api.backup_views import detail_of, summary_of

T0 = datetime(2026, 11, 27, 20, 0, 0, tzinfo=UTC)


def complete(catalog: Catalog, set_id: str, source: str, relpath: str) -> int:
    artifact = catalog.add_artifact(set_id, source, "dump", relpath)
    catalog.complete_artifact(
        artifact.id,
        checksum="cd" * 32,
        stored_size=10,
        plain_size=20,
        key_id="k1",
        codec="zstd",
        metadata={},
    )
    return artifact.id


def test_a_running_full_set_and_its_artifacts_states(tmp_path: Path) -> None:
    with Catalog.open(tmp_path / "catalog.sqlite3") as catalog:
        running = catalog.create_backup_set("full", tier="daily", created_at=T0)
        dumped = complete(catalog, running.id, "postgres", "postgres/a.enc")
        catalog.add_artifact(running.id, "files", "full", "files/b.enc")  # still writing
        catalog.record_verification(dumped, False, "tag mismatch")
        catalog.set_copy_state(dumped, "local", "stored")
        catalog.set_copy_state(dumped, "s3", "failed", "AccessDenied: no")
        catalog.mark_set_deleting(running.id)

        backup_set = catalog.get_backup_set(running.id)
        artifacts = catalog.artifacts_of(running.id)
        places = set_places(catalog, [running.id], ("s3",))[running.id]
        item = summary_of(
            backup_set, catalog.artifact_states_of_sets([running.id])[running.id], places
        )
        assert [(p.source, p.state) for p in item.parts] == [
            ("postgres", "ok"),
            ("files", "running"),
        ]
        assert item.status == "running" and item.deleting_since is not None
        assert item.verification.state == "failed"
        assert (item.verification.verified, item.verification.failed) == (0, 1)
        assert item.verification.unverified == 0  # the writing artifact is not complete
        assert item.where.summary == "local, s3 failed 1"
        assert item.where.destinations["s3"].failed == 1

        detail = detail_of(backup_set, artifacts, places)
        first, writing = detail.artifacts
        assert first.copies["s3"].state == "failed"
        assert first.copies["s3"].error == "AccessDenied: no"
        assert first.verification.state == "failed" and first.verification.detail == "tag mismatch"
        assert writing.status == "writing" and writing.copies == {}
        assert detail.gaps == ["s3: postgres/a.enc failed: AccessDenied: no"]
