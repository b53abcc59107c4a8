#!/usr/bin/env bash
# THE test command: system packages, .venv, ruff, the import contracts (lint-imports, from
# pyproject.toml), then pytest on two workers (extra arguments go to pytest).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"
# shellcheck source=scripts/_venv.sh
source "$REPO_ROOT/scripts/_venv.sh"

postgres_bin_dir() {
    local dir
    if command -v pg_config >/dev/null; then
        dir="$(pg_config --bindir 2>/dev/null || true)"
        if [[ -x "$dir/initdb" && -x "$dir/postgres" ]]; then
            echo "$dir"
            return
        fi
    fi
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5,5nr); do
        if [[ -x "$dir/initdb" && -x "$dir/postgres" ]]; then
            echo "$dir"
            return
        fi
    done
}

missing_packages() {
    local bin_dir tool
    bin_dir="$(postgres_bin_dir)"
    for tool in initdb postgres pg_dump pg_restore pg_basebackup; do
        if [[ -z "$bin_dir" || ! -x "$bin_dir/$tool" ]]; then
            echo postgresql
            break
        fi
    done
    command -v redis-server >/dev/null || echo redis-server
    command -v pigz >/dev/null || echo pigz
    command -v tmux >/dev/null || echo tmux  # the console's end-to-end test
}

ensure_system_packages() {
    local missing
    missing="$(missing_packages | tr '\n' ' ')"
    missing="${missing% }"
    [[ -z "$missing" ]] && return
    if [[ "$(id -u)" -ne 0 ]]; then
        echo "error: the tests need these system packages: $missing" >&2
        echo "install them with:  sudo apt-get install -y $missing" >&2
        exit 1
    fi
    echo "installing system packages: $missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    # shellcheck disable=SC2086  # one word per package
    apt-get install -y -q $missing
    if [[ -n "$(missing_packages)" ]]; then
        echo "error: still missing after apt-get: $(missing_packages | tr '\n' ' ')" >&2
        exit 1
    fi
}

ensure_system_packages
ensure_venv
echo "ruff check ."
.venv/bin/ruff check .
echo "lint-imports"
.venv/bin/lint-imports --no-cache
# Two workers (JARVIS_TEST_WORKERS to change): the tests wait on real servers and processes
# much of the time, so two cores run two test files at once; a file stays on one worker, so
# its module fixtures are built once.
exec .venv/bin/pytest -q -n "${JARVIS_TEST_WORKERS:-2}" --dist loadfile "$@"
