"""The API's backup items built from catalog rows: a running full set's parts, a failed
verification, a copy that failed, a set whose deletion began; the list page's plain
items written as the validated summaries would be, byte for byte."""

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import TypeAdapter

from engines.catalog import Catalog, SetFilter
from engines.repository.whereabouts import set_places
from jarvis_tui.api.backup_models import BackupSetSummary
from jarvis_tui.api.backup_views import detail_of, list_item, summary_of
from jarvis_tui.api.list_body import list_body

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


def _seed_mix(catalog: Catalog, sets: int, seed: int) -> None:
    draw = random.Random(seed)
    for number in range(sets):
        kind = draw.choice(("postgres", "redis", "files", "full"))
        backup_set = catalog.create_backup_set(
            kind,
            tier=draw.choice(("daily", "manual", None)),
            created_at=T0 + timedelta(minutes=number, microseconds=draw.choice((0, 1234))),
        )
        for index, source in enumerate(("postgres", "files") if kind == "full" else (kind,)):
            artifact = catalog.add_artifact(backup_set.id, source, "full", f"{number}/{index}")
            if draw.random() < 0.15:
                catalog.fail_artifact(artifact.id, "it broke")
                continue
            if draw.random() < 0.05:
                continue  # still writing
            complete_id = complete_with(catalog, artifact.id, source)
            if draw.random() < 0.6:
                catalog.record_verification(complete_id, draw.random() < 0.8, "checked")
            for destination in ("local", "s3", "elsewhere"):
                state = draw.choice(("stored", "stored", "failed", "pending", "deleted", None))
                if state is not None:
                    catalog.set_copy_state(
                        complete_id, destination, state, "no" if state == "failed" else None
                    )
        status = draw.choice(("complete", "partial", "failed", "running"))
        if status != "running":
            note = "postgres: ok (1 artifact); files: skipped (not set)" if kind == "full" else None
            error = "why" if status == "failed" else None
            catalog.finish_backup_set(backup_set.id, status, error, note=note)
        if draw.random() < 0.1:
            catalog.mark_set_deleting(backup_set.id)


def complete_with(catalog: Catalog, artifact_id: int, source: str) -> int:
    catalog.complete_artifact(
        artifact_id,
        checksum="cd" * 32,
        stored_size=10,
        plain_size=20,
        key_id="k1",
        codec="zstd",
        metadata={"snapshot": {"stored_bytes": 7}} if source == "files" else {},
    )
    return artifact_id


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("destinations", [(), ("s3",), ("s3", "elsewhere")])
def test_the_list_pages_plain_items_are_the_summaries_bytes(
    tmp_path: Path, seed: int, destinations: tuple[str, ...]
) -> None:
    with Catalog.open(tmp_path / "catalog.sqlite3") as catalog:
        _seed_mix(catalog, 60, seed)
        page = catalog.page_backup_sets(SetFilter(), limit=100)
        ids = [s.id for s in page.sets]
        states = catalog.artifact_states_of_sets(ids)
        places = set_places(catalog, ids, destinations)
        models = [summary_of(s, states[s.id], places[s.id]) for s in page.sets]
        listed = catalog.listed_artifacts_of_sets(ids)
        items = [list_item(s, listed[s.id], destinations) for s in page.sets]
        assert list_body(items) == TypeAdapter(list[BackupSetSummary]).dump_json(models)
        summaries = {m.where.summary for m in models}
        assert len(summaries) > 2 or not destinations  # the mix reaches several places
