"""Long work off the GUI thread (gui/worker.py), tested as superqt tests its workers: the
order signals arrive in, on which thread, what a stop does, and that nothing outlives its
thread or reaches a page that is gone."""

import threading

import pytest
import shiboken6
from PySide6.QtCore import QObject, QThread, Slot
from PySide6.QtWidgets import QApplication, QWidget

from pumpfl_gui.gui import worker as worker_module
from pumpfl_gui.gui.worker import RunnerWorker, call_in_thread, start_worker


class Steps:
    """A runner in the shape of fl/'s: emits its steps, then returns; stops when told."""

    def __init__(self, emit, steps=3, pause: float = 0.0):
        self.emit, self.steps, self.pause = emit, steps, pause
        self.stopped = threading.Event()
        self.thread_name = ""

    def run(self):
        self.thread_name = threading.current_thread().name
        for i in range(self.steps):
            if self.stopped.wait(self.pause):
                return ("stopped", i)
            self.emit(("step", i))
        return ("done", self.steps)

    def stop(self):
        self.stopped.set()


class Page(QObject):
    """Stands for a page: a QObject on the GUI thread whose slots receive the worker's signals
    (a signal connected to a plain lambda would run it in the worker's thread instead)."""

    def __init__(self):
        super().__init__()
        self.seen = []

    @Slot(object)
    def on_event(self, e):
        self.seen.append((e, QThread.currentThread() is QApplication.instance().thread()))

    on_done = on_event


def _held_threads() -> int:
    return 0 if worker_module._keeper is None else len(worker_module._keeper.alive)


def test_events_arrive_in_order_on_the_gui_thread_then_done_then_the_thread_is_released(qtbot):
    page = Page()
    worker = RunnerWorker(lambda emit: Steps(emit))
    worker.sig_event.connect(page.on_event)
    worker.sig_done.connect(page.on_done)
    thread = start_worker(worker)
    qtbot.waitUntil(lambda: len(page.seen) == 4 and thread.isFinished() and _held_threads() == 0, timeout=5000)
    assert page.seen == [(("step", 0), True), (("step", 1), True), (("step", 2), True), (("done", 3), True)]
    assert worker.runner.thread_name != threading.current_thread().name  # the work ran elsewhere
    assert thread.parent() is None  # no page owns it (a page freed mid-task would abort the app)


def test_a_stop_before_the_runner_exists_reaches_it_and_a_stop_mid_run_ends_it(qtbot):
    early = RunnerWorker(lambda emit: Steps(emit))
    early.stop()  # asked before the thread made the runner
    with qtbot.waitSignal(early.sig_done, timeout=5000) as done:
        start_worker(early)
    assert done.args == [("stopped", 0)]

    late = RunnerWorker(lambda emit: Steps(emit, steps=100, pause=0.05))  # five seconds of work
    page = Page()
    late.sig_event.connect(page.on_event)
    with qtbot.waitSignal(late.sig_done, timeout=5000) as done:
        start_worker(late)
        qtbot.waitUntil(lambda: len(page.seen) >= 2, timeout=5000)
        late.stop()
    assert done.args[0][0] == "stopped" and done.args[0][1] < 100
    qtbot.waitUntil(lambda: _held_threads() == 0, timeout=5000)


def test_an_exception_comes_back_as_the_result_not_a_crash(qtbot):
    def broken(emit):
        raise ValueError("the file vanished")

    worker = RunnerWorker(broken)
    with qtbot.waitSignal(worker.sig_done, timeout=5000) as done:
        start_worker(worker)
    assert isinstance(done.args[0], ValueError) and str(done.args[0]) == "the file vanished"
    qtbot.waitUntil(lambda: _held_threads() == 0, timeout=5000)


