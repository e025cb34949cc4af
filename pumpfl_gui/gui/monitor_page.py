"""Monitor: the day after training (gui layer). Open a saved model, check a file with it, or
watch a CSV that a historian keeps appending to: new rows scored as they arrive, an alarm
banner and a desktop notification when one starts, every alarm in a log (core/watch.py).
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGroupBox,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSystemTrayIcon,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..core.detector import describe_model
from ..core.errors import UserError
from ..core.model_store import load_detector
from ..core.paths import user_data_dir
from ..core.watch import Watcher, write_alarm_log
from ..core.wording import counted
from .plots import AnomalyView
from .settings import RECENT_MODELS
from .theme import coloured
from .widgets import page_layout, row
from .worker import call_in_thread

RECENT_MAX = 8
POLL_MS = 1000
COLUMNS = ("Start", "End", "Peak error", "Sensors")


class MonitorPage(QWidget):
    sig_alarm = Signal(object)  # an Alarm that has just started
    sig_polled = Signal()  # a check or a look at the watched file is done

    def __init__(self, settings=None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.detector = None
        self.model_dir: Path | None = None
        self.watcher = None
        self.busy = False
        self.alarm_log: Path | None = None
        self._scores = np.empty(0)
        self._flags = np.empty(0, dtype=bool)
        self._times: np.ndarray | None = None
        self.timer = QTimer(self, interval=POLL_MS)
        self.timer.timeout.connect(self._poll)

        model_box = QGroupBox("1. Model")
        self.recent = QComboBox()
        self.recent.setPlaceholderText("recent models")
        self._fill_recent(self._recent())
        self.recent.setCurrentIndex(-1)
        self.recent.activated.connect(lambda i: self.open_model(Path(self.recent.itemData(i))))
        self.open = QPushButton("&Open model…")
        self.open.clicked.connect(self.choose_model)
        self.model_info = QLabel("Open a facility's model folder: the one a run saved, or pumpfl train's.")
        self.model_info.setWordWrap(True)
        self.model_info.setTextFormat(Qt.TextFormat.RichText)  # its text is escaped HTML (errors coloured)
        box = QVBoxLayout(model_box)
        box.addLayout(row(self.open, self.recent))
        box.addWidget(self.model_info)

        data_box = QGroupBox("2. Readings")
        self.data = QLineEdit()
        self.data.setPlaceholderText("the CSV your historian or logger writes")
        self.data.textChanged.connect(self._enable)
        self.browse = QPushButton("Choose &file…")
        self.browse.clicked.connect(self._choose_data)
        self.check = QPushButton("&Check this file")
        self.check.clicked.connect(self.check_file)
        self.watch = QPushButton("&Watch for new rows")
        self.watch.setCheckable(True)
        self.watch.toggled.connect(self._watch_toggled)
        self.warning = QLabel()
        self.warning.setWordWrap(True)
        self.warning.hide()
        box = QVBoxLayout(data_box)
        box.addLayout(row(self.data, self.browse))
        box.addLayout(row(self.check, self.watch, None))
        box.addWidget(self.warning)

        alarms_box = QGroupBox("Alarms")
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        header = self.table.horizontalHeader()
        for col in range(len(COLUMNS) - 1):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(len(COLUMNS) - 1, QHeaderView.ResizeMode.Stretch)  # the sensors take what is left
        self.table.setWordWrap(True)
        self.table.setTextElideMode(Qt.TextElideMode.ElideNone)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.verticalHeader().hide()
        self.export = QPushButton("&Export alarms…")
        self.export.setEnabled(False)
        self.export.clicked.connect(self._export)
        self.log_path = QLabel()
        self.log_path.setWordWrap(True)
        self.log_path.setTextFormat(Qt.TextFormat.RichText)
        box = QVBoxLayout(alarms_box)
        box.addWidget(self.table)
        box.addLayout(row(self.export, None))
        box.addWidget(self.log_path)

        controls = QWidget()
        layout = QVBoxLayout(controls)
        for w in (model_box, data_box, alarms_box):
            layout.addWidget(w)
        layout.addStretch(1)

        view = QWidget()
        right = QVBoxLayout(view)
        self.banner = QLabel()
        self.banner.setWordWrap(True)
        self.banner.hide()
        self.status = QLabel("No file watched yet.")
        self.status.setWordWrap(True)
        self.anomaly = AnomalyView()
        right.addWidget(self.banner)
        right.addWidget(self.status)
        right.addWidget(self.anomaly, 1)
        page_layout(self, controls, view, controls_width=460)  # the alarms table's columns fit
        self.tray = QSystemTrayIcon(self.windowIcon(), self) if QSystemTrayIcon.isSystemTrayAvailable() else None
        self._enable()

    # -- choosing --------------------------------------------------------------------------

    def _recent(self) -> list[str]:
        return [] if self.settings is None else self.settings.recent(RECENT_MODELS)

    def _remember(self, folder: Path) -> None:
        if self.settings is None:
            return
        self._fill_recent(self.settings.remember(RECENT_MODELS, str(folder), RECENT_MAX))
        self.recent.setCurrentIndex(0)

    def _fill_recent(self, folders: list[str]) -> None:
        """Each model by its folder's name (where it lies after it, and whole in the tooltip)."""
        self.recent.clear()
        for folder in folders:
            path = Path(folder)
            self.recent.addItem(f"{path.name}  —  {path.parent}", folder)
            self.recent.setItemData(self.recent.count() - 1, folder, Qt.ItemDataRole.ToolTipRole)

    def choose_model(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a saved model (its folder)")
        if folder:
            self.open_model(Path(folder))

    def _choose_data(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Readings to check or watch", "", "CSV (*.csv *.txt);;All files (*)")
        if path:
            self.data.setText(path)

    def open_model(self, folder: Path) -> bool:
        self.stop_watching()
        try:
            detector = load_detector(folder)
        except (UserError, OSError, ValueError) as exc:
            self.model_info.setText(coloured(html.escape(f"Cannot open this model: {exc}"), "failed", self))
            return False
        self.detector, self.model_dir = detector, Path(folder)
        words = describe_model(detector.info, "its facility's readings", "its facility's normal rows")
        sensors = f"{len(detector.sensors)} sensors, windows of {detector.spec.window} rows"
        self.model_info.setText(html.escape(f"{folder.name}: {words}. {sensors}."))
        self._remember(Path(folder))
        self._enable()
        return True

    def set_data(self, path: Path) -> None:
        self.data.setText(str(path))

    def _enable(self) -> None:
        ready = self.detector is not None and bool(self.data.text().strip())
        watching = self.timer.isActive()
        self.check.setEnabled(ready and not watching and not self.busy)
        self.watch.setEnabled(ready or watching)
        self.open.setEnabled(not watching)
        self.recent.setEnabled(not watching)
        self.data.setEnabled(not watching)
        self.browse.setEnabled(not watching)

    # -- checking and watching ---------------------------------------------------------------

    def check_file(self) -> bool:
        """Score the whole file once, with the alarms it holds; False when it cannot start."""
        if not self._begin():
            return False
        self._poll()
        return True

    def _watch_toggled(self, on: bool) -> None:
        if on and self._begin():
            self.watch.setText("Stop &watching")
            self.timer.start()
            self._poll()
        elif not on:
            self.stop_watching()
        self._enable()

    def stop_watching(self) -> None:
        self.timer.stop()
        if self.watch.isChecked():
            self.watch.blockSignals(True)
            self.watch.setChecked(False)
            self.watch.blockSignals(False)
        self.watch.setText("&Watch for new rows")
        self._enable()

    def _begin(self) -> bool:
        path = Path(self.data.text().strip())
        if self.detector is None or not path.is_file():
            self.status.setText(coloured(html.escape(f"No such file: {path}"), "failed", self))
            self.stop_watching()
            return False
        try:
            self.watcher = Watcher(self.detector, path)
        except UserError as exc:
            self.status.setText(coloured(html.escape(str(exc)), "failed", self))
            self.stop_watching()
            return False
        self._scores, self._flags, self._times = np.empty(0), np.empty(0, dtype=bool), None
        self.table.setRowCount(0)
        self.banner.hide()
        self.warning.hide()
        self.alarm_log = user_data_dir() / "alarms" / f"{path.stem}-alarms.csv"
        return True

    @Slot()
    def _poll(self) -> None:
        if self.busy or self.watcher is None:
            return
        self.busy = True
        self._enable()
        watcher = self.watcher
        call_in_thread(lambda emit: watcher.poll(), self._polled, None, self)

    def _polled(self, update) -> None:
        self.busy = False
        self._enable()
        if isinstance(update, Exception):
            self.status.setText(coloured(html.escape(f"Cannot read the file: {update}"), "failed", self))
            self.stop_watching()
            self.sig_polled.emit()
            return
        if update is not None:
            self._add(update)
        self.sig_polled.emit()

    def _add(self, update) -> None:
        if update.restarted:
            self._scores, self._flags, self._times = np.empty(0), np.empty(0, dtype=bool), None
        self._scores = np.concatenate([self._scores[: update.first_new], update.scores])
        self._flags = np.concatenate([self._flags[: update.first_new], update.flags])
        if update.times is not None:
            kept = self._times[: update.first_new] if self._times is not None else update.times[:0]
            self._times = np.concatenate([kept, update.times])
        if self.watcher.warning:
            self.warning.setText(
                coloured(html.escape(f"This file may not suit the model: {self.watcher.warning}."), "warning", self)
            )
            self.warning.show()
        alarms = self.watcher.alarms
        events = [(a.start_row, a.end_row if a.end_row is not None else len(self._scores)) for a in alarms]
        self.anomaly.show_result(self._times, self._scores, update.threshold, self._flags, events, [])
        self._show_alarms(alarms)
        for alarm in update.started:
            self._raise(alarm)
        if not self.timer.isActive() and alarms:  # a check: the file's alarms, the strongest named
            top = max(alarms, key=lambda a: a.peak)
            count = "One alarm" if len(alarms) == 1 else f"{len(alarms)} alarms"
            sensors = ", ".join(top.sensors)
            words = f"{count} in this file; the strongest began {top.start_time}, error {top.peak:.3g}, sensors {sensors}"
            self.banner.setText(f"<b>{coloured(html.escape(words), 'failed', self)}</b>")
            self.banner.show()
        elif update.ended and self.watcher.alarm is None:
            last = update.ended[-1]
            self.banner.setText(
                coloured(html.escape(f"The alarm that began {last.start_time} ended {last.end_time}."), "warning", self)
            )
        if alarms and self.alarm_log is not None:
            write_alarm_log(self.alarm_log, alarms)
            self.log_path.setText(html.escape(f"Every alarm is also kept in the alarm log {self.alarm_log.name}"))
            self.log_path.setToolTip(str(self.alarm_log))
        self.export.setEnabled(bool(alarms))
        count = counted(len(alarms), "alarm")
        if self.timer.isActive():
            said = f"{update.rows:,} rows read so far; {count}. Watching for new rows…"
        else:
            said = f"{update.rows:,} rows checked; {count}."
        self.status.setText(html.escape(said))

    def _raise(self, alarm) -> None:
        sensors = ", ".join(alarm.sensors)
        words = f"ALARM since {alarm.start_time}: error {alarm.peak:.3g} (threshold {alarm.threshold:.3g}); sensors {sensors}"
        self.banner.setText(f"<b>{coloured(html.escape(words), 'failed', self)}</b>")
        self.banner.show()
        if self.tray is not None and self.timer.isActive():
            self.tray.show()
            self.tray.showMessage("PumpFL alarm", words, QSystemTrayIcon.MessageIcon.Warning, 10_000)
        self.sig_alarm.emit(alarm)

    def _show_alarms(self, alarms) -> None:
        self.table.setRowCount(len(alarms))
        for r, a in enumerate(alarms):
            end = a.end_time if a.end_row is not None else "going on"
            for c, text in enumerate((a.start_time, end, f"{a.peak:.3g}", ", ".join(a.sensors))):
                self.table.setItem(r, c, QTableWidgetItem(text))
        # The columns size themselves (the header's modes): the sensors wrap in what is left.

    def _export(self) -> None:
        stem = Path(self.data.text()).stem or "readings"
        path, _ = QFileDialog.getSaveFileName(self, "Export alarms", f"{stem}-alarms.csv", "CSV (*.csv)")
        if path and self.watcher is not None:
            write_alarm_log(Path(path), self.watcher.alarms)
            self.status.setText(html.escape(f"{len(self.watcher.alarms)} alarms exported to {path}"))

    def is_running(self) -> bool:
        return self.timer.isActive() or self.busy
