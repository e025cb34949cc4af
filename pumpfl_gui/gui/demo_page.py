"""“Try it on this computer”: a server and 2–5 default facilities on loopback, side by side (gui).

It drives the same Server and Client pages a real deployment uses — only the address is
127.0.0.1 — so what people learn here is what they will see at their sites.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSpinBox, QSplitter, QTabWidget, QVBoxLayout, QWidget

from ..core.paths import DEFAULT_FACILITIES
from ..fl.addresses import find_free_port
from ..fl.events import Finished
from ..fl.security import KnownServers
from .client_page import ClientPage
from .server_page import ServerPage


class DemoPage(QWidget):
    sig_all_done = Signal()
    """The server finished and every facility has shown its anomaly view (or failed)."""
    sig_open_model = Signal(object, object)
    """A facility's kept model to open in Monitor, on its data file (ClientPage.sig_open_model)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.clients_box = QSpinBox(minimum=2, maximum=DEFAULT_FACILITIES, value=2, prefix="facilities: ")
        self.rounds_box = QSpinBox(minimum=1, maximum=100, value=5, prefix="rounds: ")
        self.epochs_box = QSpinBox(minimum=1, maximum=20, value=3, prefix="local epochs: ")
        self.go = QPushButton("&Start the demo")
        self.go.setDefault(True)
        intro = QLabel(
            "A server and a few facilities from the built-in pump data train together on this "
            "computer, exactly as they would across sites. Nothing leaves this computer."
        )
        intro.setWordWrap(True)
        bar = QHBoxLayout()
        for w in (self.clients_box, self.rounds_box, self.epochs_box, self.go):
            bar.addWidget(w)
        bar.addStretch(1)
        self.server = ServerPage()
        self.server.serve_this_computer_only()
        # The bar above sets the run; each page shows its run view only, so the whole demo fits a
        # 1366-pixel screen (the pages' own controls made it 1,900 wide).
        self.server.controls_pane.hide()
        self.tabs = QTabWidget()
        waiting = QLabel(
            "Each facility's page — its training, the anomalies it finds, what federating gave it — "
            "opens here once the demo starts."
        )
        waiting.setWordWrap(True)
        waiting.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.tabs.addTab(waiting, "Facilities")
        self.clients: list[ClientPage] = []
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.server)
        split.addWidget(self.tabs)
        split.setSizes([650, 716])  # the server's two plots side by side need about half
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(bar)
        layout.addWidget(split, 1)
        # One temporary folder for everything a demo writes but the facilities' models (which go
        # where a facility keeps them, for Monitor): removed when the app ends.
        self._tmp = tempfile.TemporaryDirectory(prefix="pumpfl-try-it-", ignore_cleanup_errors=True)
        self._runs = 0
        self._known = KnownServers(Path(self._tmp.name) / "known.json")
        self._pending: set[int] = set()
        self._server_done = False
        self.go.clicked.connect(lambda: self.start())
        self.server.sig_finished.connect(self._server_finished)
        self.server.sig_invite.connect(self._invite_ready)

    def start(self, clients: int | None = None, rounds: int | None = None, epochs: int | None = None) -> bool:
        if self.server.is_running() or any(c.is_running() for c in self.clients):
            return False
        clients = clients or self.clients_box.value()
        self.server.configure(
            rounds or self.rounds_box.value(),
            epochs or self.epochs_box.value(),
            clients,
            find_free_port(18080, "127.0.0.1") or 18080,
        )
        while self.tabs.count():
            self.tabs.removeTab(0)
        for page in self.clients:
            page.deleteLater()
        self.clients = []
        for i in range(clients):
            page = ClientPage(known_servers=self._known)
            page.controls_pane.hide()
            page.load_default(i)
            page.sig_finished.connect(lambda r, i=i: self._client_finished(i, r))
            page.sig_scored.connect(lambda i=i: self._client_scored(i))
            page.sig_open_model.connect(self.sig_open_model)
            self.clients.append(page)
            self.tabs.addTab(page, f"client_{i}")  # the name the server's table gives it (its file's)
        self._pending = set(range(clients))
        self._server_done = False
        self.go.setEnabled(False)
        self._runs += 1
        return self.server.start_server(Path(self._tmp.name) / f"run-{self._runs}")

    def stop(self) -> None:
        self.server.stop_server()
        for c in self.clients:
            c.stop_client()

    def _invite_ready(self, text: str) -> None:
        for page in self.clients:
            page.join_when_ready(text, self.server.is_running)

    def _server_finished(self, _result) -> None:
        self._server_done = True
        self._check_done()

    def _client_finished(self, i: int, result) -> None:
        if not isinstance(result, Finished) or not result.rounds_completed:  # an error, a failure, or no model
            self._pending.discard(i)
            self._check_done()

    def _client_scored(self, i: int) -> None:
        self._pending.discard(i)
        self._check_done()

    def _check_done(self) -> None:
        if self._server_done and not self._pending:
            self.go.setEnabled(True)
            self.sig_all_done.emit()
