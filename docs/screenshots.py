"""Regenerate the README's screenshots: real pages, a real federation on loopback, offscreen.

    QT_QPA_PLATFORM=offscreen python docs/screenshots.py

Writes docs/server-page.png (mid-run), docs/client-anomalies.png (after training) and
docs/connection-test.png.
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
from pumpfl_gui.gui.server_page import ServerPage  # noqa: E402

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
    wait(lambda: len(server.history) >= 4)
    server.grab().save(str(DOCS / "server-page.png"))
    wait(lambda: all(c.score is not None for c in clients) and not server.is_running())
    clients[0].grab().save(str(DOCS / "client-anomalies.png"))

    # The connection test: once against a closed port, then against a running server.
    tester = clients[1]
    tester.tabs.setCurrentIndex(0)
    tester.address.setText(f"127.0.0.1:{find_free_port(19500, '127.0.0.1')}")
    tester.join_code.setText("K7QM-2XPA-9WD3")
    tester.test_connection()
    wait(lambda: tester.test.isEnabled() and tester.checks.topLevelItemCount() >= 5)
    tester.grab().save(str(DOCS / "connection-test.png"))
    for page in [server, *clients]:
        page.close()
    print("wrote", *(p.name for p in sorted(DOCS.glob("*.png"))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
