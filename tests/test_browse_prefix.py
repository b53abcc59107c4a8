"""Another host's backups browsed read-only: `catalog rebuild --from s3 --prefix P`, then
`--browse s3:P` (or BACKUP_BROWSE) for list, verify and restore; every verb that writes
the repository is refused. Two hosts sharing one bucket on moto's S3 over HTTP."""

import json

import pytest

from engines.actions.verbs import Request, run_verb
from engines.config import load_settings
from engines.errors import ReadOnlyBrowseError
from engines.workspace import Workspace
from jarvis_tui.exit_codes import ExitCode
from tests.support.files_env import FilesEnv, make_secrets_env
from tests.support.s3_hosts import (
    BUCKET,
    backed_up_host,
    catalog_contents,
    s3_objects,
    s3_settings,
)

OTHER = "hosts/web-2"
BROWSE = f"s3:{OTHER}"


@pytest.fixture
def hosts(tmp_path, isolated_env, s3_server) -> tuple[FilesEnv, FilesEnv]:
    """(this host, the other host), each with backups of its own under its own prefix."""
    s3_server.create_bucket(BUCKET)
    other = backed_up_host(tmp_path / "web-2", s3_server, OTHER, token="web-2's")
    here = backed_up_host(tmp_path / "here", s3_server, "hosts/here", token="ours")
    return here, other


def browsed(env: FilesEnv, *args: str):
    return env.cli_process("--browse", BROWSE, *args)


def test_another_hosts_backups_are_browsed_in_a_catalog_of_their_own(hosts, s3_server):
    here, other = hosts
    own_before = catalog_contents(here)
    repo_before = sorted(p.relative_to(here.repo) for p in here.repo.rglob("*"))
    bucket_before = s3_objects(s3_server, OTHER)

    rebuild = here.cli_process("catalog", "rebuild", "--from", "s3", "--prefix", OTHER)
    assert rebuild.returncode == ExitCode.OK, rebuild.stderr
    _, other_artifacts = catalog_contents(other)
    assert f"imported {len(other_artifacts)} artifact(s)" in rebuild.stdout
    [browse_catalog] = (here.root / "browse").glob("s3-hosts_web-2-*.sqlite3")
    assert str(browse_catalog) in rebuild.stdout and "not this host's own" in rebuild.stdout
    # This host's catalog and repository are as they were.
    assert catalog_contents(here) == own_before
    assert sorted(p.relative_to(here.repo) for p in here.repo.rglob("*")) == repo_before

    listing = browsed(here, "list", "--json")
    assert listing.returncode == ExitCode.OK, listing.stderr
    other_sets, _ = catalog_contents(other)
    assert {s["id"] for s in json.loads(listing.stdout)} == set(other_sets)
    health = browsed(here, "health")
    assert health.returncode == ExitCode.OK, health.stdout + health.stderr
    assert f"browsed repository  ok     s3://{BUCKET}/{OTHER}, read-only" in health.stdout
    assert "browsing read-only: no schedules run here" in health.stdout
    for set_id in other_sets:
        verify = browsed(here, "verify", set_id, "--read-data")
        assert verify.returncode == ExitCode.OK, verify.stdout + verify.stderr
    target = here.root / "web-2.env"
    restore = browsed(here, "restore", "secrets", "latest", "--to", str(target))
    assert restore.returncode == ExitCode.OK, restore.stderr
    assert target.read_text() == "API_TOKEN=web-2's\n"
    assert (here.root / "app.env").read_text() == "API_TOKEN=ours\n"
    restored = here.root / "web-2-files"
    restore = browsed(here, "restore", "files", "latest", "--target", str(restored))
    assert restore.returncode == ExitCode.OK, restore.stderr
    assert sorted(p.name for p in restored.rglob("*.txt")) == sorted(
        p.name for p in other.data.glob("*.txt")
    )

    # Nothing of this host went to the other's prefix, nor did its own list change.
    assert s3_objects(s3_server, OTHER) == bucket_before
    assert catalog_contents(here) == own_before


WRITING_COMMANDS = [
    ("backup", "files"),
    ("backup", "full"),
    ("cleanup",),
    ("prune",),
    ("prune", "--dry-run"),
    ("repair",),
    ("sync",),
    ("sync", "--dry-run"),
    ("rekey",),
    ("test",),
    ("--run-scheduled",),
]


