"""The three C extensions, built with AddressSanitizer and UndefinedBehaviorSanitizer,
fuzzed against their oracles: a few hundred derandomised hypothesis cases each, in a
subprocess that has the sanitizer runtime preloaded (tests/fuzz). The inputs start from
what the project really reads: RDBs of a real redis-server, its JSON export by the
project's exporter, pg_dump output; the oracles are the Python twins (rdb_format's walk,
json_compile) or a Python model where there is none (the archive chunk walk). Each bug
found (by fuzzing, or reading the twins side by side) has its smallest input in the
target's REGRESSIONS, each a test here. scripts/fuzz.sh is the long run."""

import contextlib
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz.build import ROOT, build, compiler, sanitizer_environment
from tests.fuzz.corpus import crafted_corpus, write_postgres_corpus, write_redis_corpus
from tests.fuzz.run import TARGETS
from tests.support.pg_seed import unique_name

EXAMPLES = 300


@pytest.fixture(scope="session")
def sanitized(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """(folder of the sanitized build, environment to load it), compiled once."""
    cc = compiler()
    if cc is None:
        pytest.skip("no C compiler with AddressSanitizer (gcc and libasan): not fuzzed")
    folder = tmp_path_factory.mktemp("sanitized")
    try:
        build(folder, cc)
    except subprocess.CalledProcessError as error:
        pytest.fail(f"the sanitized build failed:\n{error.stdout}{error.stderr}")
    return folder, sanitizer_environment(cc)


@pytest.fixture(scope="module")
def redis_corpus(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("redis-corpus")
    write_redis_corpus(folder)
    return folder


@pytest.fixture(scope="module")
def postgres_corpus(tmp_path_factory, postgres_server) -> Path:
    folder = tmp_path_factory.mktemp("postgres-corpus")
    write_postgres_corpus(folder, postgres_server, unique_name("fuzz"))
    return folder


def fuzz(sanitized: tuple[Path, dict[str, str]], target: str, *arguments: str) -> dict:
    """The summary of one run of tests.fuzz.run; fails with the sanitizer's report or
    the oracle's disagreement, and the case being run."""
    folder, env = sanitized
    last_case = folder / f"last-{target}.py"
    last_case.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "tests.fuzz.run", target, "--build", str(folder),
            "--last-case", str(last_case), *arguments]  # fmt: skip
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        case = last_case.read_text()[:3000] if last_case.exists() else "(none)"
        pytest.fail(f"{target} failed (exit {done.returncode}):\n{done.stderr[-8000:]}\n"
                    f"{done.stdout[-2000:]}\nthe case being run: {case}")  # fmt: skip
    return json.loads(done.stdout.splitlines()[-1])


def test_json_to_resp_fuzzed(sanitized, redis_corpus):
    summary = fuzz(sanitized, "json_to_resp", "--corpus", str(redis_corpus),
                   "--examples", str(EXAMPLES))  # fmt: skip
    reached = summary["reached"]
    assert summary["cases"] == EXAMPLES and summary["corpus"] > 10
    assert reached["lines taken"] > 50 and reached["lines left to Python"] > 30
    assert reached["filters"] > 20 and reached["filters refused"] > 5


def test_rdb_walk_fuzzed(sanitized, redis_corpus):
    summary = fuzz(sanitized, "rdb_walk", "--corpus", str(redis_corpus),
                   "--examples", str(EXAMPLES))  # fmt: skip
    reached = summary["reached"]
    assert summary["cases"] == EXAMPLES and summary["corpus"] == 4 + len(crafted_corpus())
    assert reached["counted"] > 30 and reached["RdbFormatError: the RDB ends early"] > 30
    assert len(reached) > 6  # many kinds of damage, each reported the same way
    assert reached["emit: emitted"] > 30
    damaged = [kind for kind in reached if kind.startswith("emit: RdbFormatError: damaged")]
    assert len(damaged) >= 5  # LZF, ziplist, listpack, intset, zipmap, stream ...


def test_archive_chunks_fuzzed(sanitized, postgres_corpus):
    summary = fuzz(sanitized, "archive_chunks", "--corpus", str(postgres_corpus),
                   "--examples", str(EXAMPLES))  # fmt: skip
    reached = summary["reached"]
    assert summary["cases"] == EXAMPLES and summary["corpus"] == 1
    assert reached["walker: walked"] > 10 and reached["walker: ValueError"] > 10
    assert reached["chunks: ended True"] > 10 and reached["chunks: ended False"] > 10


FOUND = {target: list(importlib.import_module(f"tests.fuzz.{target}").REGRESSIONS)
         for target in TARGETS}  # fmt: skip


@pytest.fixture(scope="module")
def regressions_passed(sanitized) -> set[str]:
    """The regressions that pass, each target's run in one process (the failing ones
    are run again alone by their test, for its report)."""
    passed = set()
    for target, names in FOUND.items():
        with contextlib.suppress(pytest.fail.Exception):
            passed.update(fuzz(sanitized, target, "--case", *names)["regressions"])
    return passed


@pytest.mark.parametrize(("target", "case"), [(t, n) for t, names in FOUND.items() for n in names],
                         ids=[n for names in FOUND.values() for n in names])  # fmt: skip
def test_what_fuzzing_found_stays_fixed(sanitized, regressions_passed, target, case):
    if case not in regressions_passed:
        assert fuzz(sanitized, target, "--case", case)["regressions"] == [case]
