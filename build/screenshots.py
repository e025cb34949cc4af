"""Screenshots of every page of the real app window in a real X11 session (Xvfb + Openbox, Qt's
xcb platform), at one screen size and theme, with a size report.

    python build/screenshots.py --size 1366x768 --theme light --out docs/screenshots

One process: it starts its own Xvfb (a free display number) and Openbox (so "maximised" means
what it means on a desktop: the window manager fits the window to the screen), builds the window
as ``pumpfl_gui.gui.app.main`` does, walks the pages (start, server, client, the "Try it" demo
before / mid-run / after, Monitor checking a file and watching a growing one), captures each with
ImageMagick's ``import -window root`` (the X screen itself), and writes
``{out}/{size}-{theme}-{page}.png`` and ``{out}/{size}-{theme}.json``: per capture the window's
frame, the screen, the window's and the page's minimum size and size hint, whether anything is
wider or taller than the screen (``flags``, ``wider_than_screen``), whether the window could be
snapped to half the screen, what sets the page's minimum width (``min_width_chain``), visible
horizontal scroll bars, controls squeezed below their minimum size, and buttons, fields and boxes
one has to scroll to (``scrolled_out_of_view``). Dialogs that pop up are captured and closed
(nobody is there to click).

Needs: xvfb openbox imagemagick (and Qt's xcb libraries); see build/screenshots.sh.
User folders are kept private: settings, data, logs and the default data go to temporary
folders (``--data-dir`` reuses one default-data folder across runs).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import Qt  # QtCore only: the display is chosen before QtGui loads a platform

ROOT = Path(__file__).resolve().parents[1]
MAX_PNG_BYTES = 400_000


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", default="1366x768", help="screen WxH (default 1366x768)")
    p.add_argument("--theme", choices=("light", "dark"), default="light")
    p.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    p.add_argument("--data-dir", help="default-data folder to use (made on first use); default: a temporary one")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--clients", type=int, default=2)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--keep-tmp", action="store_true", help="keep the private folders (the app's log is there)")
    p.add_argument("--no-wm", action="store_true", help="no window manager (maximising then does nothing)")
    return p.parse_args(argv)


# --- the X session --------------------------------------------------------------------------


class XSession:
    """Xvfb on a free display, with Openbox on it; ``stop()`` ends both (only these two)."""

    def __init__(self, width: int, height: int, wm: bool = True) -> None:
        self.procs: list[subprocess.Popen] = []
        r, w = os.pipe()
        xvfb = subprocess.Popen(
            ["Xvfb", "-displayfd", str(w), "-screen", "0", f"{width}x{height}x24", "-nolisten", "tcp", "-noreset"],
            pass_fds=(w,),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(w)
        self.procs.append(xvfb)
        with os.fdopen(r) as f:
            number = f.readline().strip()
        if not number:
            self.stop()
            raise SystemExit("Xvfb did not start (is the xvfb package installed?)")
        self.display = f":{number}"
        os.environ["DISPLAY"] = self.display
        if wm and shutil.which("openbox"):
            self.procs.append(subprocess.Popen(["openbox", "--sm-disable"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            self._wait_for_wm()
        elif wm:
            print("openbox not found: no window manager, the window will not be maximised", file=sys.stderr)

    def _wait_for_wm(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = subprocess.run(["xprop", "-root", "_NET_SUPPORTING_WM_CHECK"], capture_output=True, text=True).stdout
            if "window id" in out:
                return
            time.sleep(0.1)
        print("the window manager did not announce itself in time", file=sys.stderr)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()


def private_folders() -> Path:
    """Point every user folder the app (and platformdirs) uses at a temporary one."""
    tmp = Path(tempfile.mkdtemp(prefix="pumpfl-shots-"))
    for var in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME", "XDG_RUNTIME_DIR"):
        folder = tmp / var.lower()
        folder.mkdir(mode=0o700)
        os.environ[var] = str(folder)
    # The demo's run folders (tempfile.mkdtemp, never removed by the app) go here too.
    scratch = tmp / "tmp"
    scratch.mkdir()
    os.environ["TMPDIR"] = tempfile.tempdir = str(scratch)
    return tmp


# --- the walk ---------------------------------------------------------------------------------


def turn(seconds: float) -> None:
    """Keep Qt's event loop turning for ``seconds``. Not QTest.qWait: PySide6 holds the GIL through
    it, which starves the training threads (a 4-round demo then takes many minutes)."""
    from PySide6.QtWidgets import QApplication

    deadline = time.monotonic() + seconds
    while True:
        QApplication.processEvents()
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(0.02, left))


def main(argv=None) -> int:
    args = parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    tmp = private_folders()
    os.environ["PUMPFL_DATA_DIR"] = str(Path(args.data_dir).resolve() if args.data_dir else tmp / "data")
    os.environ["QT_QPA_PLATFORM"] = "xcb"
    os.environ.pop("QT_SCALE_FACTOR", None)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a stop still ends Xvfb and Openbox
    session = XSession(width, height, wm=not args.no_wm)
    try:
        return Walk(args, out, tmp, (width, height), session.display).run()
    finally:
        session.stop()
        if args.keep_tmp:
            print(f"private folders kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


class Walk:
    def __init__(self, args, out: Path, tmp: Path, size: tuple[int, int], display: str) -> None:
        self.args, self.out, self.tmp, self.size, self.display = args, out, tmp, size, display
        self.prefix = f"{size[0]}x{size[1]}-{args.theme}"
        self.captures: list[dict] = []
        self.dialogs: list[dict] = []
        self.notes: list[str] = []

    # helpers

    def wait_until(self, condition, timeout: float, what: str) -> bool:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                self.notes.append(f"timed out after {timeout:.0f} s waiting for {what}")
                print(self.notes[-1], file=sys.stderr)
                return False
            turn(0.05)
        return True

    def settle(self, ms: int = 400) -> None:
        """Let layouts, pending plot redraws and the X server catch up before a capture."""
        from PySide6.QtWidgets import QApplication

        from pumpfl_gui.gui.plots.redraw_pacer import apply_pending_updates

        apply_pending_updates()
        turn(ms / 2000)
        self.window.repaint()
        QApplication.processEvents()
        QApplication.sync()
        turn(ms / 2000)

    def grab_screen(self, path: Path) -> None:
        subprocess.run(["import", "-display", self.display, "-window", "root", str(path)], check=True)
        if path.stat().st_size > MAX_PNG_BYTES:  # a palette of 256 colours stays readable for a UI
            subprocess.run(["convert", str(path), "-colors", "256", "-define", "png:compression-level=9", str(path)], check=True)

    def capture(self, name: str, page=None, note: str = "") -> dict:
        from PySide6.QtGui import QGuiApplication

        self.settle()
        window = self.window
        page = page if page is not None else window.stack.currentWidget()
        path = self.out / f"{self.prefix}-{name}.png"
        self.grab_screen(path)
        screen = QGuiApplication.primaryScreen()
        sg, ag = screen.geometry(), screen.availableGeometry()
        fg = window.frameGeometry()
        wmin, pmin, phint = window.minimumSizeHint(), page.minimumSizeHint(), page.sizeHint()
        record = {
            "page": name,
            "file": path.name,
            "png_bytes": path.stat().st_size,
            "window_frame": [fg.x(), fg.y(), fg.width(), fg.height()],
            "window_client": [window.width(), window.height()],
            "maximised": window.isMaximized(),
            "screen": [sg.width(), sg.height()],
            "available": [ag.width(), ag.height()],
            "window_min": [wmin.width(), wmin.height()],
            "page_widget": type(page).__name__,
            "page_min": [pmin.width(), pmin.height()],
            "page_hint": [phint.width(), phint.height()],
            "page_actual": [page.width(), page.height()],
        }
        flags = []
        if fg.width() > sg.width():
            flags.append(f"window frame {fg.width()} px wider than the screen ({sg.width()})")
        if fg.height() > sg.height():
            flags.append(f"window frame {fg.height()} px taller than the screen ({sg.height()})")
        if fg.left() < sg.left() or fg.top() < sg.top() or fg.right() > sg.right() or fg.bottom() > sg.bottom():
            flags.append("window frame not wholly on the screen")
        if wmin.width() > ag.width():
            flags.append(f"window minimum width {wmin.width()} wider than the screen ({ag.width()})")
        if wmin.height() > ag.height():
            flags.append(f"window minimum height {wmin.height()} taller than the screen ({ag.height()})")
        if pmin.width() > page.width():
            flags.append(f"page minimum width {pmin.width()} > its width {page.width()} (cut off on the right)")
        if pmin.height() > page.height():
            flags.append(f"page minimum height {pmin.height()} > its height {page.height()} (cut off at the bottom)")
        if pmin.width() > sg.width():
            flags.append(f"page minimum width {pmin.width()} wider than the screen ({sg.width()})")
        record["wider_than_screen"] = fg.width() > sg.width() or wmin.width() > ag.width() or pmin.width() > sg.width()
        record["taller_than_screen"] = fg.height() > sg.height() or wmin.height() > ag.height() or pmin.height() > sg.height()
        record["flags"] = flags
        record["fits_half_screen"] = wmin.width() <= ag.width() // 2  # snapped beside another window
        record["min_width_chain"] = self._min_width_chain(page)
        record["horizontal_scrollbars"] = self._scrollbars(page)
        record["scrolled_out_of_view"] = self._out_of_view(page)
        record["squeezed"] = self._squeezed(page)
        if note:
            record["note"] = note
        self.captures.append(record)
        print(f"{path.name}: frame {fg.width()}x{fg.height()} page min {pmin.width()}x{pmin.height()} {'; '.join(flags)}")
        return record

    @staticmethod
    def _path(w) -> str:
        names = []
        while w is not None and len(names) < 6:
            label = w.objectName() or type(w).__name__
            title = getattr(w, "title", None)
            if callable(title) and isinstance(title(), str) and title():
                label += f"[{title()}]"
            names.append(label)
            w = w.parentWidget()
        return " < ".join(names)

    @staticmethod
    def _min_width_chain(page, depth: int = 10) -> list[str]:
        """What sets the page's minimum width: from the page down, at each level the visible
        children with the widest minimum size hints (the widest one is followed)."""
        from PySide6.QtWidgets import QWidget

        chain, w = [], page
        for _ in range(depth):
            kids = [k for k in w.findChildren(QWidget, options=Qt.FindChildOption.FindDirectChildrenOnly) if k.isVisibleTo(page)]
            if not kids:
                break
            kids.sort(key=lambda k: -k.minimumSizeHint().width())
            chain.append(
                ", ".join(f"{Walk._label(k)} {k.minimumSizeHint().width()}" for k in kids[:3]) + (" …" if len(kids) > 3 else "")
            )
            w = kids[0]
        return chain

    @staticmethod
    def _label(w) -> str:
        label = w.objectName() or type(w).__name__
        for attr in ("title", "text"):
            value = getattr(w, attr, None)
            if callable(value):
                try:
                    text = value()
                except TypeError:
                    continue
                if isinstance(text, str) and text:
                    return f"{label}[{text[:30]}]"
        return label

    def _out_of_view(self, page) -> list[str]:
        """Buttons, fields and boxes that are shown but scrolled out of sight (or cut by a
        scroll area's edge): one has to scroll to reach them."""
        from PySide6.QtWidgets import QAbstractButton, QGroupBox, QLineEdit, QWidget

        found = []
        for w in page.findChildren(QWidget):
            if not isinstance(w, QAbstractButton | QLineEdit | QGroupBox) or not w.isVisible():
                continue
            if type(w).__name__ in ("QToolButton",) or w.objectName().startswith("qt_"):
                continue  # a tab bar's scroll arrows, a spin box's innards
            seen = w.visibleRegion().boundingRect()
            if seen.isEmpty():
                found.append(f"{self._label(w)} (hidden)")
            elif isinstance(w, QAbstractButton | QLineEdit) and seen.height() < w.height():
                found.append(f"{self._label(w)} (cut: {seen.height()} of {w.height()} px shown)")
        return found

    def _scrollbars(self, page) -> list[str]:
        from PySide6.QtWidgets import QAbstractScrollArea

        return [
            self._path(a) for a in page.findChildren(QAbstractScrollArea) if a.isVisible() and a.horizontalScrollBar().isVisible()
        ]

    def _squeezed(self, page) -> list[str]:
        """Visible controls narrower than their own minimum (their text is cut)."""
        from PySide6.QtWidgets import QAbstractButton, QAbstractSpinBox, QComboBox, QLabel, QProgressBar, QWidget

        found = []
        kinds = (QAbstractButton, QLabel, QComboBox, QAbstractSpinBox, QProgressBar)
        for w in page.findChildren(QWidget):
            if not isinstance(w, kinds) or not w.isVisible():
                continue
            need = w.minimumSizeHint()
            if isinstance(w, QLabel) and w.wordWrap():
                continue
            if w.width() + 1 < need.width() or w.height() + 1 < need.height():
                text = w.text() if hasattr(w, "text") and callable(w.text) else ""
                text = text if isinstance(text, str) else ""
                found.append(f"{self._path(w)} '{text[:50]}' is {w.width()}x{w.height()}, needs {need.width()}x{need.height()}")
        return found

    def _close_dialogs(self) -> None:
        from PySide6.QtWidgets import QApplication, QMessageBox

        w = QApplication.activeModalWidget()
        if isinstance(w, QMessageBox) and not w.property("seen"):
            w.setProperty("seen", True)
            path = self.out / f"{self.prefix}-dialog-{len(self.dialogs)}.png"
            QApplication.processEvents()
            self.grab_screen(path)
            self.dialogs.append({"title": w.windowTitle(), "text": w.text(), "file": path.name})
            print(f"dialog: {w.windowTitle()}: {w.text()}", file=sys.stderr)
            w.accept()

    # the walk itself

    def run(self) -> int:
        import threading

        from PySide6.QtCore import Qt, QTimer
        from PySide6.QtTest import QTest

        from pumpfl_gui.gui.app import install_excepthook, make_application, setup_logging, warm_up
        from pumpfl_gui.gui.main_window import MainWindow
        from pumpfl_gui.gui.settings import AppSettings

        started = time.monotonic()
        install_excepthook(setup_logging())  # as the app does: its log file, errors in a dialog
        threading.Thread(target=warm_up, name="pumpfl-warm-up", daemon=True).start()
        app = make_application()
        if app.platformName() != "xcb":
            raise SystemExit(f"Qt runs on {app.platformName()}, not xcb")
        self.window = window = MainWindow(AppSettings(str(self.tmp / "settings.ini")))
        window.set_theme(self.args.theme)
        window.showMaximized()
        self.wait_until(window.isVisible, 10, "the window")
        self.wait_until(lambda: window.isMaximized() and window.frameGeometry().width() <= self.size[0] + 50, 5, "maximised")
        closer = QTimer(window)
        closer.timeout.connect(self._close_dialogs)
        closer.start(200)

        # 1. the role chooser
        self.capture("start")

        # 2. the server page before it starts
        window.show_role("server")
        self.capture("server")

        # 3. the client page before joining: default facility 0 loaded, its preview drawn
        window.show_role("client")
        client = window.client_page
        self.wait_until(lambda: client.data is not None, 600, "the client page's default data")
        self.capture("client")
        QTest.mouseClick(client.test, Qt.MouseButton.LeftButton)  # no address: the test says what to type
        self.wait_until(lambda: client.checks.topLevelItemCount() >= 1, 10, "the connection test's first row")
        self.capture("client-connection-test", note="Test connection with no address")
        client.tabs.setCurrentIndex(0)

        # 4. "Try it on this computer": before, mid-run, after
        window.show_role("demo")
        demo = window.demo_page
        demo.clients_box.setValue(self.args.clients)
        demo.rounds_box.setValue(self.args.rounds)
        demo.epochs_box.setValue(self.args.epochs)
        self.capture("demo-before")
        done = {"all": False}
        demo.server.sig_event.connect(lambda e: print(f"  server: {type(e).__name__}", file=sys.stderr, flush=True))
        demo.sig_all_done.connect(lambda: done.__setitem__("all", True))
        QTest.mouseClick(demo.go, Qt.MouseButton.LeftButton)  # with the boxes' values
        self.wait_until(lambda: len(demo.server.history) >= 1 or done["all"], 600, "round 1")
        self.capture("demo-mid", note=f"after round {len(demo.server.history)} of {self.args.rounds}")
        if demo.clients:
            demo.tabs.setCurrentIndex(1 if len(demo.clients) > 1 else 0)
            self.capture("demo-mid-facility1", note="the second facility's tab, mid-run")
            demo.tabs.setCurrentIndex(0)
        self.wait_until(lambda: done["all"], 900, "the demo's end (sig_all_done)")
        page = demo.clients[0]
        page.tabs.setCurrentIndex(0)
        self.capture("demo-after-training", note="facility 0, Training tab; the server's half on the left")
        page.tabs.setCurrentIndex(1)
        self.capture("demo-after-anomalies", note="facility 0, Anomalies tab")
        page.tabs.setCurrentWidget(page.comparison)
        self.capture("demo-after-comparison", note="facility 0, Alone vs federated tab")

        # 5. Monitor: the model facility 0 kept, on its file ("Open the kept model in Monitor")
        monitor = window.monitor_page
        csv = page._run_csv or page.csv_path
        kept = (page.comparison.comparison or {}).get("kept_model") or (
            page.result.out_dir if getattr(page.result, "out_dir", None) else None
        )
        if page.comparison.open.isEnabled():
            QTest.mouseClick(page.comparison.open, Qt.MouseButton.LeftButton)
        elif kept:
            window.monitor_model(Path(kept), csv)
        if window.role() != "monitor" or monitor.detector is None:
            self.notes.append(f"Monitor did not open the kept model ({kept})")
            return self.finish(started, 1)
        polled = {"n": 0}
        monitor.sig_polled.connect(lambda: polled.__setitem__("n", polled["n"] + 1))
        QTest.mouseClick(monitor.check, Qt.MouseButton.LeftButton)
        self.wait_until(lambda: polled["n"] >= 1, 120, "Check this file")
        alarms = list(monitor.watcher.alarms) if monitor.watcher else []
        self.capture("monitor-check", note=f"{len(alarms)} alarms in {csv.name if csv else '?'}")

        # 6. Monitor watching a growing copy of the file: the alarm banner when the failure arrives
        lines = csv.read_text(encoding="utf-8").splitlines(keepends=True)
        rows = len(lines) - 1
        first = min(alarms, key=lambda a: a.start_row) if alarms else None
        start = first.start_row if first else rows // 2
        cut = max(200, start - 300)  # normal rows, then the alarm's first rows, then the rest
        mid = min(rows, start + 120) if first is None or first.end_row is None else min(first.end_row - 10, start + 120)
        growing = self.tmp / "historian" / csv.name
        growing.parent.mkdir()
        growing.write_text("".join(lines[: 1 + cut]), encoding="utf-8")
        monitor.set_data(growing)
        seen = polled["n"]
        raised = []
        monitor.sig_alarm.connect(raised.append)
        QTest.mouseClick(monitor.watch, Qt.MouseButton.LeftButton)
        self.wait_until(lambda: polled["n"] > seen, 60, "the first look at the watched file")
        self.capture("monitor-watch-quiet", note=f"watching the first {cut:,} rows; banner shown: {monitor.banner.isVisible()}")
        with growing.open("a", encoding="utf-8") as f:
            f.write("".join(lines[1 + cut : 1 + mid]))
        self.wait_until(lambda: raised and monitor.banner.isVisible(), 60, "the alarm banner")
        self.capture("monitor-watch-alarm", note=f"rows up to {mid:,} (the alarm began at row {start:,}): an alarm going on")
        seen = polled["n"]
        with growing.open("a", encoding="utf-8") as f:
            f.write("".join(lines[1 + mid :]))
        self.wait_until(lambda: polled["n"] > seen and monitor.watcher.rows_seen >= rows, 60, "the rest of the file")
        self.capture("monitor-watch-ended", note="the rest of the file appended: the alarm over")
        QTest.mouseClick(monitor.watch, Qt.MouseButton.LeftButton)  # stop watching
        self.wait_until(lambda: not monitor.busy, 30, "the watcher to settle")
        return self.finish(started, 0)

    def finish(self, started: float, code: int) -> int:
        from PySide6.QtGui import QGuiApplication
        from PySide6.QtWidgets import QApplication

        window = self.window
        window.stop_everything()
        window.wait_idle(30.0)
        screen = QGuiApplication.primaryScreen()
        report = {
            "size": f"{self.size[0]}x{self.size[1]}",
            "theme": self.args.theme,
            "platform": QApplication.instance().platformName(),
            "window_manager": "openbox" if not self.args.no_wm else None,
            "screen": [screen.geometry().width(), screen.geometry().height()],
            "device_pixel_ratio": screen.devicePixelRatio(),
            "seconds": round(time.monotonic() - started, 1),
            "captures": self.captures,
            "wider_than_screen": [c["file"] for c in self.captures if c["wider_than_screen"]],
            "taller_than_screen": [c["file"] for c in self.captures if c["taller_than_screen"]],
            "dialogs": self.dialogs,
            "notes": self.notes,
        }
        path = self.out / f"{self.prefix}.json"
        path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"{path.name}: {len(self.captures)} captures in {report['seconds']} s; notes: {self.notes or 'none'}")
        window.close()
        QApplication.processEvents()
        return code or (1 if self.notes else 0)


if __name__ == "__main__":
    sys.exit(main())
