"""Fuzz one C extension, loaded from a sanitized build, against its oracle.

    python -m tests.fuzz.run TARGET --build DIR [--corpus DIR] [--examples N]
                             [--seconds S] [--seed N] [--case NAME] [--replay FILE]
                             [--last-case FILE]

TARGET is json_to_resp, rdb_walk or archive_chunks. Run it in a process that has the
sanitizer runtime preloaded (tests.fuzz.build.sanitizer_environment): a memory error or
undefined behaviour ends the process with the sanitizer's report; a disagreement with
the oracle ends it with hypothesis's smallest example. Without --seconds, one
derandomised hypothesis run of --examples cases (what the test suite does); with it,
runs of --examples cases under successive seeds until the time is up. --case runs some
of the target's REGRESSIONS, --replay a case written by --last-case (the case being run
when the process died). The last line printed is a JSON summary.
"""

import argparse
import ast
import ctypes
import importlib
import importlib.util
import json
import sys
import time
from pathlib import Path

from tests.fuzz.build import EXTENSIONS, library_path

TARGETS = ("json_to_resp", "rdb_walk", "archive_chunks")


def sanitizers_loaded() -> bool:
    return hasattr(ctypes.CDLL(None), "__asan_init")


def load_sanitized(folder: Path) -> None:
    """The sanitized build registered under the extensions' real names, before anything
    imports them, so that engines/ and its Python wrappers use it."""
    for module in EXTENSIONS:
        if module in sys.modules:
            raise RuntimeError(f"{module} was imported before the sanitized build")
        spec = importlib.util.spec_from_file_location(module, library_path(folder, module))
        assert spec is not None and spec.loader is not None
        loaded = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(loaded)
        sys.modules[module] = loaded


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz.run")
    parser.add_argument("target", choices=TARGETS)
    parser.add_argument("--build", type=Path, required=True)
    parser.add_argument("--corpus", type=Path)
    parser.add_argument("--examples", type=int, default=300)
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--case", nargs="+")
    parser.add_argument("--replay", type=Path)
    parser.add_argument("--last-case", type=Path)
    return parser.parse_args()


def main() -> None:
    options = _arguments()
    if not sanitizers_loaded():
        sys.exit("the AddressSanitizer runtime is not loaded: run with the environment of "
                 "tests.fuzz.build.sanitizer_environment (LD_PRELOAD=libasan.so ...)")  # fmt: skip
    load_sanitized(options.build)
    target = importlib.import_module(f"tests.fuzz.{options.target}")
    loaded = sys.modules[target.MODULE]
    assert Path(loaded.__file__).parent == options.build.resolve(), loaded.__file__
    started = time.monotonic()
    if options.case is not None:
        for name in options.case:
            if options.last_case is not None:
                options.last_case.write_text(f"{name}: {target.REGRESSIONS[name]!r}")
            target.check(target.REGRESSIONS[name])
        summary = {"target": options.target, "regressions": options.case}
    elif options.replay is not None:
        target.check(ast.literal_eval(options.replay.read_text()))
        summary = {"target": options.target, "replayed": str(options.replay)}
    else:
        corpus = target.load_corpus(options.corpus) if options.corpus else []
        for case in target.REGRESSIONS.values():
            target.check(case)
        cases, runs = 0, 0
        seed = options.seed
        while True:
            derandomize = options.seconds is None
            cases += _hypothesis_run(target, corpus, options.examples, derandomize, seed,
                                     options.last_case)  # fmt: skip
            runs += 1
            seed += 1
            if derandomize or time.monotonic() - started >= options.seconds:
                break
        summary = {"target": options.target, "cases": cases, "runs": runs,
                   "first_seed": options.seed, "corpus": len(corpus),
                   "reached": dict(sorted(target.stats.items()))}  # fmt: skip
    summary["seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(summary), flush=True)


def _hypothesis_run(target, corpus, examples: int, derandomize: bool, seed: int,
                    last_case: Path | None) -> int:  # fmt: skip
    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as with_seed

    count = 0

    @settings(max_examples=examples, derandomize=derandomize, database=None, deadline=None,
              suppress_health_check=list(HealthCheck), print_blob=True)  # fmt: skip
    @given(target.cases(corpus, seed))
    def fuzz(case: dict) -> None:
        nonlocal count
        count += 1
        if last_case is not None:
            last_case.write_text(repr(case))
        target.check(case)

    (fuzz if derandomize else with_seed(seed)(fuzz))()
    return count


if __name__ == "__main__":
    main()
