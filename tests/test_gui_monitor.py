"""The Monitor page: open a saved model, check a file, watch a growing file and see the alarm
banner (real widgets, offscreen), and the scripted ``--monitor`` mode CI screenshots."""

import json
import subprocess
import sys

from PySide6.QtCore import Qt
from PySide6.QtGui import QTextDocument
from test_watch import ANOMALY_START, TRAIN_ROWS, in_other_units, plant  # noqa: F401 (plant is a fixture)

from pumpfl_gui.gui.monitor_page import MonitorPage
from pumpfl_gui.gui.settings import AppSettings


def _page(qtbot, tmp_path):
    page = MonitorPage(AppSettings(str(tmp_path / "settings.ini")))
    qtbot.addWidget(page)
    page.resize(1366, 768)
    page.show()
    return page


def shown_text(label) -> str:
    """What a QLabel shows: its text as plain text, or as HTML rendered, as the label decides."""
    text = label.text()
    rich = label.textFormat() == Qt.TextFormat.RichText or (
        label.textFormat() == Qt.TextFormat.AutoText and Qt.mightBeRichText(text)
    )
    if not rich:
        return text
    doc = QTextDocument()
    doc.setHtml(text)
    return doc.toPlainText()


def _lines(path):
    return path.read_text().splitlines(keepends=True)


def test_check_a_file_shows_its_alarms_and_remembers_the_model(qtbot, tmp_path, plant):  # noqa: F811
    source, model_dir = plant
    page = _page(qtbot, tmp_path)
    assert not page.check.isEnabled() and not page.watch.isEnabled()  # no model, no file yet
    assert page.open_model(model_dir)
    assert "sensors" in page.model_info.text() and model_dir.name in page.model_info.text()
    assert "&#x27;" not in shown_text(page.model_info)  # the words as people read them, apostrophes and all
    page.set_data(source)
    assert page.check.isEnabled()
    with qtbot.waitSignal(page.sig_polled, timeout=30_000):
        qtbot.mouseClick(page.check, Qt.MouseButton.LeftButton)
    alarms = page.watcher.alarms
    assert alarms and page.table.rowCount() == len(alarms)
    assert page.banner.isVisible() and f"{len(alarms)} alarm" in page.banner.text().replace("One alarm", "1 alarm")
    assert page.export.isEnabled() and page.alarm_log.is_file()
    assert f"{page.watcher.rows_seen:,} rows checked" in page.status.text()
    page.grab().save(str(tmp_path / "monitor-check.png"))
    again = _page(qtbot, tmp_path)  # the next start offers it among the recent models
    assert again.recent.itemData(0) == str(model_dir) and again.recent.itemText(0).startswith(model_dir.name)


def test_watching_a_growing_file_raises_the_banner_when_the_failure_rows_arrive(qtbot, tmp_path, plant):  # noqa: F811
    source, model_dir = plant
    lines = _lines(source)
    growing = tmp_path / "historian.csv"
    growing.write_text("".join(lines[: 1 + TRAIN_ROWS + 150]))
    page = _page(qtbot, tmp_path)
    page.open_model(model_dir)
    page.set_data(growing)
    with qtbot.waitSignal(page.sig_polled, timeout=30_000):
        qtbot.mouseClick(page.watch, Qt.MouseButton.LeftButton)
    assert page.timer.isActive() and not page.banner.isVisible()
    assert not page.open.isEnabled() and not page.data.isEnabled()  # the file and model stay as watched
    with growing.open("a") as f:
        f.write("".join(lines[1 + TRAIN_ROWS + 150 : 1 + ANOMALY_START + 150]))
    with qtbot.waitSignal(page.sig_alarm, timeout=15_000) as raised:
        pass
    assert raised.args[0].start_row >= ANOMALY_START - 10
    assert page.banner.isVisible() and "ALARM since" in page.banner.text()
    assert page.table.rowCount() == 1 and page.table.item(0, 1).text() == "going on"
    page.grab().save(str(tmp_path / "monitor-watch.png"))
    qtbot.mouseClick(page.watch, Qt.MouseButton.LeftButton)  # stop watching
    assert not page.timer.isActive() and page.open.isEnabled()
    qtbot.waitUntil(lambda: not page.busy, timeout=10_000)


def test_a_file_in_other_units_is_warned_about_and_a_bad_model_folder_is_said(qtbot, tmp_path, plant):  # noqa: F811
    source, model_dir = plant
    other = in_other_units(source, tmp_path / "other-units.csv")
    page = _page(qtbot, tmp_path)
    assert not page.open_model(tmp_path)  # not a model folder
    assert "Cannot open this model" in page.model_info.text()
    page.open_model(model_dir)
    page.set_data(other)
    with qtbot.waitSignal(page.sig_polled, timeout=30_000):
        page.check_file()
    assert page.warning.isVisible() and "may not suit the model" in page.warning.text()


def test_the_scripted_monitor_mode_writes_a_screenshot_and_its_figures(tmp_path, plant):  # noqa: F811
    source, model_dir = plant
    shot = tmp_path / "monitor.png"
    proc = subprocess.run(
        [sys.executable, "-m", "pumpfl_gui", "--monitor", str(model_dir), str(source), "--screenshot", str(shot)]
        + ["--quit-when-done", "--settings", str(tmp_path / "s.ini")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(shot.with_suffix(".json").read_text())
    assert summary["rows_scored"] == len(_lines(source)) - 1 and summary["alarms"] >= 1
    assert shot.stat().st_size > 10_000


def test_a_run_s_kept_model_opens_in_monitor_on_its_file_from_the_window(qtbot, tmp_path, plant):  # noqa: F811
    from pumpfl_gui.gui.main_window import MainWindow

    source, model_dir = plant
    window = MainWindow(AppSettings(str(tmp_path / "window.ini")))
    qtbot.addWidget(window)
    window.monitor_model(model_dir, source)  # what a Client page's "Open the kept model in Monitor" asks
    page = window.monitor_page
    assert window.role() == "monitor" and page.model_dir == model_dir and page.data.text() == str(source)
    assert page.check.isEnabled() and page.recent.itemData(0) == str(model_dir)
