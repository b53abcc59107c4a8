"""The API's page cache: an answer is kept under the catalog's change marker only, and
requests for a page being built share that build."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from engines.catalog import Catalog
from jarvis_tui.api.page_cache import Answer, PageCache


def test_an_answer_is_kept_until_the_marker_changes() -> None:
    cache, built = PageCache(), []

    def build(text: str):
        def make() -> Answer:
            built.append(text)
            return Answer(text.encode(), {"X-Total-Count": "1"})

        return make

    assert cache.get("/a", (1, 0), build("first")).body == b"first"
    assert cache.get("/a", (1, 0), build("second")).body == b"first"
    assert cache.get("/a", (2, 0), build("third")).body == b"third"
    assert cache.get("/b", (2, 0), build("other")).body == b"other"
    assert built == ["first", "third", "other"]


def test_it_holds_a_bounded_number_of_small_answers() -> None:
    cache = PageCache(max_entries=2, max_body_bytes=10)
    for key in ("/a", "/b", "/c"):
        cache.get(key, 0, lambda key=key: Answer(key.encode(), {}))
    assert cache.get("/a", 0, lambda: Answer(b"again", {})).body == b"again"  # dropped
    big = cache.get("/big", 0, lambda: Answer(b"x" * 11, {}))
    assert cache.get("/big", 0, lambda: Answer(b"rebuilt", {})).body == b"rebuilt"
    assert len(big.body) == 11


def test_the_marker_moves_on_every_write_to_sets_artifacts_or_copies(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite3"
    with Catalog.open(path) as reader, Catalog.open(path) as writer:
        markers = [reader.change_marker()]

        def moved() -> bool:
            markers.append(reader.change_marker())
            return markers[-1] != markers[-2]

        reader.list_backup_sets()
        assert not moved()  # reads change nothing
        backup_set = writer.create_backup_set("files")  # another connection, as a process
        assert moved()
        artifact = writer.add_artifact(backup_set.id, "files", "full", "files/a.enc")
        assert moved()
        writer.set_copy_state(artifact.id, "s3", "failed", "AccessDenied")
        assert moved()
        writer.record_verification(artifact.id, True, "ok")
        assert moved()
        job = writer.create_job("backup", "backup files")
        writer.update_job_progress(job.id, 10, 100)
        assert not moved()  # a job's progress changes no set
        reader.finish_backup_set(backup_set.id, "complete")  # its own connection
        assert moved()
        writer.delete_backup_set(backup_set.id)  # artifacts and copies go with it
        assert moved()


def _until(check, what: str) -> None:
    deadline = time.monotonic() + 60
    while not check():
        assert time.monotonic() < deadline, f"timed out after 60 s waiting for {what}"
        time.sleep(0.01)


def test_requests_for_a_page_being_built_wait_for_it_and_share_its_answer() -> None:
    cache, built, release = PageCache(), [], threading.Event()

    def held() -> Answer:
        built.append("held")
        assert release.wait(60), "the test never let the build go"
        return Answer(b"built once", {})

    def again() -> Answer:
        built.append("again")
        return Answer(b"built again", {})

    with ThreadPoolExecutor(6) as pool:
        first = pool.submit(cache.get, "/a", 1, held)
        _until(lambda: built == ["held"], "the first build")
        same = [pool.submit(cache.get, "/a", 1, again) for _ in range(2)]
        # The catalog moved on meanwhile (marker 2): these wait, then share one build of
        # their own (the held one read the catalog before the write they may know of).
        newer = [pool.submit(cache.get, "/a", 2, again) for _ in range(3)]
        other_page = cache.get("/b", 2, lambda: Answer(b"b", {}))  # not held up
        _until(lambda: cache.waiting == 5, "five requests waiting")
        release.set()
        answers = [f.result(60).body for f in (first, *same)]
        newer_answers = [f.result(60).body for f in newer]
    assert answers == [b"built once"] * 3 and other_page.body == b"b"
    assert newer_answers == [b"built again"] * 3
    assert built == ["held", "again"] and cache.waiting == 0
    assert cache.get("/a", 2, held).body == b"built again"  # kept under its own marker


def test_when_the_build_fails_a_waiting_request_builds_the_page_itself() -> None:
    cache, release = PageCache(), threading.Event()
    started = threading.Event()

    def broken() -> Answer:
        started.set()
        assert release.wait(60)
        raise RuntimeError("the catalog broke")

    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(cache.get, "/a", 1, broken)
        assert started.wait(60)
        second = pool.submit(cache.get, "/a", 1, lambda: Answer(b"rebuilt", {}))
        _until(lambda: cache.waiting == 1, "a request waiting")
        release.set()
        with pytest.raises(RuntimeError, match="the catalog broke"):
            first.result(60)
        assert second.result(60).body == b"rebuilt"
    assert cache.get("/a", 1, lambda: Answer(b"never", {})).body == b"rebuilt"
