"""The desktop app driven like a person would: real pages, real runners on loopback (pytest-qt)."""

import multiprocessing
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox

from pumpfl_gui.core.simulator import generate
from pumpfl_gui.fl.addresses import find_free_port
from pumpfl_gui.fl.security import KnownServers
from pumpfl_gui.gui.client_page import ClientPage
from pumpfl_gui.gui.main_window import MainWindow
from pumpfl_gui.gui.server_page import ServerPage
from pumpfl_gui.gui.settings import AppSettings


@pytest.fixture(scope="module")
def default_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gui-data")
    generate(folder)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PUMPFL_DATA_DIR", str(folder))
        yield folder


class DialogCatcher:
    """Closes each modal dialog as a person would, keeping its title and text."""

    def __init__(self, qtbot):
        self.seen: list[tuple[str, str]] = []
        self.timer = QTimer()
        self.timer.setInterval(50)
        self.timer.timeout.connect(self._close_modal)
        self.timer.start()

    def _close_modal(self):
        w = QApplication.activeModalWidget()
        if isinstance(w, QMessageBox):
            self.seen.append((w.windowTitle(), w.text()))
            w.accept()

    def stop(self):
        self.timer.stop()


@pytest.fixture()
def dialogs(qtbot):
    catcher = DialogCatcher(qtbot)
    yield catcher
    catcher.stop()


def wait_until(qtbot, condition, timeout=120_000):
    qtbot.waitUntil(condition, timeout=timeout)


def server_page(qtbot, rounds=2):
    page = ServerPage()
    page.host = "127.0.0.1"
    qtbot.addWidget(page)
    page.port.setValue(find_free_port(30000, "127.0.0.1"))
    page.rounds.setValue(rounds)
    page.epochs.setValue(1)
    page.min_clients.setValue(2)
    return page


def client_page(qtbot, tmp_path, index):
    page = ClientPage(known_servers=KnownServers(tmp_path / "known.json"))
    qtbot.addWidget(page)
    page.load_default(index)
    wait_until(qtbot, lambda: page.data is not None, 60_000)
    return page


def test_a_server_page_and_two_client_pages_complete_a_run(qtbot, tmp_path, default_data, monkeypatch):
    server = server_page(qtbot)
    qtbot.mouseClick(server.start, Qt.MouseButton.LeftButton)
    wait_until(qtbot, lambda: server.invite.text().startswith("pumpfl://"), 30_000)
    clients = [client_page(qtbot, tmp_path, i) for i in (0, 1)]
    for page in clients:
        qtbot.keyClicks(page.address, server.invite.text())
        qtbot.mouseClick(page.start, Qt.MouseButton.LeftButton)
    with qtbot.waitSignals([c.sig_scored for c in clients], timeout=180_000):
        pass
    wait_until(qtbot, lambda: not server.is_running(), 30_000)
    assert server.table.rowCount() == 2
    states = {server.table.item(r, 0).text(): server.table.item(r, 2).text() for r in range(2)}
    assert states == {"client_0": "done", "client_1": "done"}
    assert [h.round for h in server.history] == [1, 2]
    assert (
        server.progress.text() == "2 of 2 rounds done"
    )  # counts rounds done, as "Round 2 of 2: training" counts the one running
    xs, ys = server.loss_plot.curve("eval (weighted)").getData()
    assert list(xs) == [1, 2] and len(ys) == 2
    assert set(server.client_plot.series_names()) == {"client_0", "client_1"}
    for page in clients:
        assert page.progress.value() == 2 and page.progress.text() == "2 of 2 rounds done"
        assert page.score is not None and page.tabs.currentWidget() is page.anomalies_tab
        assert "failure" in page.figures.text().lower()
        # What federating gave this facility: alone vs federated on its own file, one model kept.
        view = page.comparison
        kept = view.comparison["kept_model"]
        assert view.table.rowCount() >= 4 and view.table.item(0, 0).text() == "Failures caught"
        headers = [view.table.horizontalHeaderItem(c).text() for c in (1, 2)]
        assert sum("✓ kept" in h for h in headers) == 1
        assert view.kept.text().startswith("<b>Kept for Monitor: the ")
        with qtbot.waitSignal(page.sig_open_model) as opened:
            qtbot.mouseClick(view.open, Qt.MouseButton.LeftButton)
        assert opened.args == [Path(kept), page.csv_path]
    assert server.export.isEnabled() and server.save_model.isEnabled()
    for page in [server, *clients]:
        assert not page.is_running()
    # Save global model: the folder named in the dialog is the model's folder, and the page says so.
    chosen = {"path": tmp_path / "my-global-model"}
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(chosen["path"]), ""))
    qtbot.mouseClick(server.save_model, Qt.MouseButton.LeftButton)
    assert (tmp_path / "my-global-model" / "model.json").is_file()
    assert f"Saved the global model in the folder {tmp_path / 'my-global-model'}" in server.status.text()
    # Export scores: every reading's score, the count of flagged ones said on the page.
    chosen["path"] = tmp_path / "scores.csv"
    qtbot.mouseClick(clients[0].export, Qt.MouseButton.LeftButton)
    rows = (tmp_path / "scores.csv").read_text().splitlines()
    data, score = clients[0].score
    assert len(rows) == data.rows + 1 and f"{int(score.flags.sum()):,} flagged" in clients[0].status.text()


