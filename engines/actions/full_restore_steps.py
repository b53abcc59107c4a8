"""One `restore full` as it runs: each step announced in the job's log (the lines a command
line prints as its progress), counted as progress, and a failure or a cancel said with
where the system is (what was restored, whether the application is stopped), keeping
the error's kind and so its exit code."""

from collections.abc import Callable
from dataclasses import dataclass, field

from engines.actions.application import by_hand, configured_command
from engines.errors import JarvisError, JobCancelledError
from engines.jobs import JobContext
from engines.workspace import Workspace

STEP_PREFIX = "step "  # the job log lines a command line shows as the restore's progress
DETAIL_PREFIX = "  "


@dataclass(frozen=True)
class FullRestoreOptions:
    dry_run: bool = False
    # JARVIS_STOP_COMMAND unset: the operator says the application is already stopped.
    app_stopped: bool = False


@dataclass
class StepResult:
    title: str
    state: str  # done, would (a dry run's plan), by hand (left to the operator)
    lines: list[str] = field(default_factory=list)


class StepRun:
    """One restore full: the steps as they are announced, logged and counted."""

    def __init__(self, workspace: Workspace, options: FullRestoreOptions, context: JobContext):
        self.workspace = workspace
        self.options = options
        self.context = context
        self.steps: list[StepResult] = []
        self.total = 0
        self.restored: list[str] = []
        self.stopping = False  # the stop step has begun: the application may be down

    def step(self, title: str, state: str, lines: list[str]) -> None:
        self.steps.append(StepResult(title, state, lines))
        number = len(self.steps)
        self.context.log(f"{STEP_PREFIX}{number}/{self.total} {title}: {state}")
        for line in lines:
            self.context.log(DETAIL_PREFIX + line)
        self.context.progress(number, self.total, "steps")

    def run_step(self, title: str, work: Callable[[], list[str]], state: str = "done") -> None:
        """`work` as the next step; a failure or a cancellation says where the system is."""
        try:
            self.context.raise_if_cancelled()
            lines = work()
        except JobCancelledError as error:
            raise said(error, f"cancelled during {title}; {self.where()}") from None
        except JarvisError as error:
            self.context.log(f"{STEP_PREFIX}{len(self.steps) + 1}/{self.total} {title}: failed")
            raise said(error, f"{title} failed: {error}; {self.where()}") from None
        except KeyboardInterrupt:  # Ctrl-C at a terminal: said as a step line, then let go
            number = len(self.steps) + 1
            self.context.log(
                f"{STEP_PREFIX}{number}/{self.total} {title}: interrupted; {self.where()}",
                level="warning",
            )
            raise
        self.step(title, state, lines)

    def where(self) -> str:
        if not self.stopping:
            return "nothing was changed and the application was not stopped"
        start = configured_command(self.workspace.settings, "start")
        start_words = "run JARVIS_START_COMMAND" if start else by_hand("start")
        if not self.restored:
            return (
                "nothing was restored; the application may be stopped: check it, and "
                f"{start_words} if need be"
            )
        return (
            f"restored so far: {', '.join(self.restored)}; the application is left stopped: "
            f"run the restore again, or {start_words} to start it as it is"
        )


def said(error: JarvisError, message: str) -> JarvisError:
    """`error` in the full restore's words, keeping its kind (and so its exit code)."""
    error.args = (message,)
    return error
