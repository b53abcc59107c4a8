"""Where each backup lives: `list`, `list SET`, `status` and `health` on copy states that
real backups and `sync` recorded against moto's S3 over HTTP on loopback; a failed upload
comes from a proxy that answers every write with 403 AccessDenied.
"""

import json
import shutil

import pytest

from engines.repository.offsite import offsite_status
from engines.repository.whereabouts import set_places
from jarvis_tui.exit_codes import ExitCode
from tests.support.files_env import FilesEnv, make_files_env, random_text
from tests.support.s3_read_only import ReadOnlyS3Proxy

BUCKET = "jarvis-offsite"
PREFIX = "hosts/jarvis-1"


@pytest.fixture
def env(tmp_path, isolated_env) -> FilesEnv:
    files = make_files_env(tmp_path / "files")
    for number in range(4):
        (files.data / f"f{number}.txt").write_bytes(random_text(20_000, number))
    return files


def use_s3(env: FilesEnv, s3_server, endpoint_url: str | None = None) -> None:
    env.set(
        S3_ENABLED="true",
        S3_BUCKET=BUCKET,
        S3_ENDPOINT_URL=endpoint_url or s3_server.endpoint_url,
        S3_ACCESS_KEY=s3_server.access_key,
        S3_SECRET_KEY=s3_server.secret_key,
        AWS_REGION=s3_server.region,
        S3_PREFIX=PREFIX,
    )


def cli_out(env: FilesEnv, capsys, *args: str, expect: int | None = ExitCode.OK) -> str:
    """What the CLI prints for `args`, its exit code checked against `expect`."""
    capsys.readouterr()
    code = env.cli(*args)
    out = capsys.readouterr().out
    if expect is not None:
        assert code == expect, (args, out)
    return out


def set_ids(env: FilesEnv) -> list[str]:
    """Newest first."""
    with env.workspace() as workspace:
        return [s.id for s in workspace.catalog.list_backup_sets()]


def row_of(listing: str, set_id: str) -> str:
    (line,) = [line for line in listing.splitlines() if line.startswith(set_id)]
    return line


def health_check(env: FilesEnv, capsys, name: str) -> dict | None:
    out = cli_out(env, capsys, "health", "--json", expect=None)
    checks = {check["name"]: check for check in json.loads(out)["checks"]}
    return checks.get(name)


def backup_through_read_only_proxy(env: FilesEnv, s3_server, capsys) -> str:
    """A files backup whose copy to S3 is refused (403): stored locally, copy failed."""
    with ReadOnlyS3Proxy(s3_server.endpoint_url) as proxy:
        use_s3(env, s3_server, proxy.endpoint_url)
        capsys.readouterr()
        assert env.cli("backup", "files") == ExitCode.OK  # stored here: the backup is made
    use_s3(env, s3_server)
    set_id = set_ids(env)[0]
    # ... and says its off-site copy is not, beside the alert: no silent success.
    warning = capsys.readouterr().err
    assert f"warning: backup {set_id} is stored here but not yet on s3" in warning
    assert "AccessDenied" in warning and "`jarvis-tui sync` retries" in warning
    return set_id


