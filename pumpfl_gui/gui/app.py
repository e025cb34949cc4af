"""``pumpfl-gui``: start the desktop app (gui layer).

Sets up logging to a rotating file in the user log folder, an exception hook that shows a
dialog instead of dying, the Fusion style (which follows the system's light or dark scheme),
and the headless smoke mode used by CI and for screenshots.
"""

from __future__ import annotations

import argparse
import json
import logging
import logging.handlers
import os
import sys
import time
import traceback
from pathlib import Path

import platformdirs

from .. import __version__
from ..core import redaction
from ..core.paths import APP_NAME

log = logging.getLogger(__name__)
SWITCH_INTERVAL_S = 0.001
WARM_UP_JOIN_S = 60.0  # the most a quit waits for the background imports to end (they take seconds)


def log_file() -> Path:
    folder = Path(platformdirs.user_log_dir(APP_NAME, appauthor=False))
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "pumpfl.log"


def setup_logging() -> Path:
    path = log_file()
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=2_000_000, backupCount=3, encoding="utf-8")
    path.chmod(0o600)  # names of sites and addresses are nobody else's business
    redaction.install(handler)  # and a join code never reaches the file
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    return path


def install_excepthook(path: Path) -> None:
    """An unexpected error is logged and shown; the app stays open."""

    def hook(kind, value, tb):
        log.error("uncaught error", exc_info=(kind, value, tb))
        from PySide6.QtWidgets import QApplication, QMessageBox

        if QApplication.instance() is not None:
            QMessageBox.critical(
                None,
                "PumpFL: something went wrong",
                f"{value}\n\nThe details are in the log file:\n{path}\n\nThe app keeps running.",
            )
        else:
            traceback.print_exception(kind, value, tb)

    sys.excepthook = hook


class StallMeter:
    """Longest gap the Qt event loop went unserved, measured with a 10 ms heartbeat timer."""

    def __init__(self) -> None:
        from PySide6.QtCore import QTimer

        self.max_gap_ms = 0.0
        self._last = time.perf_counter()
        self._timer = QTimer()
        self._timer.setInterval(10)
        self._timer.timeout.connect(self._beat)

    def start(self) -> None:
        self._last = time.perf_counter()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def _beat(self) -> None:
        now = time.perf_counter()
        self.max_gap_ms = max(self.max_gap_ms, (now - self._last) * 1000 - 10)
        self._last = now


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="pumpfl-gui", description="PumpFL desktop app")
    p.add_argument("--version", action="version", version=f"PumpFL {__version__}")
    p.add_argument("--demo", action="store_true", help="start 'Try it on this computer' right away")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--clients", type=int, default=2)
    p.add_argument("--local-epochs", type=int, default=3)
    p.add_argument(
        "--monitor", nargs=2, metavar=("MODEL_DIR", "CSV"), help="open the Monitor page on a saved model and check CSV with it"
    )
    p.add_argument("--screenshot", help="with --demo or --monitor: save PNG screenshots and a JSON summary here")
    p.add_argument("--quit-when-done", action="store_true", help="with --demo or --monitor: quit when the work is done")
    p.add_argument("--theme", choices=("system", "light", "dark"), help="light or dark look (remembered; default: as last time)")
    p.add_argument(
        "--self-test",
        action="store_true",
        help="no window: check that every part works (a 2-round federation on this computer) and exit",
    )
    p.add_argument("--startup-time", action="store_true", help=argparse.SUPPRESS)  # print ms to the first window drawn
    p.add_argument("--settings", help=argparse.SUPPRESS)  # a private settings file (tests)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    path = setup_logging()
    if args.self_test:
        from .self_test import main as self_test

        return self_test()
    install_excepthook(path)
    problem = display_problem()
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    import threading

    warming = threading.Thread(target=warm_up, name="pumpfl-warm-up", daemon=True)
    warming.start()
    from .collector import MainThreadCollector
    from .main_window import MainWindow
    from .settings import AppSettings

    app = make_application()
    MainThreadCollector(app)  # cycles (Qt wrappers among them) are collected on this thread only
    window = MainWindow(AppSettings(args.settings))
    if args.theme:
        window.set_theme(args.theme)
    window.show()
    if args.startup_time:
        report_first_paint(window)
    smoke = run_smoke(window, args) if args.demo else run_monitor(window, args) if args.monitor else {}
    code = app.exec()
    del window
    # A quit within seconds of the start finds torch and Flower still importing in the warm-up
    # thread; the interpreter ending under that native code aborts the process, so let it end.
    warming.join(WARM_UP_JOIN_S)
    return code or (1 if smoke.get("failed") else 0)


