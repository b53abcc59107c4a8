"""The in-process scheduler: the console runs the schedules unless another process does.

Which process may fire the schedules is the engine's decision (one scheduler
per repository, elected by a lock); this only starts the engine's scheduler in
a worker and reports who holds it.
"""

import importlib.util
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jarvis_tui.app import JarvisConsole

SCHEDULER_MODULE = "engines.scheduler"


def scheduler_available() -> bool:
    return importlib.util.find_spec(SCHEDULER_MODULE) is not None


class SchedulerHost:
    def __init__(self, app: "JarvisConsole", *, enabled: bool):
        self.app = app
        self.enabled = enabled

    def start(self) -> None:
        if not self.enabled:
            self.app.set_scheduler_note("scheduler off here")
        elif not scheduler_available():
            self.app.set_scheduler_note("no scheduler in this build")

    def stop(self) -> None:
        """Nothing to stop while no scheduler runs in this process."""
