# Sourced by test.sh and console.sh: make sure .venv exists and holds this checkout.
# Expects REPO_ROOT; reinstalls only when pyproject.toml or a C source or header changed
# since the last install (the install builds the C extensions in place).

ensure_venv() {
    local venv="$REPO_ROOT/.venv"
    local stamp="$venv/.jarvis-installed"
    local wanted
    wanted="$(cat "$REPO_ROOT/pyproject.toml" "$REPO_ROOT"/engines/*/*.[ch] | sha256sum | cut -d' ' -f1)"

    if [[ ! -x "$venv/bin/python" ]]; then
        if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "error: python3 3.11 or newer is required (found: $(python3 --version 2>&1))" >&2
            exit 1
        fi
        echo "creating $venv"
        if ! python3 -m venv "$venv"; then
            echo "error: python3 -m venv failed; on Debian/Ubuntu install python3-venv" >&2
            exit 1
        fi
    fi

    if [[ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]]; then
        echo "installing jarvis-tui and its test extras into $venv"
        local log
        log="$(mktemp)"
        if ! (cd "$REPO_ROOT" && "$venv/bin/python" -m pip install --disable-pip-version-check \
                -q -e ".[test]") >"$log" 2>&1; then
            cat "$log" >&2
            rm -f "$log"
            echo "error: pip install failed (output above)" >&2
            exit 1
        fi
        rm -f "$log"
        echo "$wanted" >"$stamp"
    fi
}
