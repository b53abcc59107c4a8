"""The long fuzz run (scripts/fuzz.sh): build, corpus, then each target for a while.

    python -m tests.fuzz.long_run [--seconds 600] [--examples 2000] [--seed N]
                                  [--targets json_to_resp,rdb_walk,archive_chunks]
                                  [--folder DIR] [--parallel]

Each target runs hypothesis runs of --examples cases under seeds --seed, --seed + 1, ...
until --seconds have passed. Everything goes into --folder (a new temporary folder by
default): build/, corpus/, TARGET.log (the sanitizer's report or the failing case, if
any) and last-TARGET.py (the case a dead process was running; replay it with
`python -m tests.fuzz.run TARGET --build FOLDER/build --replay FILE` in the sanitizer
environment). Exit status 1 when any target found something.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.fuzz.build import ROOT, build, compiler, sanitizer_environment
from tests.fuzz.corpus import write_postgres_corpus, write_redis_corpus
from tests.fuzz.run import TARGETS
from tests.support.postgres import PostgresServer


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz.long_run")
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=int.from_bytes(os.urandom(4), "little"))
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--folder", type=Path)
    parser.add_argument("--parallel", action="store_true")
    return parser.parse_args()


def main() -> None:
    options = _arguments()
    targets = [target for target in options.targets.split(",") if target]
    unknown = set(targets) - set(TARGETS)
    if unknown:
        sys.exit(f"unknown targets {sorted(unknown)}: choose from {', '.join(TARGETS)}")
    cc = compiler()
    if cc is None:
        sys.exit("no C compiler with AddressSanitizer: install gcc (and its libasan)")
    folder = options.folder or Path(tempfile.mkdtemp(prefix="jarvis-fuzz-"))
    print(f"fuzzing {', '.join(targets)} for {options.seconds:.0f} s each, first seed "
          f"{options.seed}, in {folder}", flush=True)  # fmt: skip
    build(folder / "build", cc)
    corpus = folder / "corpus"
    if not corpus.exists():
        write_redis_corpus(corpus)
        with PostgresServer() as server:
            write_postgres_corpus(corpus, server, "fuzz_corpus")
    running, found = [], []
    for target in targets:
        argv = [sys.executable, "-m", "tests.fuzz.run", target, "--build", str(folder / "build"),
                "--corpus", str(corpus), "--examples", str(options.examples),
                "--seconds", str(options.seconds), "--seed", str(options.seed),
                "--last-case", str(folder / f"last-{target}.py")]  # fmt: skip
        log = open(folder / f"{target}.log", "w")  # noqa: SIM115 (closed after the wait)
        process = subprocess.Popen(argv, cwd=ROOT, env=sanitizer_environment(cc), stdout=log,
                                   stderr=subprocess.STDOUT)  # fmt: skip
        running.append((target, process, log))
        if not options.parallel:
            found.append(_finish(folder, *running.pop()))
    found += [_finish(folder, *entry) for entry in running]
    sys.exit(1 if any(found) else 0)


def _finish(folder: Path, target: str, process: subprocess.Popen, log) -> bool:
    """Wait for one target and print its summary; whether it found something."""
    status = process.wait()
    log.close()
    lines = (folder / f"{target}.log").read_text(errors="replace").splitlines()
    if status == 0 and lines:
        print(json.dumps(json.loads(lines[-1])), flush=True)
        return False
    print(f"{target}: FOUND SOMETHING (exit {status}); see {folder / (target + '.log')} and "
          f"{folder / ('last-' + target + '.py')}", flush=True)  # fmt: skip
    print("\n".join(lines[-40:]), flush=True)
    return True


if __name__ == "__main__":
    main()