def test_a_failed_upload_then_sync_then_a_newer_failure_as_list_status_and_health_say(
    env, s3_server, capsys
):
    s3_server.create_bucket(BUCKET)
    first = backup_through_read_only_proxy(env, s3_server, capsys)

    with env.workspace() as workspace:
        places = set_places(workspace.catalog, [first], ("s3",))[first]
    (artifact,) = places.artifacts
    assert artifact.local
    assert artifact.state_on("s3") == "failed"
    assert "AccessDenied" in (artifact.error_on("s3") or "")
    assert not places.complete_offsite
    assert places.summary == "local, s3 failed 1"

    out = cli_out(env, capsys, "list")
    assert out.splitlines()[0].split()[-1] == "WHERE"
    assert row_of(out, first).endswith("local, s3 failed 1")

    out = cli_out(env, capsys, "list", first, "--json")
    where = json.loads(out)["where"]
    assert where["complete_offsite"] is False
    assert where["destinations"]["s3"]["stored"] == 0
    (failed,) = where["destinations"]["s3"]["failed"]
    assert failed["relpath"] == artifact.relpath
    assert "AccessDenied" in failed["error"]
    assert where["artifacts"][0]["local"] == "stored"
    assert where["artifacts"][0]["s3"]["state"] == "failed"

    out = cli_out(env, capsys, "list", "latest")
    assert "where: local, s3 failed 1; NOT complete off-site" in out
    table_row = row_of_artifact(out, artifact.relpath)
    assert table_row.split()[-2:] == ["stored", "failed"]
    assert f"s3: {artifact.relpath} failed: " in out
    assert "jarvis-tui sync" in out

    check = health_check(env, capsys, "s3 copies")
    assert check is not None and check["ok"] is False
    assert f"newest backup {first} is not complete there" in check["detail"]
    assert "AccessDenied" in check["detail"]
    assert "1 artifact copy(ies) recorded failed" in check["detail"]
    assert "jarvis-tui sync" in check["detail"]

    out = cli_out(env, capsys, "status", "--json")
    (offsite,) = json.loads(out)["offsite"]
    assert offsite["destination"] == "s3"
    assert (offsite["complete_sets"], offsite["incomplete_sets"]) == (0, 1)
    assert offsite["failed_copies"] == 1
    assert offsite["last_copy_at"] is None
    assert offsite["newest_not_offsite"]["id"] == first

    # sync through the real endpoint: the set is complete off-site everywhere it is asked.
    cli_out(env, capsys, "sync")
    out = cli_out(env, capsys, "list")
    assert row_of(out, first).endswith("local+s3")
    out = cli_out(env, capsys, "list", first)
    assert "where: local+s3; complete off-site" in out
    assert row_of_artifact(out, artifact.relpath).split()[-2:] == ["stored", "stored"]
    check = health_check(env, capsys, "s3 copies")
    assert check["ok"] is True, check
    assert f"the newest backups ({first}) are complete there" in check["detail"]
    out = cli_out(env, capsys, "status", "--json")
    (offsite,) = json.loads(out)["offsite"]
    assert (offsite["complete_sets"], offsite["incomplete_sets"]) == (1, 0)
    assert offsite["failed_copies"] == 0
    assert offsite["newest_not_offsite"] is None
    assert offsite["last_copy_at"] is not None

    # A newer backup whose copy fails again: the older set stays off-site, the newest is not.
    (env.data / "new.txt").write_bytes(random_text(30_000, 77))
    second = backup_through_read_only_proxy(env, s3_server, capsys)
    assert second != first
    with env.workspace() as workspace:
        (status,) = offsite_status(workspace.catalog, ("s3",))
    assert (status.complete_sets, status.incomplete_sets) == (1, 1)
    assert status.newest_not_offsite is not None and status.newest_not_offsite.id == second
    assert status.newest_gaps and all("AccessDenied" in gap for gap in status.newest_gaps)
    out = cli_out(env, capsys, "status")
    assert "Off-site copies" in out
    (s3_row,) = [
        line for line in out.splitlines() if line.startswith("s3 ") and "lacks" not in line
    ]
    assert s3_row.split()[1:4] == ["1", "1", "1"]
    assert s3_row.split()[-1] == second
    assert f"s3 lacks, of {second}:" in out
    assert "run `jarvis-tui sync`" in out
    check = health_check(env, capsys, "s3 copies")
    assert check["ok"] is False
    assert f"newest backup {second} is not complete there" in check["detail"]
    assert first not in check["detail"]
    out = cli_out(env, capsys, "list")
    assert row_of(out, second).endswith("local, s3 failed 1")
    assert row_of(out, first).endswith("local+s3")


def row_of_artifact(out: str, relpath: str) -> str:
    (line,) = [line for line in out.splitlines() if line.startswith(relpath)]
    return line


def test_backups_made_before_s3_was_configured_are_missing_there_until_synced(
    env, s3_server, capsys
):
    assert env.cli("backup", "files") == ExitCode.OK
    (set_id,) = set_ids(env)
    s3_server.create_bucket(BUCKET)
    use_s3(env, s3_server)

    out = cli_out(env, capsys, "list")
    assert row_of(out, set_id).endswith("local, s3 missing 1")
    out = cli_out(env, capsys, "list", set_id, "--json")
    s3 = json.loads(out)["where"]["destinations"]["s3"]
    assert s3["complete"] is False and s3["failed"] == []
    assert len(s3["missing"]) == 1
    check = health_check(env, capsys, "s3 copies")
    assert check["ok"] is False
    assert "missing" in check["detail"] and "recorded failed" not in check["detail"]

    assert env.cli("sync") == ExitCode.OK
    with env.workspace() as workspace:
        places = set_places(workspace.catalog, None, ("s3",))[set_id]
    assert places.complete_offsite
    assert places.summary == "local+s3"

    # A fresh host: the repository and the catalog gone, the catalog rebuilt from S3.
    shutil.rmtree(env.repo)
    for path in env.root.glob("catalog.sqlite3*"):
        path.unlink()
    cli_out(env, capsys, "catalog", "rebuild", "--from", "s3")
    out = cli_out(env, capsys, "list")
    assert row_of(out, set_id).endswith("s3 only")
    out = cli_out(env, capsys, "list", set_id)
    assert "where: s3 only; complete off-site" in out
    assert out.count(" not in the repository") == 1
    with env.workspace() as workspace:
        places = set_places(workspace.catalog, [set_id], ("s3",))[set_id]
    assert places.complete_offsite and places.local_count == 0

    cli_out(env, capsys, "pull", "--latest")
    out = cli_out(env, capsys, "list")
    assert row_of(out, set_id).endswith("local+s3")


