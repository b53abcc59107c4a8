#!/usr/bin/env bash
# Set up .venv if needed and open the console (arguments go to jarvis-tui).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/_venv.sh
source "$REPO_ROOT/scripts/_venv.sh"

ensure_venv >&2
exec "$REPO_ROOT/.venv/bin/jarvis-tui" "$@"
