"""Every action runs as a job: a catalog row, log events, progress and cancellation.

The console, the CLI, the scheduler and the API all call `run_job` with the
same work functions; the work reports only through its `JobContext`.
"""

import logging
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from engines.catalog import Catalog
from engines.catalog.rows import EVENT_LEVELS, require_one_of
from engines.errors import JarvisError, JobCancelledError
from engines.plumbing.os_errors import explain_os_error
from engines.plumbing.redaction import redact

T = TypeVar("T")

logger = logging.getLogger("jarvis.jobs")

PROGRESS_INTERVAL_S = 0.25
CANCEL_POLL_INTERVAL_S = 0.5


@dataclass(frozen=True)
class JobStarted:
    job_id: int
    kind: str
    description: str


@dataclass(frozen=True)
class JobLogged:
    job_id: int
    event_id: int
    level: str
    message: str


@dataclass(frozen=True)
class JobProgressed:
    job_id: int
    done: int
    total: int | None
    unit: str


@dataclass(frozen=True)
class JobFinished:
    job_id: int
    status: str
    error: str | None
    elapsed_s: float


JobUpdate = JobStarted | JobLogged | JobProgressed | JobFinished
JobListener = Callable[[JobUpdate], None]


def format_elapsed(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class JobContext:
    """What a work function receives: log, progress and cancellation for one job.

    Safe to call from the work's own threads. Cancellation comes from `cancel()`
    in this process or from `Catalog.request_job_cancel` in any other.
    """

    def __init__(
        self,
        catalog: Catalog,
        job_id: int,
        *,
        listeners: Iterable[JobListener] = (),
        clock: Callable[[], float] = time.monotonic,
    ):
        self.catalog = catalog
        self.job_id = job_id
        self._listeners = list(listeners)
        self._failed_listeners: set[int] = set()
        self._clock = clock
        self._cancel_event = threading.Event()
        self._progress_lock = threading.Lock()
        self._cancel_lock = threading.Lock()
        self._last_progress_write = float("-inf")
        self._last_cancel_poll = float("-inf")
        self._pending_progress: tuple[int, str] | None = None
        self._total: int | None = None
        self._counted_in: str | None = None

    def notify(self, update: JobUpdate) -> None:
        for listener in list(self._listeners):
            try:
                listener(update)
            except Exception:
                # A broken viewer must not break the backup; say so once per listener.
                if id(listener) not in self._failed_listeners:
                    self._failed_listeners.add(id(listener))
                    logger.warning(
                        "job %d: listener %r failed", self.job_id, listener, exc_info=True
                    )

    def log(self, message: str, level: str = "info") -> None:
        require_one_of("log level", level, EVENT_LEVELS)
        message = redact(message)
        event_id = self.catalog.add_job_event(self.job_id, level, message)
        logger.log(logging.getLevelName(level.upper()), "[job %d] %s", self.job_id, message)
        self.notify(JobLogged(self.job_id, event_id, level, message))

    def count_in(self, unit: str, total: int) -> None:
        """Count the job (or its phase from here on) in `unit`, 0 of `total` so far.

        A job made of a few parts or steps says so before the first one starts: the
        progress the work inside a part reports in its own unit (bytes, keys) is then left
        out, and the job reads as one count, never bytes one moment and parts the next.
        Each count is stored as it comes, never held back by the throttle.
        """
        with self._progress_lock:
            self._counted_in = unit
            self._total = total
            self._pending_progress = (0, unit)
            self._last_progress_write = self._clock()
            update = self._write_pending_progress()
        if update:
            self.notify(update)

    def progress(self, done: int, total: int | None = None, unit: str = "bytes") -> None:
        """Report progress; stored at most every PROGRESS_INTERVAL_S, always once done >= total.

        Once `count_in` set the job's unit, progress in any other unit is left out.
        """
        with self._progress_lock:
            if self._counted_in not in (None, unit):
                return
            if total is not None:
                self._total = total
            self._pending_progress = (done, unit)
            finished = self._total is not None and done >= self._total
            # A step is stored at once: the next one may be long and report nothing counted.
            counted = self._counted_in is not None
            now = self._clock()
            if not (finished or counted) and now - self._last_progress_write < PROGRESS_INTERVAL_S:
                return
            self._last_progress_write = now
            update = self._write_pending_progress()
        if update:
            self.notify(update)

    def flush_progress(self) -> None:
        """Write progress held back by the throttle (run_job calls it at the end)."""
        with self._progress_lock:
            update = self._write_pending_progress()
        if update:
            self.notify(update)

    def _write_pending_progress(self) -> JobProgressed | None:
        if self._pending_progress is None:
            return None
        done, unit = self._pending_progress
        self._pending_progress = None
        # The latest known total: a throttled call may have been the one carrying it.
        self.catalog.update_job_progress(self.job_id, done, self._total, unit)
        return JobProgressed(self.job_id, done, self._total, unit)

    @property
    def cancel_event(self) -> threading.Event:
        """Set on cancellation seen by this context; hand it to helper threads."""
        return self._cancel_event

    @property
    def cancelled(self) -> bool:
        if self._cancel_event.is_set():
            return True
        with self._cancel_lock:
            now = self._clock()
            if now - self._last_cancel_poll < CANCEL_POLL_INTERVAL_S:
                return False
            self._last_cancel_poll = now
        if self.catalog.job_cancel_requested(self.job_id):
            self._cancel_event.set()
        return self._cancel_event.is_set()

    def raise_if_cancelled(self) -> None:
        if self.cancelled:
            raise JobCancelledError()

    def cancel(self) -> None:
        self._cancel_event.set()


def _failure_message(exc: BaseException) -> str:
    if isinstance(exc, JarvisError):
        return str(exc)
    return f"unexpected error: {type(exc).__name__}: {exc} (traceback in the job log)"


def _record_end(
    context: JobContext,
    status: str,
    error: str | None,
    started: float,
    *,
    original: BaseException | None,
) -> None:
    elapsed = time.monotonic() - started
    try:
        context.flush_progress()
        if isinstance(original, Exception) and not isinstance(original, JarvisError):
            trace = "".join(traceback.format_exception(original)).rstrip()
            context.log(trace, level="debug")
        if error is None:
            context.log(f"{status} in {format_elapsed(elapsed)}")
        else:
            level = "warning" if status == "cancelled" else "error"
            context.log(f"{status} after {format_elapsed(elapsed)}: {error}", level=level)
        context.catalog.finish_job(context.job_id, status, error)
    except Exception:
        if original is None:
            raise
        # Keep the job's own exception as the one the caller sees.
        logger.exception("job %d: could not record its end as %s", context.job_id, status)
    context.notify(JobFinished(context.job_id, status, error and redact(error), elapsed))


def run_job(
    catalog: Catalog,
    kind: str,
    description: str,
    work: Callable[[JobContext], T],
    *,
    set_id: str | None = None,
    listeners: Iterable[JobListener] = (),
) -> T:
    """Run `work` as a job and record how it ended; its exception propagates."""
    job = catalog.create_job(kind, description, set_id=set_id)
    context = JobContext(catalog, job.id, listeners=listeners)
    context.notify(JobStarted(job.id, kind, job.description))
    context.log(f"started {kind}: {description}")
    started = time.monotonic()
    try:
        result = work(context)
    except JobCancelledError as exc:
        _record_end(context, "cancelled", str(exc), started, original=exc)
        raise
    except OSError as exc:
        # A full disk, a read-only or forbidden path: one clear line from here on.
        explained = explain_os_error(exc)
        _record_end(context, "failed", str(explained), started, original=exc)
        raise explained from exc
    except Exception as exc:
        _record_end(context, "failed", _failure_message(exc), started, original=exc)
        raise
    except BaseException as exc:
        # KeyboardInterrupt or SystemExit: the process may live on, so never leave 'running'.
        _record_end(
            context, "cancelled", f"interrupted ({type(exc).__name__})", started, original=exc
        )
        raise
    _record_end(context, "succeeded", None, started, original=None)
    return result
