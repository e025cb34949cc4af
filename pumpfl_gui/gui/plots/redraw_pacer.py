"""Loss-plot updates spread over event-loop turns, one repaint per turn (gui layer)."""

from __future__ import annotations

from typing import Protocol

import shiboken6
from PySide6.QtCore import QObject, QTimer


class Paced(Protocol):
    """A plot whose updates wait for the pacer (``LossPlot``)."""

    def apply_pending(self) -> None: ...

    def isVisible(self) -> bool: ...  # Qt's name


class RedrawPacer(QObject):
    """Applies loss-plot updates at most one plot per tick.

    A round's results change three or four plots at once, and on a busy machine each repaint of
    a plot costs 10–40 ms of the GUI thread (pyqtgraph settles its ranges over two or three
    passes). Repainted in one event-loop turn they froze the window for over 100 ms; spread over
    ticks of ``TICK_MS`` each turn holds one repaint, and the reader still sees every plot move
    within a fraction of a second. An update arriving while the pacer is idle is applied at once.
    """

    TICK_MS = 80

    def __init__(self) -> None:
        super().__init__()
        self._queue: list[Paced] = []
        self._timer = QTimer(self)
        self._timer.setInterval(self.TICK_MS)
        self._timer.timeout.connect(self._tick)

    def request(self, plot: Paced) -> None:
        if self._timer.isActive():
            if plot not in self._queue:
                self._queue.append(plot)
        else:
            plot.apply_pending()
            self._timer.start()  # later requests wait for the next tick

    def flush(self) -> None:
        while self._queue:
            plot = self._queue.pop(0)
            if shiboken6.isValid(plot):
                plot.apply_pending()

    def _tick(self) -> None:
        while self._queue:
            plot = self._queue.pop(0)
            if not shiboken6.isValid(plot):
                continue
            plot.apply_pending()
            if plot.isVisible():  # a hidden plot does not repaint, so it does not use the tick
                return
        self._timer.stop()


_pacer: RedrawPacer | None = None


def shared_pacer() -> RedrawPacer:
    """The one pacer every loss plot shares (made again if Qt has deleted it)."""
    global _pacer
    if _pacer is None or not shiboken6.isValid(_pacer):
        _pacer = RedrawPacer()
    return _pacer


def apply_pending_updates() -> None:
    """Apply every loss-plot update still waiting for its turn (call before a screenshot)."""
    if _pacer is not None and shiboken6.isValid(_pacer):
        _pacer.flush()
