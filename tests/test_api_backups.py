"""`GET /api/backups` and `GET /api/backups/{id}` on a real server, against what the CLI's
`list --json` says of the same catalog."""

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from jarvis_tui.exit_codes import ExitCode
from tests.support.api_server import TOKEN, ApiServer
from tests.support.files_env import FilesEnv, make_files_env, make_secrets_env, random_text
from tests.support.s3_hosts import BUCKET, s3_settings
from tests.support.s3_read_only import ReadOnlyS3Proxy

_NEXT = re.compile(r'^<(?P<url>[^>]+)>; rel="next"$')


def listed(env: FilesEnv, *args: str):
    result = env.cli_process("list", *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def walk(client: httpx.Client, url: str) -> tuple[list[list[str]], set[str]]:
    """Every page from `url` on, following rel="next"; the X-Total-Count values seen."""
    pages, totals = [], set()
    while url:
        answer = client.get(url)
        assert answer.status_code == 200, answer.text
        pages.append([item["id"] for item in answer.json()])
        totals.add(answer.headers["X-Total-Count"])
        link = answer.headers.get("Link")
        url = _NEXT.match(link)["url"] if link else ""
    return pages, totals


def error_of(answer: httpx.Response, status: int) -> dict:
    assert answer.status_code == status, answer.text
    return answer.json()


@pytest.fixture(scope="module")
def backed_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FilesEnv, ApiServer]]:
    """Files, secrets and config backups, then a full one (files, secrets, config; the
    databases are not configured, so skipped), and a server on their catalog."""
    env = make_secrets_env(tmp_path_factory.mktemp("api-backups"))
    (env.data / "a.txt").write_bytes(random_text(5_000))
    env.set(BACKUP_CONFIG_PATHS=str(env.root / "app.env"), JARVIS_API_TOKEN=TOKEN)
    for kind in ("files", "secrets", "config", "full"):
        assert env.cli("backup", kind) == ExitCode.OK
    with ApiServer(env.env_file) as server:
        yield env, server


@pytest.fixture
def client(backed_up: tuple[FilesEnv, ApiServer]) -> Iterator[httpx.Client]:
    with backed_up[1].client() as opened:
        yield opened


def test_an_empty_catalog_lists_nothing(tmp_path: Path) -> None:
    env = make_files_env(tmp_path)
    env.set(JARVIS_API_TOKEN=TOKEN)
    with ApiServer(env.env_file) as server, server.client() as client:
        answer = client.get("/api/backups")
        assert answer.status_code == 200
        assert answer.json() == []
        assert answer.headers["X-Total-Count"] == "0"
        assert "Link" not in answer.headers
        missing = error_of(client.get("/api/backups/latest"), 404)
        assert missing["code"] == "not_found"


def test_sets_are_newest_first_as_the_cli_lists_them(backed_up, client) -> None:
    env, _ = backed_up
    cli = listed(env)
    answer = client.get("/api/backups")
    assert answer.headers["X-Total-Count"] == "4"
    items = answer.json()
    assert [item["id"] for item in items] == [s["id"] for s in cli]
    assert [item["kind"] for item in items] == ["full", "config", "secrets", "files"]
    for item, row in zip(items, cli, strict=True):
        assert (item["status"], item["tier"], item["size"]) == (
            row["status"],
            row["tier"],
            row["stored_size"],
        )
        assert item["artifact_count"] == row["artifact_count"] == len(row["artifacts"])
        assert item["where"]["summary"] == row["where"]["where"] == "local"
        assert item["verification"] == {
            "state": "ok",
            "verified": len(row["artifacts"]),
            "failed": 0,
            "unverified": 0,
            "last_verified_at": item["verification"]["last_verified_at"],
        }
        assert item["created_at"].endswith("+00:00") and "artifacts" not in item
    full = items[0]
    assert full["parts"] == [
        {"source": "postgres", "state": "skipped"},
        {"source": "redis", "state": "skipped"},
        {"source": "files", "state": "ok"},
        {"source": "secrets", "state": "ok"},
        {"source": "config", "state": "ok"},
    ]
    assert items[-1]["parts"] == [{"source": "files", "state": "ok"}]


