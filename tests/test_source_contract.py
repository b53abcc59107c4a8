"""The contract every registered source keeps, against real servers and real folders.

For each source of the registry (`engines.sources.SOURCES`): back up through its CLI
command, verify the set, run its restore drill (`Source.verify_restore`), dry run a
restore into a scratch target and see that nothing changed, restore into that scratch
target and compare it with the original. A source joins the registry by joining
`RECIPES` below (how to seed an original, where its scratch target is, how to read both);
one registered without a recipe fails here rather than being skipped.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from engines.sources import SOURCES, source_entry, source_kinds
from engines.sources.base import Source
from engines.workspace import Workspace
from jarvis_tui.exit_codes import ExitCode
from tests.support.files_env import make_files_env, make_secrets_env, random_text, tree_of
from tests.support.pg_seed import PgCase
from tests.support.redis_seed import RedisCase, fingerprint, seed


@dataclass
class Case:
    """One source's original and scratch target, and the CLI with settings for them."""

    cli: Callable[..., int]
    workspace: Callable[[], Workspace]
    restore_args: tuple[str, ...]  # what sends `restore <kind>` to the scratch target
    original: Callable[[], Any]
    scratch: Callable[[], Any]  # the scratch target as `original` reads the original
    before_restore: Callable[[], None] = lambda: None


def postgres_case(request: pytest.FixtureRequest, tmp_path: Path) -> Case:
    """The seeded database restored as a second database on the same server."""
    pg = PgCase(request.getfixturevalue("postgres_server"), tmp_path)
    request.addfinalizer(pg.cleanup)
    scratch = f"{pg.source}_scratch"
    return Case(
        pg.cli,
        pg.workspace,
        ("--target-db", scratch),
        original=pg.fingerprint,
        scratch=lambda: pg.fingerprint(scratch) if scratch in pg.databases() else None,
    )


def redis_case(request: pytest.FixtureRequest, tmp_path: Path) -> Case:
    """The seeded server restored into a second, empty server."""
    original = request.getfixturevalue("redis_server")
    target = request.getfixturevalue("spare_redis_server")
    seed(original)
    target.flush()
    case = RedisCase(tmp_path, original)
    return Case(
        case.cli,
        case.workspace,
        (),
        original=lambda: fingerprint(original),
        scratch=lambda: fingerprint(target),
        before_restore=lambda: case.point_at(target),
    )


def files_case(request: pytest.FixtureRequest, tmp_path: Path) -> Case:
    """BACKUP_FILE_PATHS restored below a scratch folder."""
    request.getfixturevalue("isolated_env")
    env = make_files_env(tmp_path / "files")
    (env.data / "docs/deeper").mkdir(parents=True)
    (env.data / "docs/a.txt").write_text("alpha – ünïcödé\n")
    (env.data / "docs/deeper/big.txt").write_bytes(random_text(300_000))
    (env.data / "empty.bin").write_bytes(b"")
    (env.data / "link").symlink_to("docs/a.txt")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    restored = scratch / str(env.data).lstrip("/")
    return Case(
        env.cli,
        env.workspace,
        ("--target-dir", str(scratch)),
        original=lambda: tree_of(env.data),
        scratch=lambda: tree_of(restored) if restored.exists() else None,
    )


def secrets_case(request: pytest.FixtureRequest, tmp_path: Path) -> Case:
    """The `.env` file of BACKUP_SECRET_FILES restored as another file."""
    request.getfixturevalue("isolated_env")
    env = make_secrets_env(tmp_path / "files", token="contract-token")
    original = env.root / "app.env"
    scratch = tmp_path / "scratch.env"
    return Case(
        env.cli,
        env.workspace,
        ("--to", str(scratch)),
        original=original.read_bytes,
        scratch=lambda: scratch.read_bytes() if scratch.exists() else None,
    )


def config_case(request: pytest.FixtureRequest, tmp_path: Path) -> Case:
    """BACKUP_CONFIG_PATHS restored below a scratch folder."""
    request.getfixturevalue("isolated_env")
    env = make_files_env(tmp_path / "files")
    config = env.root / "app-config"
    (config / "nested").mkdir(parents=True)
    (config / "app.yaml").write_text("debug: false\n")
    (config / "nested/db.yaml").write_text("pool: 5\n")
    env.set(BACKUP_CONFIG_PATHS=str(config))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    restored = scratch / str(config).lstrip("/")
    return Case(
        env.cli,
        env.workspace,
        ("--target-dir", str(scratch)),
        original=lambda: _files_of(config),
        scratch=lambda: _files_of(restored) if restored.exists() else None,
    )


def _files_of(folder: Path) -> dict[str, tuple]:
    """Kind, mode and content below `folder`: what a config restore promises to keep."""
    return {name: entry[:2] + entry[3:] for name, entry in tree_of(folder).items()}


# kind -> how to make its original and its scratch target. Every registered source needs one.
RECIPES: dict[str, Callable[[pytest.FixtureRequest, Path], Case]] = {
    "postgres": postgres_case,
    "redis": redis_case,
    "files": files_case,
    "secrets": secrets_case,
    "config": config_case,
}


def _restore_drills(case: Case, kind: str, set_id: str) -> list[str | None]:
    source = source_entry(kind).source
    with case.workspace() as workspace:
        artifacts = workspace.catalog.artifacts_of(set_id)

        def drill(context) -> list[str | None]:
            return [source.verify_restore(workspace, a, context) for a in artifacts]

        return workspace.run_job("verify", f"contract drill of {kind}", drill)


@pytest.mark.parametrize("kind", source_kinds())
def test_source_backs_up_verifies_and_restores_into_a_scratch_target(kind, request, tmp_path):
    recipe = RECIPES.get(kind)
    if recipe is None:
        pytest.fail(
            f"source {kind!r} is registered but has no recipe in tests/test_source_contract.py; "
            "add one to RECIPES (an original to back up, a scratch target to restore into)"
        )
    case = recipe(request, tmp_path)

    assert case.cli("backup", kind) == ExitCode.OK
    with case.workspace() as workspace:
        backup_set = workspace.catalog.get_backup_set("latest", kind)
        artifacts = workspace.catalog.artifacts_of(backup_set.id)
    assert backup_set.status == "complete"
    assert artifacts and {a.status for a in artifacts} == {"complete"}
    folder = source_entry(kind).folder
    assert all(a.source == kind and a.relpath.startswith(f"{folder}/") for a in artifacts)

    assert case.cli("verify", backup_set.id) == ExitCode.OK
    drills = _restore_drills(case, kind, backup_set.id)
    source = source_entry(kind).source
    if type(source).verify_restore is not Source.verify_restore:  # it declares a drill
        assert any(detail is not None for detail in drills), drills

    case.before_restore()
    untouched = case.scratch()
    assert untouched != case.original()  # else the comparison below would prove nothing
    dry_run = ("restore", kind, backup_set.id, *case.restore_args, "--dry-run")
    assert case.cli(*dry_run) == ExitCode.OK
    assert case.scratch() == untouched

    assert case.cli("restore", kind, backup_set.id, *case.restore_args) == ExitCode.OK
    assert case.scratch() == case.original()


def test_the_registry_names_each_source_and_its_place_once():
    assert len(set(source_kinds())) == len(SOURCES)
    assert sorted(entry.full_order for entry in SOURCES) == list(range(1, len(SOURCES) + 1))
    assert set(RECIPES) <= set(source_kinds())
