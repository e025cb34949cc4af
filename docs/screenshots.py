"""Regenerate the README's screenshots: real pages, a real federation on loopback, offscreen.

    QT_QPA_PLATFORM=offscreen python docs/screenshots.py

Writes docs/server-page.png (mid-run, FedProx with agreed scaling), docs/client-anomalies.png
(after training), docs/connection-test.png (against the running server),
docs/connection-test-closed-port.png, and the server and client pages in the dark palette (*-dark.png).
"""

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", f"offscreen:configfile={Path(__file__).resolve().parents[1] / 'tests' / 'offscreen-screen.json'}")

from PySide6.QtWidgets import QApplication  # noqa: E402

from pumpfl_gui.fl.addresses import find_free_port  # noqa: E402
from pumpfl_gui.fl.security import KnownServers  # noqa: E402
from pumpfl_gui.gui.client_page import ClientPage  # noqa: E402
from pumpfl_gui.gui.plots import apply_pending_updates  # noqa: E402
from pumpfl_gui.gui.server_page import ServerPage  # noqa: E402
from pumpfl_gui.gui.theme import dark_palette  # noqa: E402

DOCS = Path(__file__).resolve().parent
SIZE = (1500, 950)


def wait(condition, timeout=300.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        QApplication.processEvents()
        time.sleep(0.02)


def main() -> int:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setStyle("Fusion")
    known = KnownServers(Path(tempfile.mkdtemp()) / "known.json")
    server = ServerPage()
    server.host = "127.0.0.1"
    server.port.setValue(find_free_port(18080, "127.0.0.1"))
    server.rounds.setValue(6)
    # FedProx with agreed scaling and threshold. Differential privacy stays off: with two
    # facilities its noise (noise multiplier x clipping norm / 2) keeps the model from learning.
    server.strategy.setCurrentIndex(server.strategy.findData("fedprox"))
    server.shared_scaling.setChecked(True)
    server.resize(*SIZE)
    server.show()
    server.start_server(Path(tempfile.mkdtemp(prefix="pumpfl-shots-")))
    wait(lambda: server.invite.text().startswith("pumpfl://"))
    clients = []
    for i in (0, 1):
        page = ClientPage(known_servers=known)
        page.resize(*SIZE)
        page.show()
        page.load_default(i)
        clients.append(page)
    wait(lambda: all(c.data is not None for c in clients))
    for page in clients:
        page.address.setText(server.invite.text())
        page.start_client()
    # The connection test against the running server: a third site checks before it joins.
    tester = ClientPage(known_servers=KnownServers(Path(tempfile.mkdtemp()) / "known.json"))
    tester.resize(*SIZE)
    tester.show()
    tester.load_default(2)
    wait(lambda: tester.data is not None)
    tester.tabs.setCurrentIndex(2)
    tester.address.setText(server.invite.text())
    tester.test_connection()
    wait(lambda: tester.test.isEnabled() and tester.checks.topLevelItemCount() >= 5)
    tester.grab().save(str(DOCS / "connection-test.png"))

    wait(lambda: len(server.history) >= 4)
    apply_pending_updates()
    server.grab().save(str(DOCS / "server-page.png"))
    wait(lambda: all(c.score is not None for c in clients) and not server.is_running())
    apply_pending_updates()
    clients[0].grab().save(str(DOCS / "client-anomalies.png"))

    # ... and against a closed port: red, with what to do.
    tester.address.setText(f"127.0.0.1:{find_free_port(19500, '127.0.0.1')}")
    tester.join_code.setText("K7QM-2XPA-9WD3")
    tester.test_connection()
    wait(lambda: tester.test.isEnabled() and "failed" in tester.checks.statuses())
    tester.grab().save(str(DOCS / "connection-test-closed-port.png"))

    # The dark palette (View > Appearance > Dark, or the desktop's own dark mode).
    app.setPalette(dark_palette())
    QApplication.processEvents()
    server.grab().save(str(DOCS / "server-page-dark.png"))
    clients[0].grab().save(str(DOCS / "client-anomalies-dark.png"))
    for page in [server, *clients, tester]:
        page.close()
    print("wrote", *(p.name for p in sorted(DOCS.glob("*.png"))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