def test_the_detail_matches_list_set(backed_up, client) -> None:
    env, _ = backed_up
    for row in listed(env):
        detail = client.get(f"/api/backups/{row['id']}").json()
        assert detail["id"] == row["id"] and detail["note"] == row["note"]
        assert [
            (a["relpath"], a["source"], a["sha256"], a["size"], a["key_id"], a["compression"])
            for a in detail["artifacts"]
        ] == [
            (a["relpath"], a["source"], a["checksum"], a["stored_size"], a["key_id"], a["codec"])
            for a in listed(env, row["id"])["artifacts"]
        ]
        for artifact in detail["artifacts"]:
            assert re.fullmatch(r"[0-9a-f]{64}", artifact["sha256"])
            assert artifact["copies"] == {
                "local": {"state": "stored", "error": None, "updated_at": None}
            }
            assert artifact["verification"]["state"] == "ok"
            assert artifact["verification"]["verified_at"].endswith("+00:00")
        assert detail["gaps"] == []


def test_latest_is_the_newest_complete_set(backed_up, client) -> None:
    env, _ = backed_up
    newest = listed(env)[0]["id"]
    assert client.get("/api/backups/latest").json()["id"] == newest
    assert listed(env, "latest")["id"] == newest


def test_an_unknown_id_is_404_naming_it(client) -> None:
    body = error_of(client.get("/api/backups/files_1999-01-01_000000"), 404)
    assert body["code"] == "not_found"
    assert "'files_1999-01-01_000000'" in body["message"]


def test_filters(backed_up, client) -> None:
    env, _ = backed_up
    cli = listed(env)
    ids = {row["kind"]: row["id"] for row in cli}

    def found(**params: str) -> list[str]:
        answer = client.get("/api/backups", params=params)
        assert answer.status_code == 200, answer.text
        assert answer.headers["X-Total-Count"] == str(len(answer.json()))
        return [item["id"] for item in answer.json()]

    assert found(kind="files") == [ids["files"]]
    assert found(kind="full") == [ids["full"]]
    assert found(source="secrets") == [ids["full"], ids["secrets"]]
    assert found(source="postgres") == []
    assert found(status="complete") == [row["id"] for row in cli]
    assert found(status="failed") == []
    # Times from the catalog itself: the sets at or after the third newest's start.
    third = cli[2]["created_at"].replace(" ", "T")
    assert found(since=third) == [row["id"] for row in cli[:3]]
    assert found(until=third) == [cli[3]["id"]]
    assert found(since=third, until=cli[1]["created_at"].replace(" ", "T"), kind="secrets") == [
        ids["secrets"]
    ]


def test_pages_follow_the_link_header_and_give_each_set_once(backed_up, client) -> None:
    env, _ = backed_up
    everything = [row["id"] for row in listed(env)]
    pages, totals = walk(client, "/api/backups?limit=1")
    assert pages == [[set_id] for set_id in everything]
    assert totals == {"4"}
    pages, totals = walk(client, "/api/backups?limit=3&status=complete")
    assert pages == [everything[:3], everything[3:]]
    assert totals == {"4"}
    pages, _ = walk(client, "/api/backups?limit=1&source=files")
    assert pages == [[everything[0]], [everything[-1]]]  # the full set and the files set


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"kind": "daily"}, "kind"),
        ({"source": "full"}, "source"),  # a kind of set, not a source
        ({"status": "done"}, "status"),
        ({"since": "2026-12-06T02:00:00"}, "since"),  # no zone
        ({"until": "yesterday"}, "until"),
        ({"since": "0001-01-01T00:00:00+05:00"}, "since"),
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "MjAyNnwx"}, "cursor"),  # base64 of '2026|1': not the catalog's time
        ({"stauts": "failed"}, "stauts"),  # not ignored, as if it had filtered
    ],
)
def test_a_bad_filter_is_400_naming_it(client, params: dict[str, str], field: str) -> None:
    body = error_of(client.get("/api/backups", params=params), 400)
    assert body["code"] == "bad_request"
    assert body["field"] == field
    assert body["message"].startswith(f"{field}: ")


def test_an_unescaped_plus_in_a_time_is_explained(client) -> None:
    answer = client.get("/api/backups?since=2026-12-06T02:00:00+02:00")  # + is a space
    body = error_of(answer, 400)
    assert body["field"] == "since"
    assert "%2B" in body["message"]
    assert client.get("/api/backups?since=2026-12-06T02:00:00%2B02:00").status_code == 200


