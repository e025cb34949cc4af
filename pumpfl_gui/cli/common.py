"""What every ``pumpfl`` command shares: the parser's one-line errors, the console, argument
types, the default data by number, and running a runner under Ctrl+C (cli layer).

Imports stay light here (no torch, no Flower): ``pumpfl --version`` and ``--help`` answer at once.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..core.errors import UserError

EXIT_USAGE = 2


class Parser(argparse.ArgumentParser):
    """argparse, but its complaints follow our one-line ``error:`` rule."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"error: {message} (see '{self.prog} --help')\n")
        raise SystemExit(EXIT_USAGE)


class Console:
    """Progress on stderr: one rewritten line on a terminal, sparse lines elsewhere."""

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._open = False

    def progress(self, message: str, fraction: float) -> None:
        if not self.tty:
            return
        pct = f"{100 * fraction:5.1f}% " if fraction >= 0 else ""
        self.stream.write(f"\r{pct}{message}\x1b[K")
        self.stream.flush()
        self._open = True

    def line(self, text: str) -> None:
        if self._open:
            self.stream.write("\r\x1b[K")
            self._open = False
        self.stream.write(text + "\n")
        self.stream.flush()


class Throttle:
    """Lets a kind of line through at most once every ``seconds`` (Waiting countdowns)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._last: dict[str, float] = {}

    def __call__(self, key: str) -> bool:
        now = time.monotonic()
        if now - self._last.get(key, -1e9) < self.seconds:
            return False
        self._last[key] = now
        return True


# ---- argument types: a wrong value is argparse's one-line error --------------------------


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value


def number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def positive_float(text: str) -> float:
    value = number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} must be greater than 0")
    return value


def non_negative_float(text: str) -> float:
    value = number(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text} must be 0 or more")
    return value


def port(text: str) -> int:
    value = positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port (1-65535)")
    return value


# ---- shared steps --------------------------------------------------------------------------


def resolve_data(arg: str, console: Console | None = None) -> Path:
    """A facility's CSV: a client number 0-4 means the default data (made on first use)."""
    if arg.isdigit() and not Path(arg).exists():
        from ..core.paths import default_client_csv
        from ..core.simulator import ensure_default_data

        path = default_client_csv(int(arg))  # a number the default data lacks is refused before making it
        ensure_default_data(path.parent, progress=console.progress if console else None)
        return path
    return Path(arg)


def run_in_thread(runner, console: Console):
    """Run a blocking runner; Ctrl+C asks it to stop and waits for it."""
    import threading

    box = {}

    def work():
        try:
            box["result"] = runner.run()
        except BaseException as exc:  # handed to the main thread, which reports it
            box["result"] = exc

    t = threading.Thread(target=work, name="pumpfl-runner")
    t.start()
    try:
        while t.is_alive():
            t.join(0.2)
    except KeyboardInterrupt:
        console.line("stopping …")
        runner.stop()
        t.join(30)
        raise
    result = box["result"]
    if isinstance(result, BaseException):
        raise result
    return result


def fail(message: str) -> int:
    """End a command with ``error: message`` and exit 2 (main() prints it)."""
    raise UserError(message)


def write_json(result: dict, out: str | None) -> None:
    if out:
        import json

        from ..core.files import write_atomic

        Path(out).parent.mkdir(parents=True, exist_ok=True)
        write_atomic(Path(out), (json.dumps(result, indent=2) + "\n").encode())