def test_test_connection_is_red_with_a_fix_on_a_closed_port_and_green_on_a_server(qtbot, tmp_path, default_data):
    page = client_page(qtbot, tmp_path, 0)
    port = find_free_port(31000, "127.0.0.1")
    page.address.setText(f"127.0.0.1:{port}")  # no join code yet: the address is tried all the same
    qtbot.mouseClick(page.test, Qt.MouseButton.LeftButton)
    wait_until(qtbot, lambda: page.test.isEnabled() and page.checks.topLevelItemCount() >= 3, 30_000)
    statuses = page.checks.statuses()
    assert "failed" in statuses
    tcp = next(
        page.checks.topLevelItem(i)
        for i in range(page.checks.topLevelItemCount())
        if "TCP" in page.checks.topLevelItem(i).text(1)
    )
    assert "What to do:" in tcp.text(2)

    server = server_page(qtbot, rounds=1)
    server.port.setValue(port)
    qtbot.mouseClick(server.start, Qt.MouseButton.LeftButton)
    wait_until(qtbot, lambda: server.invite.text().startswith("pumpfl://"), 30_000)
    qtbot.mouseClick(page.test, Qt.MouseButton.LeftButton)  # the address alone reaches it; the code is missing
    wait_until(qtbot, lambda: page.test.isEnabled() and page.checks.topLevelItemCount() >= 5, 30_000)
    assert page.checks.statuses()[2:] == ["ok", "ok", "warning"], page.checks.statuses()
    join = page.checks.topLevelItem(4)
    assert join.text(1) == "Join code" and "no join code to check" in join.text(2)
    page.address.setText(server.invite.text())
    qtbot.mouseClick(page.test, Qt.MouseButton.LeftButton)
    wait_until(qtbot, lambda: page.test.isEnabled() and page.checks.topLevelItemCount() >= 5, 30_000)
    statuses = page.checks.statuses()
    assert "failed" not in statuses and statuses[-1] == "ok", statuses
    assert not server.table.rowCount()  # a test never takes a seat
    server.stop_server()
    wait_until(qtbot, lambda: not server.is_running(), 30_000)


def test_a_refused_join_says_could_not_join_and_the_bar_never_shows_qts_default(qtbot, tmp_path, default_data, dialogs):
    server = server_page(qtbot, rounds=1)
    qtbot.mouseClick(server.start, Qt.MouseButton.LeftButton)
    wait_until(qtbot, lambda: server.invite.text().startswith("pumpfl://"), 30_000)
    page = client_page(qtbot, tmp_path, 0)
    invite = server.invite.text()
    code = invite.split("code=")[1].split("&")[0]
    page.address.setText(invite.replace(code, "AAAA-BBBB-CCCC"))
    qtbot.mouseClick(page.start, Qt.MouseButton.LeftButton)
    assert page.progress.text() == "waiting for the first round"  # not "round 0 of 100"
    wait_until(qtbot, lambda: bool(dialogs.seen) and not page.is_training(), 60_000)
    title, text = dialogs.seen[0]
    assert title == "Could not join" and "wrong join code" in text
    assert page.status.text().startswith("Could not join: ")
    server.stop_server()
    wait_until(qtbot, lambda: not server.is_running(), 30_000)


def test_a_broken_csv_gives_a_dialog_and_the_page_stays_usable(qtbot, tmp_path, default_data, dialogs):
    bad = tmp_path / "export.csv"
    bad.write_text("timestamp,flow\n2024-01-01 00:00:00,1.0\n2024-01-01 00:00:01,ERR\n")
    page = client_page(qtbot, tmp_path, 0)
    page.load_data(bad)
    wait_until(qtbot, lambda: bool(dialogs.seen), 30_000)
    title, text = dialogs.seen[0]
    assert title == "This file cannot be used" and "'flow'" in text
    # The file in use stays in use, and the box says so under the error.
    assert "Cannot use export.csv" in page.data_info.text() and "Still using client_0.csv" in page.data_info.text()
    page.load_data(default_data / "client_2.csv")  # still usable
    wait_until(qtbot, lambda: page.csv_path == default_data / "client_2.csv", 30_000)
    assert "Cannot use" not in page.data_info.text()  # the old error does not outlive it
    assert page.data.rows == 44_160
    # The preview says whether the file is long enough for the window it will get.
    assert "long enough to train and score: the model reads windows of 32 rows" in page.data_info.text()


