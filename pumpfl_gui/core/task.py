"""Progress reporting and cancellation for long work (core layer; stdlib only).

Long functions take a :class:`TaskState`; they call :meth:`TaskState.report` as they go and
:meth:`TaskState.check` between steps. The CLI prints the reports, the GUI turns them into
signals, tests read them back. Reports are throttled so a fast loop cannot flood a UI.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Cancelled(Exception):
    """Raised inside work that was asked to stop."""


class TaskState:
    def __init__(
        self,
        on_progress: Callable[[str, float], None] | None = None,
        min_interval: float = 0.1,
    ) -> None:
        self._on_progress = on_progress
        self._min_interval = min_interval
        self._last = 0.0
        self._stop = threading.Event()

    def reporting_to(self, on_progress: Callable[[str, float], None]) -> TaskState:
        """A state that reports to ``on_progress`` and stops when this one is cancelled (the
        window makes the state; its worker thread knows where reports go)."""
        other = TaskState(on_progress, self._min_interval)
        other._stop = self._stop
        return other

    def cancel(self) -> None:
        """Ask the work to stop at its next check (callable from any thread)."""
        self._stop.set()

    def check(self) -> None:
        if self._stop.is_set():
            raise Cancelled()

    def report(self, message: str, fraction: float | None = None, force: bool = False) -> None:
        """Pass progress on, at most every ``min_interval`` seconds unless ``force``."""
        if self._on_progress is None:
            return
        now = time.monotonic()
        if force or now - self._last >= self._min_interval:
            self._last = now
            self._on_progress(message, -1.0 if fraction is None else fraction)
