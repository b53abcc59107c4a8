"""The verb table (engines.actions.verbs): every verb a module with `run`, the job words
the job list has always shown, and a command line that loads no verb before it runs one."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engines.actions.verbs import VERBS, Request
from engines.pitr.restore_target import PitrTarget
from engines.postgres.options import PostgresRestoreOptions
from engines.scheduling.scheduler import BASE_BACKUP_VERB, SCHEDULED_VERBS
from tests.support.files_env import REPO_ROOT, child_env


def test_every_verb_is_a_module_of_engines_actions_with_run():
    for verb in VERBS.values():
        run = verb.load()
        assert callable(run) and run.__module__ == f"engines.actions.{verb.module}", verb.name
    scheduled = {*SCHEDULED_VERBS.values(), BASE_BACKUP_VERB}
    assert scheduled == {n for n, v in VERBS.items() if v.result}


@pytest.mark.parametrize(
    ("name", "request_", "job"),
    [
        ("backup", Request(kind="redis"), ("backup", "backup redis")),
        (
            "backup",
            Request(kind="postgres", label="backup postgres (full)"),
            ("backup", "backup postgres (full)"),
        ),
        ("backup-full", Request(), ("backup", "backup full")),
        (
            "restore",
            Request(
                kind="postgres", reference="latest", options=PostgresRestoreOptions(dry_run=True)
            ),
            ("restore", "restore postgres latest (dry run)"),
        ),
        (
            "restore",
            Request(
                kind="postgres",
                reference="latest",
                options=PostgresRestoreOptions(pitr=PitrTarget("lsn", "0/3000148")),
            ),
            ("restore", "restore postgres latest to WAL position 0/3000148"),
        ),
        ("verify", Request(reference="latest"), ("verify", "verify latest")),
        (
            "verify-all",
            Request(sample_percent=12.5, read_data=True),
            ("verify", "verify --all --sample 12.5 --read-data"),
        ),
        ("drill", Request(), ("verify", "restore drill")),
        ("cleanup", Request(dry_run=True), ("cleanup", "cleanup --dry-run")),
        ("prune", Request(dry_run=True), ("prune", "prune files store (dry run)")),
        ("repair", Request(), ("repair", "repair files store")),
        ("rekey", Request(dry_run=True), ("rekey", "rekey (dry run)")),
        ("delete", Request(reference="full_x"), ("delete", "delete full_x")),
        (
            "export",
            Request(relpaths=("a", "b"), output=Path("/out")),
            ("export", "export 2 artifact(s) to /out"),
        ),
        ("export-files", Request(reference="latest"), ("export", "export files latest")),
        ("decrypt-sql", Request(reference="7"), ("decrypt", "decrypt --sql 7")),
        ("rebuild-catalog", Request(), ("catalog-rebuild", "rebuild catalog")),
        ("decrypt", Request(reference="7"), None),
        ("diff", Request(reference="a", second_reference="b"), None),
    ],
)
def test_each_verb_runs_as_the_job_it_always_was(name, request_, job):
    assert VERBS[name].job(request_) == job


def test_a_command_line_loads_no_verb_module_before_it_runs():
    """Parsing `prune --dry-run` loads the table only: a verb's module (and the engines it
    needs) is imported when the verb runs, so a command line starts fast."""
    script = (
        "import json, sys\n"
        "from jarvis_tui.cli import build_parser\n"
        "build_parser(['prune', '--dry-run'])\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('engines.actions'))))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(loaded.stdout) == ["engines.actions", "engines.actions.verbs"]
