"""`jarvis-tui sync [--dry-run]`: one listing of each side, what is missing pushed in the
copy order, copy states recorded, a dry run changing nothing.

The copy destination is a second local repository registered as a destination kind for
the test (as S3 is registered); the backups are real files backups through the CLI's
entry point.
"""

import pytest

from engines.destinations import DESTINATION_KINDS, LocalRepository
from engines.repository.copies import ALERT_WORDS, alert_kind, copy_rank
from engines.store.layout import INDEX_PREFIX, PACKS_PREFIX, is_snapshot_key
from jarvis_tui.exit_codes import ExitCode
from tests.support.files_env import FilesEnv, make_files_env, random_text

OFFSITE = "offsite"


class Offsite(LocalRepository):
    """A local folder as a copy destination, counting its listings and reads, and
    refusing writes of keys starting with `refuse` (a destination that fails mid-copy)."""

    events: list[tuple[str, str]] = []
    refuse: str | None = None

    def list(self, prefix=""):
        Offsite.events.append(("list", prefix))
        return super().list(prefix)

    def stat(self, key):
        Offsite.events.append(("stat", key))
        return super().stat(key)

    def open_read(self, key, offset=0, length=None):
        Offsite.events.append(("read", key))
        return super().open_read(key, offset, length)

    def open_write(self, key):
        Offsite.events.append(("write", key))
        if Offsite.refuse is not None and key.startswith(Offsite.refuse):
            raise OSError(f"{key}: upload refused (503 SlowDown)")
        return super().open_write(key)


@pytest.fixture
def env(tmp_path, isolated_env) -> FilesEnv:
    files = make_files_env(tmp_path / "files")
    for number in range(10):
        (files.data / f"f{number}.txt").write_bytes(random_text(60_000, number))
    return files


@pytest.fixture
def offsite(tmp_path, monkeypatch) -> Offsite:
    root = tmp_path / "offsite"

    class Registered(Offsite):
        @classmethod
        def from_settings(cls, settings):
            return cls(root, name=OFFSITE)

    monkeypatch.setattr(Offsite, "events", [])
    monkeypatch.setattr(Offsite, "refuse", None)
    monkeypatch.setitem(DESTINATION_KINDS, "offsite-test", Registered)
    return Registered(root, name=OFFSITE)


def listing(destination: LocalRepository) -> dict[str, int]:
    return {item.key: item.size for item in LocalRepository.list(destination)}


def offsite_states(env: FilesEnv) -> dict[str, str | None]:
    with env.workspace() as workspace:
        found = {}
        for artifact in workspace.catalog.all_artifacts():
            states = {c.destination: c.state for c in workspace.catalog.copies_of(artifact.id)}
            found[artifact.relpath] = states.get(OFFSITE)
        return found


def test_without_a_copy_destination_sync_says_so_in_one_line(env):
    assert env.cli("backup", "files") == ExitCode.OK
    done = env.cli_process("sync")
    assert done.returncode == ExitCode.OK, done.stderr
    assert done.stdout.strip().count("\n") == 0
    assert "no copy destination is configured" in done.stdout
    with env.workspace() as workspace:
        assert [job.kind for job in workspace.catalog.list_jobs()] == ["backup"]


def test_dry_run_lists_what_is_missing_then_sync_pushes_it_in_order_and_a_second_finds_nothing(
    env, offsite, capsys
):
    # Backups made before the destination was configured: none of it is there.
    registered = DESTINATION_KINDS.pop("offsite-test")
    assert env.cli("backup", "files") == ExitCode.OK
    (env.data / "f0.txt").write_bytes(random_text(70_000, 42))
    assert env.cli("backup", "files", "--incremental") == ExitCode.OK
    DESTINATION_KINDS["offsite-test"] = registered  # the fixture's teardown removes it
    repository = LocalRepository(env.repo)
    here = listing(repository)
    assert any(k.startswith(PACKS_PREFIX) for k in here)
    assert all(state is None for state in offsite_states(env).values())
    capsys.readouterr()
    Offsite.events.clear()

    assert env.cli("sync", "--dry-run") == ExitCode.OK
    out = capsys.readouterr().out
    assert f"{OFFSITE}: would copy {len(here)} object(s), {sum(here.values())} bytes" in out
    assert {line.split()[2] for line in out.splitlines() if "would copy " in line[:13]} == set(here)
    assert not offsite.root.exists()
    assert all(state is None for state in offsite_states(env).values())
    assert [e for e in Offsite.events if e[0] != "list"] == []

    Offsite.events.clear()
    assert env.cli("sync") == ExitCode.OK
    out = capsys.readouterr().out
    assert f"{OFFSITE}: copied {len(here)} object(s), {sum(here.values())} bytes" in out
    assert listing(offsite) == here
    # One listing of the destination, no request per object but the writes themselves.
    assert Offsite.events.count(("list", "")) == 1
    written = [key for kind, key in Offsite.events if kind == "write"]
    assert sorted(written) == sorted(here)
    assert [e for e in Offsite.events if e[0] in ("stat", "read")] == []
    ranks = [copy_rank(key) for key in written]
    assert ranks == sorted(ranks)
    last_pack = max(i for i, k in enumerate(written) if k.startswith(PACKS_PREFIX))
    first_index = min(i for i, k in enumerate(written) if k.startswith(INDEX_PREFIX))
    first_manifest = min(i for i, k in enumerate(written) if is_snapshot_key(k))
    first_record = min(i for i, k in enumerate(written) if k.startswith("sets/"))
    assert last_pack < first_index < first_manifest < first_record
    assert set(offsite_states(env).values()) == {"stored"}

    Offsite.events.clear()
    assert env.cli("sync") == ExitCode.OK
    assert f"{OFFSITE}: nothing to copy" in capsys.readouterr().out
    assert [kind for kind, _ in Offsite.events] == ["list"]


def test_an_interrupted_copy_leaves_only_unreferenced_data_and_sync_completes_it(
    env, offsite, capsys
):
    # Every index upload is refused: the packs go up, and nothing that references them.
    Offsite.refuse = INDEX_PREFIX
    assert env.cli("backup", "files") == ExitCode.OK  # the local backup stands
    there = listing(offsite)
    assert there and all(key.startswith(PACKS_PREFIX) for key in there)
    assert set(offsite_states(env).values()) == {"failed"}
    with env.workspace() as workspace:
        (alert,) = [a for a in workspace.catalog.list_alerts() if a.kind == alert_kind(OFFSITE)]
        assert ALERT_WORDS in alert.message and "503 SlowDown" in alert.message
        (backup_set,) = workspace.catalog.list_backup_sets()
        assert backup_set.status == "complete"

    capsys.readouterr()
    assert env.cli("sync") == ExitCode.FAILED  # still refused: never a silent success
    captured = capsys.readouterr()
    assert "copy failed at files/index/" in captured.out
    assert "the local backups are intact" in captured.err

    # A pack cut short on the destination (same key, another size) is sent again.
    pack = sorted(there)[0]
    offsite.path_for(pack).write_bytes(b"cut short")
    Offsite.refuse = None
    assert env.cli("sync") == ExitCode.OK
    assert listing(offsite) == listing(LocalRepository(env.repo))
    assert offsite.path_for(pack).read_bytes() == (env.repo / pack).read_bytes()
    assert set(offsite_states(env).values()) == {"stored"}
    assert env.cli("sync") == ExitCode.OK
    assert f"{OFFSITE}: nothing to copy" in capsys.readouterr().out