def test_a_long_file_shows_its_reading_and_stopping_keeps_the_file_in_use(qtbot, tmp_path, default_data, dialogs, monkeypatch):
    import pumpfl_gui.core.csv_bulk as csv_bulk
    import pumpfl_gui.core.dataset as dataset

    monkeypatch.setattr(dataset, "BULK_BYTES", 0)  # every file is long: read a batch at a time
    monkeypatch.setattr(csv_bulk, "BATCH_ROWS", 200)
    page = client_page(qtbot, tmp_path, 0)
    said = set()
    watch = QTimer()
    watch.timeout.connect(lambda: said.add(page.data_info.text()))
    watch.start(5)
    page.load_data(default_data / "client_1.csv")
    assert page.stop_reading.isVisible() or not page.isVisible()
    wait_until(qtbot, lambda: page.csv_path == default_data / "client_1.csv", 60_000)
    watch.stop()
    assert any(text.startswith("Reading client_1.csv: ") and "rows, about" in text for text in said), said
    assert page.stop_reading.isHidden()
    page.load_data(default_data / "client_2.csv")
    page.stop_reading.click()  # before the first batch: the worker is still reading the file's head
    wait_until(qtbot, lambda: page.stop_reading.isHidden(), 30_000)
    text = page.data_info.text()
    assert "Cannot use client_2.csv: you stopped reading it" in text and "Still using client_1.csv" in text
    assert page.csv_path == default_data / "client_1.csv" and not dialogs.seen  # one's own stop needs no dialog


def test_stop_mid_round_leaves_no_thread_behind(qtbot, tmp_path, default_data):
    server = server_page(qtbot, rounds=50)
    server.epochs.setValue(3)
    qtbot.mouseClick(server.start, Qt.MouseButton.LeftButton)
    wait_until(qtbot, lambda: server.invite.text().startswith("pumpfl://"), 30_000)
    clients = [client_page(qtbot, tmp_path, i) for i in (1, 2)]
    for page in clients:
        page.address.setText(server.invite.text())
        page.start_client()
    wait_until(qtbot, lambda: len(clients[0]._train_x) >= 1, 120_000)
    threads = [server.run_thread, clients[0]._thread, clients[1]._thread]
    qtbot.mouseClick(server.stop, Qt.MouseButton.LeftButton)
    for page in clients:
        qtbot.mouseClick(page.stop, Qt.MouseButton.LeftButton)
    wait_until(qtbot, lambda: not server.is_running() and not any(c.is_running() for c in clients), 30_000)
    # The threads end once their quit, queued to this (GUI) thread, is handled: keep handling
    # events while waiting (a blocking QThread.wait here could hold that quit back).
    wait_until(qtbot, lambda: all(t.isFinished() for t in threads), 10_000)
    assert multiprocessing.active_children() == []  # each facility's process has ended too


def test_settings_survive_a_restart_of_the_window(qtbot, tmp_path, default_data):
    ini = str(tmp_path / "settings.ini")
    window = MainWindow(AppSettings(ini))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    window.show_role("server")
    window.server_page.port.setValue(8181)
    window.server_page._save_settings()
    window.client_page.address.setText("192.168.1.100:8181")
    window.client_page._save_settings()
    window.resize(1300, 760)
    closed_at = window.geometry()
    window.close()
    again = MainWindow(AppSettings(ini))
    qtbot.addWidget(again)
    again.show()
    qtbot.waitExposed(again)
    assert again.role() == "server"
    assert again.server_page.port.value() == 8181
    assert again.client_page.address.text() == "192.168.1.100:8181"
    assert again.geometry().size() == closed_at.size()


def test_try_it_fits_a_1366_pixel_screen_before_during_and_after_a_run(qtbot, tmp_path, default_data):
    window = MainWindow(AppSettings(str(tmp_path / "settings.ini")))
    qtbot.addWidget(window)
    window.resize(1366, 740)
    window.show()
    window.show_role("demo")
    demo = window.demo_page
    widths = {"before": window.minimumSizeHint().width()}
    assert demo.start(3, 2, 1)
    wait_until(qtbot, lambda: len(demo.server.history) >= 1, 120_000)
    widths["during"] = window.minimumSizeHint().width()
    with qtbot.waitSignal(demo.sig_all_done, timeout=180_000):
        pass
    widths["after"] = window.minimumSizeHint().width()
    assert max(widths.values()) <= 1366 and window.width() <= 1366, widths  # was 1,912 mid-run
    assert all(page.comparison.comparison for page in demo.clients)  # each facility's Alone vs federated
    window.stop_everything()
    wait_until(qtbot, lambda: not window.busy(), 30_000)