def make_application():
    """The QApplication as the app runs it: its name, version, style and icon."""
    from PySide6.QtWidgets import QApplication

    from .assets import app_icon

    # Training threads in this process ("Try it") hold Python's lock between torch calls; the
    # window's thread asks for it back after this long (Python's default is 5 ms).
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName(APP_NAME)
    app.setApplicationVersion(__version__)
    app.setStyle("Fusion")
    app.setWindowIcon(app_icon())
    return app


def display_problem(environ=None, platform: str = sys.platform) -> str | None:
    """Why this Linux session has no screen for the window, in words, or None. Qt itself would
    abort with "Reinstalling the application may fix this problem", which it would not."""
    environ = os.environ if environ is None else environ
    if not platform.startswith("linux") or environ.get("QT_QPA_PLATFORM"):
        return None
    if environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"):
        return None
    return (
        "there is no display to open the window on (neither DISPLAY nor WAYLAND_DISPLAY is set: "
        "a remote shell or a service?). Start PumpFL from a desktop session, or use the command line "
        "(pumpfl --help: pumpfl client, pumpfl server, pumpfl watch); to check the app itself without "
        "a screen: QT_QPA_PLATFORM=offscreen pumpfl-gui --self-test"
    )


def report_first_paint(window) -> None:
    """Print the time from process start to the window's first paint, then quit."""
    import psutil
    from PySide6.QtCore import QEvent, QObject, QTimer
    from PySide6.QtWidgets import QApplication

    started = psutil.Process().create_time()

    class FirstPaint(QObject):
        def eventFilter(self, obj, event):  # noqa: N802 (Qt's name)
            if event.type() == QEvent.Type.Paint and not self.property("seen"):
                self.setProperty("seen", True)
                QTimer.singleShot(0, self.report)
            return False

        def report(self):
            print(f"first window drawn {1000 * (time.time() - started):.0f} ms after the process started", flush=True)
            QApplication.instance().quit()

    watcher = FirstPaint(window)
    window.installEventFilter(watcher)


def warm_up() -> None:
    """In the background while the window opens and people choose a role: import what the role
    pages need (torch, Flower, pandas, scikit-learn: seconds) and run torch's first training
    step."""
    from .collector import importing

    with importing():  # what this makes lives as long as the app: no collection need look at it
        try:
            import sklearn.metrics  # noqa: F401  (scaling and scoring import these where they need them)
            import sklearn.preprocessing  # noqa: F401

            from ..core import detector  # noqa: F401  (torch, pandas)
            from ..core.runtime import warm_up as warm_up_torch
            from ..fl import client_runner, server_runner  # noqa: F401  (Flower, gRPC)

            warm_up_torch()
        except Exception:  # only a head start: the page that needs a module imports it anyway
            log.exception("warm-up failed")


