"""A runner in a child process (fl/child_process.py): its events, log lines and result come
back through the pipe, stop() reaches it, and a child that dies or fails is told, not hung on."""

import logging
import os
import threading
import time

from pumpfl_gui.core.errors import UserError
from pumpfl_gui.fl.child_process import ChildRunner
from pumpfl_gui.fl.events import Failed, Finished, RoundStarted


class Counting:
    """A runner that reports its process, counts rounds until stopped (or ``rounds``), and can
    fail the ways a real one does."""

    def __init__(self, rounds: int, how: str, emit) -> None:
        if how == "refuse":
            raise UserError("the invite names another server")
        self.rounds, self.how, self.emit = rounds, how, emit
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def run(self):
        logging.getLogger("pumpfl_gui.test_child").info("working in process %d", os.getpid())
        if self.how == "user error":
            raise UserError("that file is not a CSV")
        if self.how == "die":
            os._exit(7)
        done = 0
        while done < self.rounds and not self._stop.is_set():
            done += 1
            self.emit(RoundStarted(round=done, rounds=self.rounds))
            time.sleep(0.05)
        return Finished(rounds_completed=done, out_dir=str(os.getpid()), complete=done == self.rounds)


def run_child(rounds: int, how: str = "", stop_after: int | None = None):
    events = []
    runner = None

    def on_event(event) -> None:
        events.append(event)
        if stop_after is not None and len(events) == stop_after:
            runner.stop()  # from the relaying thread, as the page's Stop button does from the window's

    runner = ChildRunner(Counting, (rounds, how), on_event, what="test")
    return runner.run(), events


def test_events_and_the_result_come_back_from_another_process(caplog):
    with caplog.at_level(logging.INFO):
        result, events = run_child(3)
    assert isinstance(result, Finished) and result.complete and result.rounds_completed == 3
    assert int(result.out_dir) != os.getpid()  # the work ran in the child
    assert [e.round for e in events] == [1, 2, 3]
    assert f"[test process] working in process {result.out_dir}" in caplog.messages


def test_stop_reaches_the_runner_in_the_child():
    result, events = run_child(10_000, stop_after=2)
    assert isinstance(result, Finished) and not result.complete
    assert 2 <= result.rounds_completed < 100


def test_a_stop_before_the_child_has_started_is_kept():
    runner = ChildRunner(Counting, (10_000, ""), lambda e: None, what="test")
    runner.stop()
    result = runner.run()
    assert isinstance(result, Finished) and result.rounds_completed <= 1


def test_a_user_error_in_the_child_is_the_result():
    result, events = run_child(3, "user error")
    assert isinstance(result, UserError) and str(result) == "that file is not a CSV"


def test_a_child_that_dies_is_told_with_its_exit_code():
    result, events = run_child(3, "die")
    assert isinstance(result, Failed)
    assert result.message == "the test's process ended unexpectedly (exit code 7)"


def test_a_runner_that_cannot_be_made_is_the_result_and_said_in_the_log(caplog):
    with caplog.at_level(logging.INFO):
        result, events = run_child(3, "refuse")
    assert isinstance(result, UserError) and str(result) == "the invite names another server"
    assert "[test process] could not start: the invite names another server" in caplog.messages
    assert events == []
