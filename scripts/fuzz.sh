#!/usr/bin/env bash
# The long fuzz run of the three C extensions, built with AddressSanitizer and
# UndefinedBehaviorSanitizer (the test suite runs a few hundred cases of each:
# tests/test_fuzz_native.py). Niced; needs gcc with libasan, redis-server and PostgreSQL
# (for the real inputs the fuzzers start from) and the .venv scripts/test.sh makes.
#
#   FUZZ_SECONDS   per extension (default 600)
#   FUZZ_EXAMPLES  cases per hypothesis run; runs repeat under new seeds (default 2000)
#   FUZZ_SEED      the first seed (default: a random one, printed)
#   FUZZ_TARGETS   comma-separated, of json_to_resp,rdb_walk,archive_chunks (default all)
#   FUZZ_DIR       where the build, corpus, logs and crashing cases go (default: new tmp)
#   FUZZ_PARALLEL  1: the extensions at the same time (default 0: one after another)
#
# Prints one JSON summary per extension (cases run, what they reached); a finding prints
# the sanitizer's report or hypothesis's smallest failing case and exits 1.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"
if [[ ! -x .venv/bin/python ]] || ! .venv/bin/python -c 'import hypothesis' 2>/dev/null; then
    echo "error: .venv with the test extras is missing: run scripts/test.sh once first" >&2
    exit 1
fi

arguments=(--seconds "${FUZZ_SECONDS:-600}" --examples "${FUZZ_EXAMPLES:-2000}")
[[ -n "${FUZZ_SEED:-}" ]] && arguments+=(--seed "$FUZZ_SEED")
[[ -n "${FUZZ_TARGETS:-}" ]] && arguments+=(--targets "$FUZZ_TARGETS")
[[ -n "${FUZZ_DIR:-}" ]] && arguments+=(--folder "$FUZZ_DIR")
[[ "${FUZZ_PARALLEL:-0}" == 1 ]] && arguments+=(--parallel)
exec nice -n 10 .venv/bin/python -m tests.fuzz.long_run "${arguments[@]}"