def run_smoke(window, args) -> dict:
    """Drive the real window through a local run; optionally screenshot and quit.

    Returns a dict whose "failed" is set when the run ends without its rounds or with a dialog.
    """
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    from ..fl.events import Failed, Finished, RoundStarted
    from .plots.redraw_pacer import apply_pending_updates

    meter = StallMeter()
    dialogs: list[str] = []
    state = {"finished": False, "failed": False}

    def close_dialogs() -> None:
        # Nobody is there to click: a dialog in smoke mode is a failure to report, not to wait on.
        w = QApplication.activeModalWidget()
        if isinstance(w, QMessageBox):
            dialogs.append(f"{w.windowTitle()}: {w.text()}")
            log.error("smoke run: dialog %s", dialogs[-1])
            w.accept()

    def give_up() -> None:
        dialogs.append(f"the run did not finish within {limit_s} s")
        finish()

    watcher = QTimer(window)
    watcher.timeout.connect(close_dialogs)
    watcher.start(200)
    limit_s = 120 + 60 * args.rounds * max(1, args.local_epochs)
    QTimer.singleShot(limit_s * 1000, give_up)
    window.resize(1600, 1000)
    window.show_role("demo")
    demo = window.demo_page

    def finish() -> None:
        if state["finished"]:
            return
        state["finished"] = True
        demo.stop()
        history = demo.server.history
        summary = {
            "rounds_completed": len(history),
            "final_eval_loss": history[-1].eval_loss if history else None,
            "max_ui_stall_ms": round(meter.max_gap_ms, 1),
            "clients": len(demo.clients),
            "comparisons": [page.comparison.comparison for page in demo.clients],
            "dialogs": dialogs,
        }
        state["failed"] = bool(dialogs) or len(history) < args.rounds
        if args.screenshot:
            shot = Path(args.screenshot)
            shot.parent.mkdir(parents=True, exist_ok=True)
            apply_pending_updates()
            demo.server.grab().save(str(shot))
            for i, page in enumerate(demo.clients):
                demo.tabs.setCurrentIndex(i)
                page.grab().save(str(shot.with_name(f"{shot.stem}-client-{i}.png")))
                page.tabs.setCurrentWidget(page.comparison)
                page.grab().save(str(shot.with_name(f"{shot.stem}-client-{i}-comparison.png")))
            shot.with_suffix(".json").write_text(json.dumps(summary, indent=2))
        print(json.dumps(summary))
        if args.quit_when_done:
            QTimer.singleShot(0, lambda: (window.wait_idle(30.0), QApplication.instance().quit()))

    def watch(event) -> None:  # the stall is measured while the federation trains
        match event:
            case RoundStarted(round=1):
                meter.start()
            case Finished() | Failed():
                meter.stop()

    demo.server.sig_event.connect(watch)
    demo.sig_all_done.connect(finish)
    QTimer.singleShot(0, lambda: demo.start(args.clients, args.rounds, args.local_epochs))
    return state


def run_monitor(window, args) -> dict:
    """Open the Monitor page on ``args.monitor`` (model folder, CSV), check the file, then
    screenshot it and write ``PNG-stem.json`` (rows_scored, alarms); optionally quit."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from .plots.redraw_pacer import apply_pending_updates

    state = {"failed": False}
    window.resize(1600, 1000)
    window.show_role("monitor")
    page = window.monitor_page
    model, csv = (Path(p) for p in args.monitor)

    def done() -> None:
        watcher = page.watcher
        summary = {
            "rows_scored": watcher.rows_seen if watcher else 0,
            "alarms": len(watcher.alarms) if watcher else 0,
            "warning": watcher.warning if watcher else None,
            "status": page.status.text(),
        }
        state["failed"] = watcher is None or watcher.rows_seen == 0
        if args.screenshot:
            shot = Path(args.screenshot)
            shot.parent.mkdir(parents=True, exist_ok=True)
            apply_pending_updates()
            window.grab().save(str(shot))
            shot.with_suffix(".json").write_text(json.dumps(summary, indent=2))
        print(json.dumps(summary))
        if args.quit_when_done:
            QTimer.singleShot(0, QApplication.instance().quit)

    def start() -> None:
        page.set_data(csv)
        page.sig_polled.connect(done)
        if not page.open_model(model) or not page.check_file():
            done()

    QTimer.singleShot(0, start)
    return state
