"""Long work off the GUI thread: a runner inside a QObject moved to a QThread (gui layer).

The runners of ``fl/`` know nothing of Qt; :class:`RunnerWorker` runs one in its own thread
and re-emits its plain events as Qt signals, which Qt delivers on the GUI thread.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable

import shiboken6
from PySide6.QtCore import QObject, QThread, Signal, Slot

log = logging.getLogger(__name__)


def _yield_to_the_gui() -> None:
    """Let the window win the CPU from training: lower this worker thread's priority.

    On Linux ``nice`` is per thread (Qt's own thread priorities are ignored there); elsewhere
    Qt's QThread priority does it. Training barely slows; the window stops stuttering when
    facilities train on the same few cores (the "Try it on this computer" case).
    """
    import os
    import threading

    if hasattr(os, "setpriority") and sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    else:
        QThread.currentThread().setPriority(QThread.Priority.LowPriority)


class RunnerWorker(QObject):
    """Runs ``make_runner()``'s ``run()`` in a worker thread; ``stop()`` from any thread."""

    sig_event = Signal(object)
    """An event object from the runner (``fl/events.py``), delivered on the GUI thread."""
    sig_done = Signal(object)
    """The runner's final Finished/Failed event, or an exception it raised (a user error)."""

    def __init__(self, make_runner: Callable[[Callable[[object], None]], object]) -> None:
        super().__init__()
        self._make_runner = make_runner
        self.runner = None
        self._stop_requested = False

    @Slot()
    def run(self) -> None:
        _yield_to_the_gui()
        try:
            self.runner = self._make_runner(self.sig_event.emit)
            if self._stop_requested:
                self.runner.stop()
            result = self.runner.run()
        except Exception as exc:  # shown to the user by the page; logged for support
            log.exception("worker failed")
            result = exc
        self.sig_done.emit(result)

    def stop(self) -> None:
        self._stop_requested = True
        if self.runner is not None:
            self.runner.stop()


class _Keeper(QObject):
    """Holds each thread and its worker until the thread has finished, then lets Python free them.

    Python owns a worker (it has no parent: it lives in another thread) and the thread too.
    Freeing a worker while its thread still runs, or scheduling ``deleteLater`` as well,
    deletes it twice; destroying a QThread that still runs aborts the process (Qt's fatal
    "Destroyed while thread is still running"). So no page parents a thread (closing a page
    mid-task would destroy it), and the last reference is dropped here, on the GUI thread,
    once ``QThread.finished`` has arrived and the thread has really returned: ``finished`` is
    emitted from the thread just *before* it ends, hence the ``wait``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.alive: dict[int, tuple] = {}

    def hold(self, thread: QThread, *objects: QObject) -> None:
        self.alive[id(thread)] = (thread, *objects)
        thread.finished.connect(self.release)

    @Slot()
    def release(self) -> None:
        held = self.alive.pop(id(self.sender()), None)
        if held is not None:
            held[0].wait()  # returns at once: the thread has emitted its last signal


_keeper: _Keeper | None = None


def start_worker(worker: RunnerWorker, keep: tuple = ()) -> QThread:
    """Move ``worker`` to a new QThread and start it; the thread ends when the work is done.

    Call from the GUI thread. ``keep``: more objects to hold until the thread has finished.
    The thread has no parent (see :class:`_Keeper`): a page that goes away mid-task stops its
    runner; the thread then ends on its own.
    """
    global _keeper
    if _keeper is None:
        _keeper = _Keeper()
    thread = QThread()
    thread.setObjectName("pumpfl-worker")
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    worker.sig_done.connect(thread.quit)
    _keeper.hold(thread, worker, *keep)
    thread.start()
    return thread


class _Call:
    """Adapts a plain function to the runner shape (``run``/``stop``)."""

    def __init__(self, fn: Callable[[Callable[[object], None]], object]) -> None:
        self._fn = fn
        self._emit: Callable[[object], None] = lambda _e: None
        self.stopped = False

    def run(self):
        return self._fn(self._emit)

    def stop(self) -> None:
        self.stopped = True


class _Relay(QObject):
    """Calls a plain function on the thread this object lives in (the GUI thread).

    A signal connected straight to a lambda would run it in the emitting worker thread;
    a slot of a QObject living on the GUI thread is queued there. Once ``owner`` (the page
    that asked) is gone, nothing is delivered: there is nobody left to tell.
    """

    def __init__(self, fn: Callable[[object], None], owner: QObject | None = None) -> None:
        super().__init__()
        self._fn = fn
        self._owner = owner

    @Slot(object)
    def deliver(self, value: object) -> None:
        if self._owner is None or shiboken6.isValid(self._owner):
            self._fn(value)


def call_in_thread(
    fn: Callable[[Callable[[object], None]], object],
    on_done: Callable[[object], None],
    on_event: Callable[[object], None] | None = None,
    owner: QObject | None = None,
) -> tuple[RunnerWorker, QThread]:
    """Run ``fn(emit)`` in a worker thread; ``on_done`` and ``on_event`` run on the GUI thread.

    Call it from the GUI thread: the relays live where they are made.
    """

    def make(emit):
        call = _Call(fn)
        call._emit = emit
        return call

    worker = RunnerWorker(make)
    relays = [_Relay(on_done, owner)]
    worker.sig_done.connect(relays[0].deliver)
    if on_event is not None:
        relays.append(_Relay(on_event, owner))
        worker.sig_event.connect(relays[1].deliver)
    # The relays are Python's; the keeper frees them with the worker once the thread is done.
    return worker, start_worker(worker, keep=tuple(relays))
