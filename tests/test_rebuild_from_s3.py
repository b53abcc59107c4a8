"""`catalog rebuild --from s3`: a fresh host with only the settings and the key, against
moto's S3 over HTTP on loopback, the CLI in processes of its own."""

import json
from pathlib import Path

import pytest

from engines.pipeline.artifacts import SIDECAR_SUFFIX
from jarvis_tui.exit_codes import ExitCode
from tests.support.files_env import FilesEnv, make_secrets_env
from tests.support.s3_hosts import (
    BUCKET,
    PREFIX,
    backed_up_host,
    catalog_contents,
    copy_states,
    s3_objects,
    s3_settings,
    wipe_host,
)


@pytest.fixture
def host(tmp_path, isolated_env, s3_server) -> FilesEnv:
    s3_server.create_bucket(BUCKET)
    return backed_up_host(tmp_path / "host", s3_server)


def test_a_rebuild_from_s3_into_an_empty_catalog_equals_the_original(host, s3_server):
    host.set(BACKUP_CONFIG_PATHS=str(host.root / "no-such-folder"))
    assert host.cli("backup", "full") != ExitCode.OK  # a partial set: files and secrets
    sets, artifacts = catalog_contents(host)
    assert len(sets) == 4 and sorted(s[2] for s in sets.values()) == [
        "complete",
        "complete",
        "complete",
        "partial",
    ]
    stored_id = s3_objects(s3_server)[f"{PREFIX}/.repository-id"]
    wipe_host(host)

    rebuild = host.cli_process("catalog", "rebuild", "--from", "s3")
    assert rebuild.returncode == ExitCode.OK, rebuild.stderr
    assert f"imported {len(artifacts)} artifact(s)" in rebuild.stdout
    assert catalog_contents(host) == (sets, artifacts)
    # Stored on S3, and nowhere else: the repository of this host holds none of it.
    assert copy_states(host) == {relpath: {"s3": "stored"} for relpath in artifacts}
    # The repository took the copy's id, which every artifact is sealed with.
    assert (host.repo / ".repository-id").read_bytes() == stored_id
    assert sorted(p.name for p in host.repo.iterdir() if p.name != ".lock") == [".repository-id"]

    listing = host.cli_process("list", "--json")
    assert listing.returncode == ExitCode.OK, listing.stderr
    assert {s["id"]: s["status"] for s in json.loads(listing.stdout)} == {
        set_id: status for set_id, (_, _, status, _) in sets.items()
    }
    for set_id in sets:  # every artifact read straight from S3 and authenticated
        verify = host.cli_process("verify", set_id, "--read-data")
        assert verify.returncode == ExitCode.OK, verify.stdout + verify.stderr
    (host.root / "app.env").write_text("API_TOKEN=changed\n")
    restore = host.cli_process("restore", "secrets", "latest", "--force")
    assert restore.returncode == ExitCode.OK, restore.stderr
    assert (host.root / "app.env").read_text() == "API_TOKEN=first\n"

    # Run again, nothing changes; after a pull the local copies would count too.
    again = host.cli_process("catalog", "rebuild", "--from", "s3")
    assert again.returncode == ExitCode.OK, again.stderr
    assert catalog_contents(host) == (sets, artifacts)


def test_artifacts_also_in_the_repository_are_recorded_stored_in_both(host):
    sets, artifacts = catalog_contents(host)
    for suffix in ("", "-wal", "-shm"):  # only the catalog lost; the repository kept
        Path(f"{host.root / 'catalog.sqlite3'}{suffix}").unlink(missing_ok=True)
    rebuild = host.cli_process("catalog", "rebuild", "--from", "s3")
    assert rebuild.returncode == ExitCode.OK, rebuild.stderr
    assert catalog_contents(host) == (sets, artifacts)
    assert copy_states(host) == {r: {"local": "stored", "s3": "stored"} for r in artifacts}


def test_a_forged_sidecar_on_s3_is_reported_and_not_trusted(host, s3_server):
    sets, artifacts = catalog_contents(host)
    [secrets_key] = [r for r in artifacts if r.startswith("secrets/")]
    client = s3_server.client()
    sidecar_key = f"{PREFIX}/{secrets_key}{SIDECAR_SUFFIX}"
    forged = json.loads(client.get_object(Bucket=BUCKET, Key=sidecar_key)["Body"].read())
    forged["original_path"] = str(host.root / "victim.txt")  # edited without the key
    forged["set_id"] = "20990101T000000Z-forged"
    client.put_object(Bucket=BUCKET, Key=sidecar_key, Body=json.dumps(forged).encode())
    wipe_host(host)

    rebuild = host.cli_process("catalog", "rebuild", "--from", "s3")
    assert rebuild.returncode == ExitCode.INTEGRITY, rebuild.stderr
    assert f"sidecar ignored: {secrets_key}" in rebuild.stderr
    assert "original_path" in rebuild.stderr and "set_id" in rebuild.stderr
    # Imported all the same, from the metadata sealed inside: the sidecar's words nowhere.
    assert catalog_contents(host) == (sets, artifacts)
    with host.workspace() as workspace:
        row = workspace.catalog.find_artifact_by_relpath(secrets_key)
        assert row.metadata["original_path"] == str(host.root / "app.env")