def test_a_backup_made_by_the_cli_is_seen_by_the_next_request(tmp_path: Path) -> None:
    env = make_files_env(tmp_path)
    (env.data / "a.txt").write_bytes(b"first")
    env.set(JARVIS_API_TOKEN=TOKEN)
    with ApiServer(env.env_file) as server, server.client() as client:
        assert client.get("/api/backups").json() == []
        result = env.cli_process("backup", "files")
        assert result.returncode == 0, result.stderr
        (made,) = listed(env)
        (item,) = client.get("/api/backups").json()
        assert item["id"] == made["id"] and item["status"] == "complete"
        assert client.get("/api/backups/latest").json()["id"] == made["id"]


def test_copies_on_s3_stored_and_failed_with_why(tmp_path: Path, s3_server) -> None:
    env = make_files_env(tmp_path)
    (env.data / "a.txt").write_bytes(random_text(20_000))
    s3_server.create_bucket(BUCKET)
    env.set(JARVIS_API_TOKEN=TOKEN)
    # The first backup is copied; the second's upload is refused (a read-only door to the
    # bucket: a later backup would copy what is missing, so the refused one comes last).
    env.set(**s3_settings(s3_server))
    assert env.cli("backup", "files") == ExitCode.OK
    (env.data / "b.txt").write_bytes(random_text(20_000, 2))
    with ReadOnlyS3Proxy(s3_server.endpoint_url) as proxy:
        env.set(**s3_settings(s3_server, endpoint_url=proxy.endpoint_url))
        assert env.cli("backup", "files") == ExitCode.OK
    env.set(**s3_settings(s3_server))
    failed_id, stored_id = (row["id"] for row in listed(env))

    with ApiServer(env.env_file) as server, server.client() as client:
        failed, stored = client.get("/api/backups").json()
        assert (stored["id"], failed["id"]) == (stored_id, failed_id)
        assert stored["where"] == {
            "summary": "local+s3",
            "artifacts": 1,
            "local": 1,
            "complete_offsite": True,
            "destinations": {"s3": {"complete": True, "stored": 1, "missing": 0, "failed": 0}},
        }
        assert failed["where"]["summary"] == "local, s3 failed 1"
        assert failed["where"]["complete_offsite"] is False
        assert failed["where"]["destinations"]["s3"]["failed"] == 1

        (artifact,) = client.get(f"/api/backups/{stored_id}").json()["artifacts"]
        assert artifact["copies"]["s3"]["state"] == "stored"
        assert artifact["copies"]["s3"]["updated_at"].endswith("+00:00")

        detail = client.get(f"/api/backups/{failed_id}").json()
        (artifact,) = detail["artifacts"]
        assert artifact["copies"]["local"]["state"] == "stored"
        copy = artifact["copies"]["s3"]
        assert copy["state"] == "failed"
        assert "AccessDenied" in copy["error"]
        (row,) = listed(env, failed_id)["where"]["destinations"]["s3"]["failed"]
        assert copy["error"] == row["error"]
        assert detail["gaps"] == [f"s3: {artifact['relpath']} failed: {copy['error']}"]


def test_a_failed_and_a_partial_set_say_which_part_failed_and_why(tmp_path: Path) -> None:
    env = make_files_env(tmp_path)
    (env.data / "a.txt").write_bytes(b"kept")
    missing = tmp_path / "no-such.env"
    env.set(JARVIS_API_TOKEN=TOKEN, BACKUP_SECRET_FILES=str(missing))
    assert env.cli("backup", "secrets") != ExitCode.OK
    assert env.cli("backup", "full") != ExitCode.OK  # files stored, secrets failed
    partial_id, failed_id = (row["id"] for row in listed(env))

    with ApiServer(env.env_file) as server, server.client() as client:
        partial, failed = client.get("/api/backups").json()
        assert (partial["id"], partial["status"]) == (partial_id, "partial")
        assert [(p["source"], p["state"]) for p in partial["parts"]] == [
            ("postgres", "skipped"),
            ("redis", "skipped"),
            ("files", "ok"),
            ("secrets", "failed"),
            ("config", "skipped"),
        ]
        assert str(missing) in partial["error"]
        assert (failed["id"], failed["status"]) == (failed_id, "failed")
        assert failed["parts"] == [{"source": "secrets", "state": "failed"}]
        assert failed["artifact_count"] == 0 and failed["where"]["summary"] == "-"
        assert failed["verification"]["state"] is None
        assert [item["id"] for item in client.get("/api/backups?status=partial").json()] == [
            partial_id
        ]
        # `latest` is the newest complete set: there is none.
        assert error_of(client.get("/api/backups/latest"), 404)["code"] == "not_found"