def test_without_a_copy_destination_nothing_new_is_shown(env, capsys):
    assert env.cli("backup", "files") == ExitCode.OK
    (set_id,) = set_ids(env)

    out = cli_out(env, capsys, "list")
    assert "WHERE" not in out
    assert out.splitlines()[0].split()[-1] == "VERIFIED"
    out = cli_out(env, capsys, "list", "--json")
    (listed,) = json.loads(out)
    assert listed["where"]["where"] == "local"
    assert listed["where"]["complete_offsite"] is None
    assert listed["where"]["destinations"] == {}
    out = cli_out(env, capsys, "list", set_id)
    assert "where: local\n" in out
    assert "off-site" not in out and "sync" not in out

    out = cli_out(env, capsys, "status")
    assert "Off-site" not in out
    out = cli_out(env, capsys, "status", "--json")
    assert json.loads(out)["offsite"] == []
    out = cli_out(env, capsys, "health", "--json", expect=None)
    assert not [c for c in json.loads(out)["checks"] if c["name"].endswith(" copies")]


def test_list_of_an_unknown_set_says_so_in_one_line(env, capsys):
    assert env.cli("backup", "files") == ExitCode.OK
    done = env.cli_process("list", "files_1999-01-01_000000")
    assert done.returncode == ExitCode.NOT_FOUND, done
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert "files_1999-01-01_000000" in done.stderr


def test_the_catalogs_counts_agree_with_each_sets_places(seeded_console):
    """offsite_status counts in SQL; set_places reads every copy: the two must agree, on a
    week of seeded sets with copies stored, failed, deleted and never made."""
    with seeded_console.catalog() as catalog:
        for number, artifact in enumerate(catalog.all_artifacts()):
            state = ("stored", "stored", "failed", "deleted", None)[number % 5]
            if state is not None:
                error = "AccessDenied" if state == "failed" else None
                catalog.set_copy_state(artifact.id, "s3", state, error)
        (status,) = offsite_status(catalog, ("s3",))
        finished = [s for s in catalog.list_backup_sets() if s.status != "running"]
        places = set_places(catalog, [s.id for s in finished], ("s3",))
    counted = [places[s.id] for s in finished if places[s.id].artifacts]
    complete = [p for p in counted if p.complete_offsite]
    assert 0 < len(complete) < len(counted)
    assert status.complete_sets == len(complete)
    assert status.incomplete_sets == len(counted) - len(complete)
    assert status.failed_copies == sum(len(p.on("s3", "failed")) for p in counted)
    newest = next(p for p in counted if not p.complete_offsite)
    assert status.newest_not_offsite is not None
    assert status.newest_not_offsite.id == newest.set_id
    assert list(status.newest_gaps) == newest.gaps("s3")
    assert status.last_copy_at is not None


def test_another_hosts_backups_browsed_read_only_live_on_s3_only(tmp_path, env, s3_server, capsys):
    s3_server.create_bucket(BUCKET)
    use_s3(env, s3_server)
    assert env.cli("backup", "files") == ExitCode.OK
    (set_id,) = set_ids(env)
    here = make_files_env(tmp_path / "here")
    use_s3(here, s3_server)
    here.set(S3_PREFIX="hosts/here")
    cli_out(here, capsys, "catalog", "rebuild", "--from", "s3", "--prefix", PREFIX)

    out = cli_out(here, capsys, "--browse", f"s3:{PREFIX}", "list")
    assert row_of(out, set_id).endswith("s3 only")
    out = cli_out(here, capsys, "--browse", f"s3:{PREFIX}", "list", set_id)
    assert "where: s3 only; complete off-site" in out
