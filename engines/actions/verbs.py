"""The verbs: one table that the CLI, the console's job process and the scheduler all read.

Each verb is a module of `engines.actions` with a function

    run(workspace, request, context) -> report

taking the `Request` below (each verb reads the fields it needs). The table says
which module, the job it runs as (kind and description, as the job list shows
them; none for the verbs that only read and are no job), and, for the verbs a
schedule runs, the run's result in the schedule's words. A verb's module is
imported only when the verb runs, so that naming the table costs nothing at a
command line's start.
"""

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engines.jobs import JobContext, JobListener
    from engines.workspace import Workspace


@dataclass(frozen=True)
class Request:
    """What a verb is asked to do. Plain data, so that it crosses to a job's own process."""

    kind: str | None = None  # the source: backup, restore
    reference: str | None = None  # a set id, `latest`, an artifact or a snapshot
    second_reference: str | None = None  # diff: the snapshot compared with `reference`
    options: Any = None  # the source's backup or restore options
    dry_run: bool = False
    read_data: bool = False  # verify: read every chunk of a files snapshot
    sample_percent: float = 100.0  # verify-all
    relpaths: tuple[str, ...] = ()  # export: the artifacts
    output: Path | None = None  # the file or folder written: export, decrypt
    as_sql: bool = False  # export: PostgreSQL artifacts as plain SQL
    tier: str | None = "manual"
    created_at: datetime | None = None
    # The job's words where the caller has more to say (`backup postgres (full)`).
    label: str | None = None
    # catalog rebuild --from: the copy destination read instead of the repository (s3).
    from_copy: str | None = None
    # cleanup: the only sets it may delete (those a preview showed the operator); None: any.
    approved: tuple[str, ...] | None = None
    # The scheduler's alert dispatcher, when the verb runs in the scheduler's process;
    # never sent to another process (each opens its own).
    dispatcher: Any = field(default=None, compare=False)


VerbFunction = Callable[["Workspace", Request, "JobContext | None"], Any]


def _dry(request: Request, words: str = " (dry run)") -> str:
    return words if request.dry_run else ""


def _restore_words(request: Request) -> str:
    dry = " (dry run)" if getattr(request.options, "dry_run", False) else ""
    pitr = getattr(request.options, "pitr", None)  # a point-in-time restore: to what
    to = f" to {pitr.describe()}" if pitr is not None else ""
    return f"restore {request.kind} {request.reference}{to}{dry}"


def _pull_words(request: Request) -> str:
    return f"pull {request.reference or 'everything'}" + _dry(request)


def _verify_all_words(request: Request) -> str:
    read_data = " --read-data" if request.read_data else ""
    return f"verify --all --sample {request.sample_percent:g}{read_data}"


@dataclass(frozen=True)
class Verb:
    name: str
    module: str  # its module in engines.actions, holding `run(workspace, request, context)`
    job_kind: str | None  # None: no job (a read that changes nothing)
    describe: Callable[[Request], str]
    # For a verb a schedule runs: the run's result (complete, partial or failed).
    result: Callable[[Any], str] | None = None
    # It writes to the repository: refused while browsing another host's (BACKUP_BROWSE).
    writes: bool = False

    def load(self) -> VerbFunction:
        return importlib.import_module(f"engines.actions.{self.module}").run

    def refuse_while_browsing(self, workspace: "Workspace") -> None:
        if self.writes and workspace.settings.browsing:
            from engines.destinations.read_only import refusal

            where = f"s3://{workspace.settings.s3_bucket}/{workspace.settings.browse_prefix}"
            raise refusal(f"`{self.name}`", where)

    def job(self, request: Request) -> tuple[str, str] | None:
        """(job kind, description) as the job list shows them; None when it is no job."""
        if self.job_kind is None:
            return None
        return self.job_kind, request.label or self.describe(request)


