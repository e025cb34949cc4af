"""Every control can be reached with the keyboard alone: Tab walks each page's controls in
reading order and comes back round, with no widget that swallows Tab (real window, offscreen)."""

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from pumpfl_gui.gui.main_window import MainWindow
from pumpfl_gui.gui.settings import AppSettings


def tab_walk(qtbot, start, steps=80) -> list:
    """Press Tab from ``start`` until focus comes back to it; return the widgets focused on
    the way."""
    start.setFocus(Qt.FocusReason.TabFocusReason)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is start, timeout=2000)
    seen = [start]
    for _ in range(steps):
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
        focused = QApplication.focusWidget()
        if focused is start:
            return seen
        assert focused is not seen[-1], f"Tab is stuck on {type(focused).__name__}"
        seen.append(focused)
    pytest.fail(f"Tab never came back to the first control; stuck around {type(seen[-1]).__name__}")


@pytest.fixture()
def window(qtbot, tmp_path):
    w = MainWindow(AppSettings(str(tmp_path / "settings.ini")))
    qtbot.addWidget(w)
    w.show()
    w.activateWindow()
    qtbot.waitExposed(w)
    yield w
    assert w.wait_idle(60.0)  # the client page loads its data in a worker; let it finish


def test_tab_reaches_every_control_on_the_start_page(qtbot, window):
    page = window.start_page
    window.show_role("start")
    seen = tab_walk(qtbot, page.server)
    assert {page.server, page.client, page.demo} <= set(seen)
    assert seen.index(page.server) < seen.index(page.client) < seen.index(page.demo)


def test_tab_reaches_every_control_on_the_server_page_in_reading_order(qtbot, window):
    page = window.server_page
    window.show_role("server")
    seen = tab_walk(qtbot, page.port)
    wanted = [
        page.port,
        page.advertise,
        page.rounds,
        page.min_clients,
        page.epochs,
        page.lr,
        page.batch,
        page.timeout,
        page.insecure,
        page.start,
        page.log.search,
    ]
    missing = [type(w).__name__ for w in wanted if w not in seen]
    assert not missing, f"not reachable with Tab: {missing}"
    order = [seen.index(w) for w in wanted]
    assert order == sorted(order), "Tab order does not follow the page from top to bottom"


def test_tab_reaches_every_control_on_the_client_page_in_reading_order(qtbot, window):
    page = window.client_page
    window.show_role("client")
    seen = tab_walk(qtbot, page.source)
    wanted = [page.source, page.pick, page.address, page.join_code, page.test, page.start, page.tabs.tabBar()]
    missing = [type(w).__name__ for w in wanted if w not in seen]
    assert not missing, f"not reachable with Tab: {missing}"
    order = [seen.index(w) for w in wanted]
    assert order == sorted(order), "Tab order does not follow the page from top to bottom"


def test_the_about_box_names_the_version(qtbot, window):
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QMessageBox

    from pumpfl_gui import __version__

    help_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Help")
    about = next(a for a in help_menu.actions() if "About" in a.text())
    shown = []

    def read_and_close():
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            shown.append(box.text())
            box.accept()

    poll = QTimer()
    poll.timeout.connect(read_and_close)
    poll.start(50)
    about.trigger()  # returns once the box is closed
    poll.stop()
    assert shown and __version__ in shown[0]
