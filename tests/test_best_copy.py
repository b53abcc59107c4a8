"""The best-copy view over two real folders (the repository and a copy destination):
which copy each object is read from, listings merged, writes refused. The same view over
moto's S3 is exercised end to end by tests/test_restore_from_copy.py."""

import pytest

from engines.destinations import LocalRepository
from engines.destinations.best_copy import BestCopy, ReadOnlyViewError
from engines.errors import NotFoundError


def put(destination: LocalRepository, key: str, data: bytes) -> None:
    with destination.open_write(key) as out:
        out.write(data)


@pytest.fixture
def sides(tmp_path):
    here = LocalRepository(tmp_path / "repo")
    there = LocalRepository(tmp_path / "offsite", name="offsite")
    put(here, "secrets/a.enc", b"local a")
    put(there, "secrets/a.enc", b"copy a!")
    put(there, "secrets/b.enc", b"only on the copy")
    put(here, "secrets/c.enc", b"cut")
    put(there, "secrets/c.enc", b"whole c")
    return here, there


def read(view: BestCopy, key: str, offset: int = 0, length: int | None = None) -> bytes:
    with view.open_read(key, offset, length) as stream:
        return stream.read()


def test_each_object_comes_from_the_repository_unless_it_is_missing_or_of_another_size(sides):
    here, there = sides
    sizes = {"secrets/c.enc": len(b"whole c")}
    view = BestCopy(here, [there], sizes.get)
    assert read(view, "secrets/a.enc") == b"local a" and view.holder("secrets/a.enc") == "local"
    assert read(view, "secrets/b.enc") == b"only on the copy"
    assert view.holder("secrets/b.enc") == "offsite"
    assert read(view, "secrets/b.enc", 5, 2) == b"on"
    assert read(view, "secrets/c.enc") == b"whole c"  # the repository's is cut short
    assert view.stat("secrets/b.enc").size == len(b"only on the copy")
    assert view.stat("secrets/none.enc") is None
    with pytest.raises(NotFoundError, match=r"secrets/none\.enc: no such object in any copy"):
        view.open_read("secrets/none.enc")


def test_a_listing_merges_both_sides_in_key_order(sides):
    here, there = sides
    view = BestCopy(here, [there], {"secrets/c.enc": 7}.get)
    listed = {item.key: item.size for item in view.list("secrets/")}
    assert list(listed) == ["secrets/a.enc", "secrets/b.enc", "secrets/c.enc"]
    assert listed == {"secrets/a.enc": 7, "secrets/b.enc": 16, "secrets/c.enc": 7}
    assert view.holder("secrets/a.enc") == "local" and view.holder("secrets/c.enc") == "offsite"


def test_an_object_deleted_since_it_was_looked_up_is_looked_up_again(sides):
    here, there = sides
    view = BestCopy(here, [there])
    assert view.holder("secrets/a.enc") == "local"
    here.delete("secrets/a.enc")
    assert read(view, "secrets/a.enc") == b"copy a!"


def test_writes_are_refused_and_the_copys_id_serves_a_repository_without_one(sides, tmp_path):
    here, there = sides
    view = BestCopy(here, [there])
    for write in (
        lambda: view.open_write("secrets/x.enc"),
        lambda: view.put(tmp_path / "x", "secrets/x.enc"),
        lambda: view.delete("secrets/a.enc"),
        lambda: view.ensure_repository_id(),
    ):
        with pytest.raises(ReadOnlyViewError):
            write()
    assert here.repository_id() is None
    copy_id = there.ensure_repository_id()
    assert view.repository_id() == copy_id
    assert BestCopy(here, [there]).repository_id() == copy_id
    mine = here.ensure_repository_id()
    assert BestCopy(here, [there]).repository_id() == mine