VERBS: Mapping[str, Verb] = {
    verb.name: verb
    for verb in (
        Verb("backup", "backup", "backup", lambda r: f"backup {r.kind}", writes=True),
        Verb(
            "backup-full",
            "backup_full",
            "backup",
            lambda r: "backup full",
            result=lambda report: report.backup_set.status,
            writes=True,
        ),
        Verb(  # after a scheduled backup (BACKUP_PITR_BASE_SCHEDULE): skipped unless archiving
            "backup-base",
            "backup_base",
            "backup",
            lambda r: "scheduled PostgreSQL base backup",
            result=lambda backup_set: "skipped" if backup_set is None else backup_set.status,
            writes=True,
        ),
        Verb("restore", "restore", "restore", _restore_words),
        Verb(
            "restore-full",
            "restore_full",
            "restore",
            lambda r: f"restore full {r.reference}" + _dry(r, " --dry-run"),
        ),
        Verb(
            "test",
            "restore_test",
            "verify",
            lambda r: "test: full backup, scratch restores",
            writes=True,  # its fresh full backup
        ),
        Verb("verify", "verify", "verify", lambda r: f"verify {r.reference}"),
        # The API's: its job fails when an artifact does (the job is all a poller sees).
        Verb("verify-strict", "verify_strict", "verify", lambda r: f"verify {r.reference}"),
        Verb("verify-all", "verify_all", "verify", _verify_all_words),
        Verb(
            "drill",
            "verify_drill",
            "verify",
            lambda r: "restore drill",
            result=lambda report: "failed" if report.failed else "complete",
        ),
        Verb(
            "cleanup",
            "cleanup",
            "cleanup",
            lambda r: "cleanup" + _dry(r, " --dry-run"),
            result=lambda report: "partial" if report.problems else "complete",
            writes=True,
        ),
        Verb("prune", "prune", "prune", lambda r: "prune files store" + _dry(r), writes=True),
        Verb("sync", "sync", "sync", lambda r: "sync copies" + _dry(r), writes=True),
        Verb("pull", "pull", "pull", _pull_words, writes=True),
        Verb("compare-restored", "compare_restored", "verify", lambda r: "compare restored"),
        Verb("repair", "repair", "repair", lambda r: "repair files store" + _dry(r), writes=True),
        Verb("rekey", "rekey", "rekey", lambda r: "rekey" + _dry(r), writes=True),
        Verb("delete", "delete_set", "delete", lambda r: f"delete {r.reference}", writes=True),
        Verb(
            "export",
            "export",
            "export",
            lambda r: f"export {len(r.relpaths)} artifact(s) to {r.output}",
        ),
        Verb("export-files", "export_files", "export", lambda r: f"export files {r.reference}"),
        Verb("diff", "diff", None, lambda r: f"diff {r.reference} {r.second_reference}"),
        Verb("decrypt", "decrypt", None, lambda r: f"decrypt {r.reference}"),
        Verb("decrypt-sql", "decrypt_sql", "decrypt", lambda r: f"decrypt --sql {r.reference}"),
        Verb(
            "rebuild-catalog",
            "rebuild_catalog",
            "catalog-rebuild",
            lambda r: "rebuild catalog",
        ),
        Verb("s3-audit", "s3_audit", None, lambda r: "s3 audit"),
        # PostgreSQL's archive_command and restore_command (wal-push, wal-fetch) are no
        # verbs: they run per WAL file with the settings alone, never waiting on the catalog.
        Verb("pitr-setup", "pitr_setup", None, lambda r: "pitr setup"),
        Verb("pitr-check", "pitr_check", None, lambda r: "pitr check"),
        Verb("pitr-timeline", "pitr_timeline", None, lambda r: "pitr timeline"),
        Verb(
            "s3-lifecycle",
            "s3_lifecycle",
            None,
            lambda r: "s3 lifecycle" + ("" if r.dry_run else " --apply"),
        ),
    )
}


def run_verb(
    workspace: "Workspace",
    name: str,
    request: Request,
    *,
    listeners: "tuple[JobListener, ...]" = (),
) -> Any:
    """The verb `name` as its own catalogued job (or directly, for a verb that is no job)."""
    verb = VERBS[name]
    verb.refuse_while_browsing(workspace)
    run = verb.load()
    job = verb.job(request)
    if job is None:
        return run(workspace, request, None)
    kind, description = job
    return workspace.run_job(
        kind, description, lambda context: run(workspace, request, context), listeners=listeners
    )


def run_scheduled(
    name: str, workspace: "Workspace", request: Request, context: "JobContext"
) -> str:
    """A scheduled verb, inside the job the scheduler started: the run's result."""
    verb = VERBS[name]
    assert verb.result is not None, f"{name} is not a verb a schedule runs"
    verb.refuse_while_browsing(workspace)
    return verb.result(verb.load()(workspace, request, context))
