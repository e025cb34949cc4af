"""Python's cyclic garbage collector, run on the window's thread only (gui layer).

Left to itself, Python collects cycles in whichever thread happens to allocate: a training or
loading thread. A Qt object whose Python wrapper sits in a cycle is then destroyed in that
thread, while the window's thread may be destroying Qt objects too: each waits for what the
other holds (a Qt mutex, Python's lock) and the app freezes for good. Seen in the test suite: a
facility's reading thread collected a window left by an earlier test. So automatic collection is
off, and a timer on the window's thread collects as Python would have, by the same thresholds.

What the app's imports make (torch, pandas, Qt's wrappers: about 600,000 objects) lives as long
as the app. Left among the collected, it made a collection of the older generations take 150-190
ms on the window's thread: a stall people see. :func:`settle` sets all of it aside (``gc.freeze``)
once the window is up and again once the background imports are done (:func:`importing`).
"""

from __future__ import annotations

import contextlib
import gc
import threading

from PySide6.QtCore import QObject, QTimer

CHECK_MS = 250


class MainThreadCollector(QObject):
    """While it lives, cycles are collected on the thread it was made on (the GUI's)."""

    def __init__(self, parent: QObject | None = None, interval_ms: int = CHECK_MS) -> None:
        super().__init__(parent)
        was_enabled = gc.isenabled()
        gc.disable()
        settle()
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.check)
        self._timer.start()
        self.destroyed.connect(lambda: gc.enable() if was_enabled else None)

    def check(self) -> int:
        return collect_due()


def collect_due() -> int:
    """Collect the generations past their thresholds, as automatic collection would; the
    number of objects collected. Nothing while start-up imports are under way
    (:func:`importing`)."""
    if _importing.is_set():
        return 0
    counts, thresholds = gc.get_count(), gc.get_threshold()
    generation = -1
    for g in range(3):
        if counts[g] > thresholds[g]:
            generation = g
    return gc.collect(generation) if generation >= 0 else 0


_importing = threading.Event()


@contextlib.contextmanager
def importing():
    """Around start-up imports in the background (torch, Flower: about 600,000 objects that live
    as long as the app): no collection meanwhile, and all of it set aside at the end."""
    _importing.set()
    try:
        yield
    finally:
        settle()
        _importing.clear()


def settle() -> None:
    """Set every object that exists now aside from all later collections (they live as long as
    the app: modules, classes, the window). Safe from any thread: nothing is freed."""
    gc.freeze()