def test_a_page_that_goes_away_mid_task_gets_nothing_and_the_thread_ends_on_its_own(qtbot):
    gate = threading.Event()
    page = QWidget()
    delivered = []
    worker, thread = call_in_thread(
        lambda emit: (gate.wait(5), emit("late"), "result")[-1], delivered.append, delivered.append, page
    )
    page.deleteLater()  # the page is freed while its task still runs
    qtbot.waitUntil(lambda: not shiboken6.isValid(page), timeout=5000)
    gate.set()
    qtbot.waitUntil(lambda: _held_threads() == 0, timeout=5000)
    assert thread is not None and delivered == []  # nobody left to tell; no crash either


def test_call_in_thread_delivers_events_then_the_result_to_a_living_owner(qtbot):
    owner = QObject()
    delivered = []
    done = threading.Event()

    def work(emit):
        emit(1)
        emit(2)
        return "result"

    call_in_thread(work, lambda r: (delivered.append(r), done.set()), delivered.append, owner)
    qtbot.waitUntil(done.is_set, timeout=5000)
    assert delivered == [1, 2, "result"]
    qtbot.waitUntil(lambda: _held_threads() == 0, timeout=5000)


def test_cycles_are_collected_on_the_window_s_thread_by_python_s_own_thresholds(qtbot):
    import gc

    from pumpfl_gui.gui.collector import MainThreadCollector

    collector = MainThreadCollector(interval_ms=20)
    assert not gc.isenabled()  # no collection in whichever thread happens to allocate
    gc.collect()

    class Node:
        pass

    def cycles(n):
        for _ in range(n):
            a, b = Node(), Node()
            a.other, b.other = b, a

    cycles(10)  # below the first generation's threshold: left for later
    assert collector.check() == 0
    cycles(gc.get_threshold()[0])  # past it: the timer collects them on this thread
    qtbot.waitUntil(lambda: gc.get_count()[0] < gc.get_threshold()[0], timeout=2000)
    collector.deleteLater()
    gc.unfreeze()  # the collector set what existed aside (as the app does at start-up); not the suite's


def test_what_start_up_imports_make_is_set_aside_from_later_collections(qtbot):
    """The app's background imports (torch, Flower) make objects that live as long as the app:
    no collection runs meanwhile, and none looks at them afterwards (a 150-190 ms collection on
    the window's thread otherwise)."""
    import gc

    from pumpfl_gui.gui.collector import collect_due, importing

    class Module:  # stands for what an import makes: long-lived objects with references
        pass

    kept = []
    frozen_before = gc.get_freeze_count()
    with importing():
        kept.extend(Module() for _ in range(3 * gc.get_threshold()[0]))
        for a, b in zip(kept, kept[1:], strict=False):
            a.next, b.previous = b, a
        assert gc.get_count()[0] > gc.get_threshold()[0]
        assert collect_due() == 0  # past the threshold, yet nothing is collected meanwhile
    assert gc.get_freeze_count() >= frozen_before + len(kept)
    assert gc.get_count()[0] < gc.get_threshold()[0]  # nothing left for the next collection to look at
    gc.unfreeze()  # the test suite's own objects go back to being collected as usual


@pytest.mark.slow  # a fresh interpreter starts the app
def test_a_quit_while_the_background_imports_run_waits_for_them_to_end(tmp_path):
    """Quitting within a second of the start (here: at the first paint) finds torch and Flower
    still importing in the warm-up thread; the interpreter ending under that native code aborted
    the process now and then ("terminate called without an active exception"). The app's main
    returns only once that thread has ended."""
    import os
    import subprocess
    import sys

    code = (
        "import sys, threading\n"
        "from pumpfl_gui.gui.app import main\n"
        "code = main(['--startup-time', '--settings', sys.argv[1]])\n"
        "warming = any(t.name == 'pumpfl-warm-up' and t.is_alive() for t in threading.enumerate())\n"
        "print('still importing' if warming else 'imports ended', code)\n"
    )
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "s.ini")], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("first window drawn") and lines[-1] == "imports ended 0"
