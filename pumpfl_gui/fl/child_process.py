"""A runner in a child process of its own, its events relayed through a pipe (fl layer; no Qt).

A facility that trains in a thread of the app's process shares Python's lock with the window:
with five of them ("Try it", each also training alone for the comparison) the window waits for
the lock between torch calls and stutters. In a process of its own a facility shares nothing
with the window but the CPU, and yields even that (it runs at a lower priority).

The child makes the runner from ``make(*args, emit)`` (a class or function importable by
name: the child starts afresh, it is not a fork of the window's process; a runner that cannot
be made is the result, as a runner's own error is), sends each event,
each log line from INFO up and the runner's result through the pipe, and stops the runner when
the parent asks or goes away. The parent side is :class:`ChildRunner`: ``run()`` in any thread,
``stop()`` from another, events to ``on_event`` from ``run()``'s thread.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import pickle
import threading
from collections.abc import Callable

from ..core.errors import UserError
from .events import Failed

log = logging.getLogger(__name__)
STOP = "stop"
JOIN_S = 30.0  # after the result, how long the child may take to exit before it is ended


class _PipeLog(logging.Handler):
    """The child's log lines, sent to the parent to be logged there (its handlers redact)."""

    def __init__(self, send: Callable[[tuple], None]) -> None:
        super().__init__(logging.INFO)
        self._send = send

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):  # the pipe is gone: the parent is, too
            self._send(("log", record.levelno, record.name, self.format(record)))


def _sendable(result: object) -> object:
    """The result, or a plain error carrying its message when it cannot cross the pipe."""
    try:
        pickle.dumps(result)
        return result
    except Exception:
        return RuntimeError(str(result))


def child_main(conn, work: bytes) -> None:
    """In the child: make the runner from ``work`` (``make`` and ``args``, pickled), run it; the
    parent's "stop" (or its end) stops it. A runner that cannot be made is the result too."""
    if hasattr(os, "nice"):
        os.nice(10)  # the window first
    lock = threading.Lock()

    def send(message: tuple) -> None:
        with lock:
            conn.send(message)

    root = logging.getLogger()
    root.addHandler(_PipeLog(send))
    root.setLevel(logging.INFO)
    try:  # unpickled here rather than by multiprocessing's start-up, so that a failure is told
        make, args = pickle.loads(work)
        runner = make(*args, lambda event: send(("event", event)))
    except Exception as exc:  # a user error in the settings, or a part that cannot be imported
        log.info("could not start: %s", exc, exc_info=not isinstance(exc, UserError))
        send(("done", _sendable(exc)))
        return

    def listen() -> None:
        with contextlib.suppress(EOFError, OSError):  # EOFError: the parent has gone
            conn.recv()  # STOP
        runner.stop()

    threading.Thread(target=listen, name="pumpfl-stop-listener", daemon=True).start()
    try:
        result = runner.run()
    except Exception as exc:  # a user error (bad file, bad address): the parent shows it
        result = exc
    send(("done", _sendable(result)))


class ChildRunner:
    """The parent's side: the shape of a runner (``run``/``stop``), the work in a child process."""

    def __init__(self, make: Callable, args: tuple, on_event: Callable[[object], None], what: str = "facility") -> None:
        self._make, self._args, self._on_event, self._what = make, args, on_event, what
        self._conn = None
        self._stopped = threading.Event()
        self._send_lock = threading.Lock()

    def run(self) -> object:
        context = multiprocessing.get_context("spawn")  # never fork a process with a window and threads
        conn, child_end = context.Pipe()
        process = context.Process(
            target=child_main,
            args=(child_end, pickle.dumps((self._make, self._args))),
            name=f"pumpfl-{self._what}",
            daemon=True,
        )
        process.start()
        child_end.close()
        self._conn = conn
        if self._stopped.is_set():
            self._send_stop()
        result = None
        try:
            while result is None:
                kind, *value = conn.recv()
                if kind == "event":
                    self._on_event(value[0])
                elif kind == "log":
                    logging.getLogger(value[1]).log(value[0], "[%s process] %s", self._what, value[2])
                else:
                    result = value[0]
        except (EOFError, OSError):  # the child ended without a result
            pass
        process.join(JOIN_S if result is not None else 5.0)
        if process.is_alive():
            process.terminate()
            process.join()
        conn.close()
        if result is None:
            return Failed(f"the {self._what}'s process ended unexpectedly (exit code {process.exitcode})")
        return result

    def stop(self) -> None:
        self._stopped.set()
        if self._conn is not None:
            self._send_stop()

    def _send_stop(self) -> None:
        with self._send_lock, contextlib.suppress(OSError, ValueError):  # ValueError, OSError: the child has ended
            self._conn.send(STOP)