def test_a_swapped_object_on_s3_is_refused_not_imported(host, s3_server):
    _, artifacts = catalog_contents(host)
    files_snapshots = sorted(r for r in artifacts if r.startswith("files/"))
    assert len(files_snapshots) == 2
    older, newer = files_snapshots
    client = s3_server.client()
    # The newer snapshot's name now holds the older one's bytes (and a sidecar to match).
    for suffix in ("", SIDECAR_SUFFIX):
        body = client.get_object(Bucket=BUCKET, Key=f"{PREFIX}/{older}{suffix}")["Body"].read()
        client.put_object(Bucket=BUCKET, Key=f"{PREFIX}/{newer}{suffix}", Body=body)
    wipe_host(host)

    rebuild = host.cli_process("catalog", "rebuild", "--from", "s3")
    assert rebuild.returncode == ExitCode.INTEGRITY, rebuild.stderr
    assert f"skipped: {newer}: failed authentication" in rebuild.stderr
    rebuilt_sets, rebuilt = catalog_contents(host)
    assert newer not in rebuilt
    assert rebuilt == {r: row for r, row in artifacts.items() if r != newer}
    # Its set (files only) lost its one artifact: it is not listed as a backup to restore.
    assert artifacts[newer][0] not in rebuilt_sets


def test_a_repository_of_its_own_is_never_mixed_with_the_copy(host):
    wipe_host(host)
    host.repo.mkdir()
    (host.repo / ".repository-id").write_text("0" * 32 + "\n")  # another repository's

    rebuild = host.cli_process("catalog", "rebuild", "--from", "s3")
    assert rebuild.returncode == ExitCode.INTEGRITY
    [line] = rebuild.stderr.strip().splitlines()
    assert "is repository 00000000000000000000000000000000" in line
    assert "--prefix" in line and "catalog was not changed" in line
    assert catalog_contents(host) == ({}, {})


def test_a_prefix_with_no_repository_id_says_what_to_do(tmp_path, isolated_env, s3_server):
    s3_server.create_bucket(BUCKET)
    env = make_secrets_env(tmp_path / "fresh")
    env.set(**s3_settings(s3_server, "hosts/nobody"))
    rebuild = env.cli_process("catalog", "rebuild", "--from", "s3")
    assert rebuild.returncode == ExitCode.NOT_FOUND
    [line] = rebuild.stderr.strip().splitlines()
    assert f"s3://{BUCKET}/hosts/nobody holds no repository id" in line and "sync" in line


def test_without_s3_settings_from_s3_is_one_line(tmp_path, isolated_env):
    env = make_secrets_env(tmp_path / "plain")
    rebuild = env.cli_process("catalog", "rebuild", "--from", "s3")
    assert rebuild.returncode == ExitCode.INVALID_SETTINGS
    assert "no s3 copy is configured" in rebuild.stderr and "S3_BUCKET" in rebuild.stderr


def test_a_copy_is_refused_by_a_prefix_holding_another_repository(host, s3_server):
    """Two hosts given the same S3_PREFIX: the second one's copy sends nothing there."""
    before = s3_objects(s3_server)
    other = backed_up_host(host.root.parent / "other", s3_server)
    with other.workspace() as workspace:
        states = {c.state for a in workspace.catalog.all_artifacts()
                  for c in workspace.catalog.copies_of(a.id) if c.destination == "s3"}  # fmt: skip
        alerts = [a.message for a in workspace.catalog.list_alerts()]
    assert states == {"failed"}
    assert any("copy failed at .repository-id" in m and "another repository" in m for m in alerts)
    assert s3_objects(s3_server) == before


def test_a_plain_rebuild_after_one_from_s3_keeps_what_only_s3_holds(host, s3_server):
    sets, artifacts = catalog_contents(host)
    wipe_host(host)
    assert host.cli_process("catalog", "rebuild", "--from", "s3").returncode == ExitCode.OK

    # The repository holds none of it, S3 all of it: no row is dropped.
    plain = host.cli_process("catalog", "rebuild")
    assert plain.returncode == ExitCode.OK, plain.stderr
    assert catalog_contents(host) == (sets, artifacts)
    assert copy_states(host) == {relpath: {"s3": "stored"} for relpath in artifacts}

    # S3 unreachable: what it holds cannot be listed, so no row is dropped either.
    host.set(S3_ENDPOINT_URL="http://127.0.0.1:9")
    blind = host.cli_process("catalog", "rebuild")
    assert "Traceback" not in blind.stderr
    assert "no catalog row was dropped" in blind.stderr, blind.stdout + blind.stderr
    assert catalog_contents(host) == (sets, artifacts)
