"""The one window: choose a role, then its page (gui layer).

The role pages are built the first time they are shown: they pull in torch, Flower and pandas
(several seconds of imports), and the window should appear at once on a double-click. The
start-up warm-up thread imports those modules in the background meanwhile.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QApplication, QLabel, QMainWindow, QMessageBox, QPushButton, QStackedWidget, QVBoxLayout, QWidget

from .. import __version__
from .assets import app_icon
from .theme import THEMES, apply_theme

ROLES = ("start", "server", "client", "demo", "monitor")


class StartPage(QWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        title = QLabel(
            "<h1>PumpFL</h1><p>Train one pump anomaly detector with other sites — your readings never leave this computer.</p>"
        )
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        title.setWordWrap(True)
        self.server = QPushButton("&Server — coordinate the training\n(one site runs this and invites the others)")
        self.client = QPushButton("&Client — join with this site's data\n(paste the invite you were sent)")
        self.demo = QPushButton("&Try it on this computer\n(a server and a few example sites, here)")
        self.monitor = QPushButton("&Monitor — watch new readings with a saved model\n(the day after training)")
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        layout.addWidget(title)
        for b in (self.server, self.client, self.demo, self.monitor):
            b.setMinimumHeight(72)
            b.setMaximumWidth(560)
            layout.addWidget(b, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addStretch(2)


class MainWindow(QMainWindow):
    def __init__(self, settings) -> None:
        super().__init__()
        self.settings = settings
        apply_theme(QApplication.instance(), settings.get("app/theme", "system", str), startup=True)
        self.setWindowTitle("PumpFL")
        self.setWindowIcon(app_icon())
        self.start_page = StartPage()
        self._pages: dict[str, QWidget] = {"start": self.start_page}
        self.stack = QStackedWidget()
        self.stack.addWidget(self.start_page)
        self.setCentralWidget(self.stack)
        self.start_page.server.clicked.connect(lambda: self.show_role("server"))
        self.start_page.client.clicked.connect(lambda: self.show_role("client"))
        self.start_page.demo.clicked.connect(lambda: self.show_role("demo"))
        self.start_page.monitor.clicked.connect(lambda: self.show_role("monitor"))

        menu = self.menuBar().addMenu("&PumpFL")
        back = QAction("&Choose role…", self, shortcut=QKeySequence("Ctrl+Home"))
        back.triggered.connect(lambda: self.show_role("start"))
        quit_ = QAction("&Quit", self, shortcut=QKeySequence.StandardKey.Quit)
        quit_.triggered.connect(self.close)
        open_model = QAction("Open &model…", self, shortcut=QKeySequence.StandardKey.Open)
        open_model.triggered.connect(self.open_model)
        menu.addAction(back)
        menu.addAction(open_model)
        menu.addAction(quit_)
        view = self.menuBar().addMenu("&View")
        appearance = view.addMenu("&Appearance")
        self.theme_actions = QActionGroup(self)
        chosen = settings.get("app/theme", "system", str)
        for theme, label in zip(THEMES, ("Follow the &system", "&Light", "&Dark")):
            action = QAction(label, self, checkable=True, checked=theme == chosen)
            action.triggered.connect(lambda _=False, t=theme: self.set_theme(t))
            self.theme_actions.addAction(action)
            appearance.addAction(action)
        help_ = self.menuBar().addMenu("&Help")
        about = QAction("&About PumpFL", self)
        about.triggered.connect(self.about)
        help_.addAction(about)

        geometry = settings.geometry()
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1400, 900)
        role = settings.get("app/role", "start", str)
        self.show_role(role if role in ROLES and role != "demo" else "start")

    def page(self, role: str) -> QWidget:
        """The page of ``role``, built on first use."""
        if role not in self._pages:
            if role == "server":
                from .server_page import ServerPage

                page = ServerPage(self.settings)
            elif role == "client":
                from ..fl.security import KnownServers
                from .client_page import ClientPage

                page = ClientPage(self.settings, known_servers=KnownServers())
                page.sig_open_model.connect(self.monitor_model)
            elif role == "monitor":
                from .monitor_page import MonitorPage

                page = MonitorPage(self.settings)
            else:
                from .demo_page import DemoPage

                page = DemoPage()
                page.sig_open_model.connect(self.monitor_model)
            self._pages[role] = page
            self.stack.addWidget(page)
        return self._pages[role]

    @property
    def server_page(self):
        return self.page("server")

    @property
    def client_page(self):
        return self.page("client")

    @property
    def demo_page(self):
        return self.page("demo")

    def show_role(self, role: str) -> None:
        page = self.page(role)
        self.stack.setCurrentWidget(page)
        titles = {
            "start": "",
            "server": " — Server",
            "client": " — Client",
            "demo": " — Try it on this computer",
            "monitor": " — Monitor",
        }
        self.setWindowTitle("PumpFL" + titles[role])
        self.settings.set("app/role", role)
        if role == "client" and page.data is None and not page.is_running():
            page.load_default(page.source.currentIndex() if page.source.currentIndex() < 5 else 0)

    @property
    def monitor_page(self):
        return self.page("monitor")

    def open_model(self) -> None:
        """File ▸ Open model…: the Monitor page, asking for the model's folder."""
        self.show_role("monitor")
        self.monitor_page.choose_model()

    def monitor_model(self, folder: Path, csv: Path | None = None) -> None:
        """A run's kept model, opened in Monitor on the file it was trained on."""
        self.show_role("monitor")
        if self.monitor_page.open_model(Path(folder)) and csv is not None:
            self.monitor_page.set_data(Path(csv))

    def set_theme(self, theme: str) -> None:
        """Light, dark or the system's; remembered for the next start."""
        apply_theme(QApplication.instance(), theme)
        self.settings.set("app/theme", theme)
        for action, name in zip(self.theme_actions.actions(), THEMES):
            action.setChecked(name == theme)

    def role(self) -> str:
        current = self.stack.currentWidget()
        return next(name for name, page in self._pages.items() if page is current)

    def about(self) -> None:
        QMessageBox.about(
            self,
            "About PumpFL",
            f"<h3>PumpFL {__version__}</h3><p>Federated pump-sensor anomaly detection with "
            "Flower. Each site trains on its own readings and shares only model parameters, "
            "over an encrypted connection.</p>",
        )

    def _clients_and_servers(self) -> tuple[list, list]:
        """(client pages, server pages) built so far, the demo's included."""
        pages = self._pages
        clients = [pages["client"]] if "client" in pages else []
        servers = [pages["server"]] if "server" in pages else []
        if "demo" in pages:
            clients += pages["demo"].clients
            servers.append(pages["demo"].server)
        return clients, servers

    def training(self) -> bool:
        """A federation is running on some page (quitting would cut it off)."""
        clients, servers = self._clients_and_servers()
        return any(s.is_running() for s in servers) or any(c.is_training() for c in clients)

    def busy(self) -> bool:
        """Anything still working in the background, training or loading / scoring data."""
        clients, servers = self._clients_and_servers()
        reading = "monitor" in self._pages and self._pages["monitor"].busy  # a look at the watched file
        return reading or any(s.is_running() for s in servers) or any(c.is_running() for c in clients)

    def stop_everything(self) -> None:
        for name, stop in (("server", "stop_server"), ("client", "stop_client"), ("demo", "stop"), ("monitor", "stop_watching")):
            if name in self._pages:
                getattr(self._pages[name], stop)()

    def wait_idle(self, timeout: float) -> bool:
        """Keep the window responsive while workers wind down; True once none is left."""
        import time

        from PySide6.QtWidgets import QApplication

        deadline = time.monotonic() + timeout
        while self.busy() and time.monotonic() < deadline:
            QApplication.processEvents()
            time.sleep(0.02)
        return not self.busy()

    def closeEvent(self, event) -> None:
        if self.training():
            answer = QMessageBox.question(self, "Training is running", "Stop the training and quit?")
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
            self.stop_everything()
        if "monitor" in self._pages:
            self._pages["monitor"].stop_watching()
        self.wait_idle(20.0)  # training winding down, or a file still loading: seconds at most
        self.settings.set_geometry(self.saveGeometry())
        self.settings.sync()
        super().closeEvent(event)