def test_every_verb_that_writes_is_refused_while_browsing(hosts, s3_server):
    here, other = hosts
    bucket_before = s3_objects(s3_server, OTHER)
    for command in WRITING_COMMANDS:
        refused = browsed(here, *command)
        assert refused.returncode == ExitCode.USAGE, (command, refused.stdout, refused.stderr)
        [line] = refused.stderr.strip().splitlines()
        assert f"refused while browsing s3://{BUCKET}/{OTHER} read-only" in line, command

    other_sets, _ = catalog_contents(other)
    settings = load_settings(environ={"BACKUP_BROWSE": BROWSE}, env_file=here.env_file)
    with Workspace.open(settings) as workspace:
        assert workspace.settings.catalog_path != here.root / "catalog.sqlite3"
        with pytest.raises(ReadOnlyBrowseError, match="`delete` is refused while browsing"):
            run_verb(workspace, "delete", Request(reference=sorted(other_sets)[0]))
        # Below the verbs too: the browsed prefix refuses every write through the face.
        with pytest.raises(ReadOnlyBrowseError), workspace.repository.open_write("x/y"):
            pass
        some_key = sorted(bucket_before)[-1].removeprefix(f"{OTHER}/")
        with pytest.raises(ReadOnlyBrowseError):
            workspace.repository.delete(some_key)
    assert s3_objects(s3_server, OTHER) == bucket_before


def test_browse_needs_a_bucket_and_a_prefix_that_holds_backups(tmp_path, isolated_env, s3_server):
    s3_server.create_bucket(BUCKET)
    here = make_secrets_env(tmp_path / "here")
    here.set(**s3_settings(s3_server, "hosts/here"))
    bad = here.cli_process("--browse", "web-2", "list")
    assert bad.returncode == ExitCode.INVALID_SETTINGS
    assert "BACKUP_BROWSE: expected s3:PREFIX" in bad.stderr
    nothing = here.cli_process("catalog", "rebuild", "--from", "s3", "--prefix", "hosts/nobody")
    assert nothing.returncode == ExitCode.NOT_FOUND
    [line] = nothing.stderr.strip().splitlines()
    assert f"s3://{BUCKET}/hosts/nobody holds no repository" in line
    assert "BACKUP_BROWSE" in line
    usage = here.cli_process("catalog", "rebuild", "--prefix", OTHER)
    assert usage.returncode == ExitCode.USAGE
    assert "--from s3 --prefix P" in usage.stderr


async def test_the_console_browses_read_only(hosts, monkeypatch):
    """BACKUP_BROWSE (what --browse sets for the console and its job processes): the
    Catalog lists the other host's backups, no schedules run here."""
    from jarvis_tui.app import make_app
    from tests.console_fixtures import screen_words, wait_until

    here, other = hosts
    rebuild = here.cli_process("catalog", "rebuild", "--from", "s3", "--prefix", OTHER)
    assert rebuild.returncode == ExitCode.OK, rebuild.stderr
    own_sets, _ = catalog_contents(here)
    other_sets, _ = catalog_contents(other)
    monkeypatch.setenv("BACKUP_BROWSE", BROWSE)
    app = make_app(here.env_file, poll_seconds=0.2)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_until(pilot, lambda: "browsing read-only" in app.scheduler_note)
        await pilot.press("2")
        await wait_until(pilot, lambda: all(s in screen_words(app) for s in other_sets))
        assert not any(s in screen_words(app) for s in own_sets if s not in other_sets)
    assert app.scheduler.scheduler is None  # never elected: nothing fires here


def test_the_consoles_job_process_refuses_writes_while_browsing(hosts, s3_server, monkeypatch):
    """The console runs its jobs in a child process of their own: refused there too."""
    from jarvis_tui.job_process import ActionSpec, run_in_process

    here, other = hosts
    bucket_before = s3_objects(s3_server, OTHER)
    other_sets, _ = catalog_contents(other)
    monkeypatch.setenv("BACKUP_BROWSE", BROWSE)
    for spec in (
        ActionSpec("backup", Request(kind="files")),
        ActionSpec("delete", Request(reference=sorted(other_sets)[0])),
        ActionSpec("sync"),
    ):
        outcome = run_in_process(here.env_file, spec, lambda update: None)
        assert outcome.error and "refused while browsing" in outcome.error, spec
    assert s3_objects(s3_server, OTHER) == bucket_before
    settings = load_settings(environ={"BACKUP_BROWSE": BROWSE}, env_file=here.env_file)
    with Workspace.open(settings) as workspace:  # refused before any set was begun
        assert workspace.catalog.list_backup_sets() == []
