"""Invites per facility, "forget this server" and the --insecure warning, as people use them:
the ``pumpfl`` command (real processes, a real federation on loopback) and the Server and
Client pages (pytest-qt, offscreen), with real facilities joining through the invites."""

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication, QMessageBox

from pumpfl_gui.cli import main
from pumpfl_gui.core.simulator import generate
from pumpfl_gui.fl.addresses import find_free_port
from pumpfl_gui.fl.client_runner import ClientOptions, ClientRunner
from pumpfl_gui.fl.invite import parse_invite
from pumpfl_gui.fl.security import KnownServers
from pumpfl_gui.gui.client_page import ClientPage
from pumpfl_gui.gui.server_page import ServerPage

FP = "AB" * 32  # a well-formed certificate fingerprint


@pytest.fixture(scope="module")
def default_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("invite-data")
    generate(folder)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PUMPFL_DATA_DIR", str(folder))
        yield folder


# ---- the command line ---------------------------------------------------------------------


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_forget_removes_one_pinned_server_lists_them_and_says_plainly_when_there_is_none(capsys):
    store = KnownServers()  # the user's own list (a private folder in tests, see conftest)
    code, out, _ = run_cli(capsys, "forget", "--list")
    assert code == 0 and "trusts no server yet" in out
    store.pin("10.0.0.1:8080", FP)
    store.pin("relay.example.net:9000", "CD" * 32)
    code, out, _ = run_cli(capsys, "forget", "--list")
    assert code == 0
    assert out.splitlines() == [
        "10.0.0.1:8080  certificate AB:AB:AB:AB:AB:AB:AB:AB...",
        "relay.example.net:9000  certificate CD:CD:CD:CD:CD:CD:CD:CD...",
    ]

    code, out, _ = run_cli(capsys, "forget", "10.0.0.1")  # the default port, as the facility typed it
    assert code == 0 and out.startswith("forgot 10.0.0.1:8080 (certificate AB:AB:AB:AB")
    assert store.get("10.0.0.1:8080") is None
    assert store.get("relay.example.net:9000") == ":".join(["CD"] * 32)  # the other one is kept

    code, out, _ = run_cli(capsys, "forget", "10.0.0.1:8080")
    assert code == 0 and "10.0.0.1:8080 is not among the servers this computer trusts; nothing to forget" in out

    # An invite names its server too.
    code, out, _ = run_cli(capsys, "forget", f"pumpfl://relay.example.net:9000/?code=K7QM-2XPA-9WD3&fp={'CD' * 32}")
    assert code == 0 and out.startswith("forgot relay.example.net:9000")
    assert store.get("relay.example.net:9000") is None


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["forget"], "name the server to forget"),
        (["forget", "bad host"], "contains a space"),
        (["forget", "10.0.0.1:8080", "--list"], "not both"),
        (["server", "--invite", " "], "--invite needs the facility's name"),
        (["server", "--invite", "Plant A", "--invite", "plant a"], "'plant a' is invited twice"),
        (["server", "--invite", "Plant A", "--insecure"], "leave out --insecure"),
        (["server", "--invites", "missing.txt"], "the invites file missing.txt does not exist"),
        (["server", "--invites", "empty.txt"], "names no facility"),
        (["server", "--invites", "binary.txt"], "is not plain text"),
        (["server", "--invites", "names.txt", "--invite", "Plant B"], "'Plant B' is invited twice"),
    ],
)
def test_bad_invite_and_forget_input_gives_one_error_line_and_exit_2(args, fragment, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty.txt").write_text("# nobody yet\n\n   \n")
    (tmp_path / "binary.txt").write_bytes(b"\xff\xfe\x00Plant")
    (tmp_path / "names.txt").write_text("Plant A\n# Plant C comes later\nPlant B\n")
    port = find_free_port(32500, "127.0.0.1")
    if args[0] == "server":  # refused before anything listens: a free port keeps the message the invite's
        args = [*args, "--host", "127.0.0.1", "--port", str(port)]
    code, out, err = run_cli(capsys, *args)
    assert code == 2, out + err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], err


class Proc:
    """A ``pumpfl`` process whose output lines are collected as they come."""

    def __init__(self, *args, env_extra=None):
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env_extra or {})}
        self.p = subprocess.Popen(
            [sys.executable, "-m", "pumpfl_gui.cli", *map(str, args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: queue.Queue = queue.Queue()
        self.out: list[str] = []
        self.err: list[str] = []
        self.readers = [
            threading.Thread(target=self._read, args=(self.p.stdout, self.out)),
            threading.Thread(target=self._read, args=(self.p.stderr, self.err)),
        ]
        for t in self.readers:
            t.start()

    def _read(self, stream, into):
        for line in stream:
            into.append(line.rstrip("\n"))
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, fragment: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        for line in self.out + self.err:
            if fragment in line:
                return line
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.p.poll() is not None and self.lines.empty():
                    break
                continue
            if fragment in line:
                return line
        raise AssertionError(f"no line with {fragment!r}; stdout {self.out}, stderr {self.err}")

    def finish(self, timeout: float = 240) -> int:
        try:
            code = self.p.wait(timeout)
        finally:
            if self.p.poll() is None:
                self.p.kill()
                self.p.wait(10)
            for t in self.readers:
                t.join(10)
        return code

    def interrupt(self) -> int:
        self.p.send_signal(signal.SIGINT)
        return self.finish(30)


@pytest.mark.federation
def test_insecure_server_and_client_each_print_a_warning(tmp_path, default_data):
    port = find_free_port(24100, "127.0.0.1")
    server = Proc("server", "1", "1", "--insecure", "--host", "127.0.0.1", "--port", port, "--out", tmp_path / "run")
    try:
        warning = server.wait_for("WARNING")
        server.wait_for("listening on")
    finally:
        server.interrupt()
    assert warning.startswith("WARNING: --insecure: no encryption and no join code: anyone who can reach this port can join")
    assert f"(port {port})" in warning
    assert [line for line in server.err if "WARNING" in line] == [warning]  # once

    # The facility's side shouts before it connects (here to a server that has gone).
    client = Proc("client", default_data / "client_0.csv", f"127.0.0.1:{port}", "--insecure", "--out", tmp_path / "c")
    client.finish(120)
    warnings = [line for line in client.err if "WARNING" in line]
    assert warnings == [
        (
            f"WARNING: insecure connection to 127.0.0.1:{port}: nothing is encrypted and the server is not checked: "
            "anyone on the network in between can read the model and this facility's updates, or pose as the server. "
            "Use it only on a network you trust"
        )
    ]
    assert "Traceback" not in "\n".join(client.err)


@pytest.mark.federation
def test_a_named_invite_from_the_command_line_admits_its_facility_under_its_name(tmp_path, default_data):
    port = find_free_port(24200, "127.0.0.1")
    names = tmp_path / "facilities.txt"
    names.write_text("# this season's sites\nPlant A\n\n")
    out = tmp_path / "run"
    server = Proc(
        "server",
        "1",
        "1",
        "--invites",
        names,
        "--invite",
        "Plant B",
        "--host",
        "127.0.0.1",
        "--port",
        port,
        "--out",
        out,
        "--local-epochs",
        "1",
    )
    try:
        line_a = server.wait_for("invite for Plant A: ")
        line_b = server.wait_for("invite for Plant B: ")
        invite_a = line_a.split(": ", 1)[1]
        assert parse_invite(invite_a).name == "Plant A"
        assert parse_invite(invite_a).join_code != parse_invite(line_b.split(": ", 1)[1]).join_code
        written = {p.read_text().strip(): p for p in (out / "invites").glob("*.txt")}
        assert invite_a in written and oct(written[invite_a].stat().st_mode & 0o777) == "0o600"
        # No --name: the facility joins under the invite's name; @FILE keeps the code out of `ps`.
        client = Proc(
            "client",
            "0",
            f"@{written[invite_a]}",
            "--out",
            tmp_path / "plant-a",
            env_extra={"PUMPFL_DATA_DIR": str(default_data)},
        )
        assert client.finish(240) == 0, client.err
        assert server.finish(60) == 0, server.err
    finally:
        if server.p.poll() is None:
            server.interrupt()
    assert [line for line in server.out if line.startswith("invite for ")] == [line_b, line_a]  # each once, --invite first
    assert any("Plant A joined" in line for line in server.err), server.err
    assert "WARNING" not in "\n".join(server.err + client.err)
    assert (tmp_path / "plant-a" / "model.json").is_file()
    # pumpfl client --out also trained alone: both models, comparison.json, the table in its output.
    comparison = json.loads((tmp_path / "plant-a" / "comparison.json").read_text())
    assert comparison["rounds"] == 1 and (tmp_path / "plant-a" / "alone" / "model.json").is_file()
    assert "Plant A: alone vs federated" not in client.out  # the client speaks for itself, unnamed
    assert any(line.startswith("alone vs federated on client_0.csv (1 round each):") for line in client.out), client.out
    assert any(line.strip().startswith("Kept for Monitor: the ") for line in client.out)


# ---- the Server page ----------------------------------------------------------------------


def click_in_next_question(qtbot, button_text: str) -> list:
    """Answer the next confirmation box by clicking ``button_text``; returns [its text]
    once seen."""
    seen: list = []

    def answer():
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            seen.append(box.text())
            for b in box.buttons():
                if b.text().replace("&", "") == button_text:
                    b.click()
                    return
        QTimer.singleShot(30, answer)

    QTimer.singleShot(30, answer)
    return seen


def join_with(invite_text: str, csv, tmp_path, name: str, results: dict) -> threading.Thread:
    invite = parse_invite(invite_text)
    options = ClientOptions(
        join_code=invite.join_code, fingerprint=invite.fingerprint, name=name, out_dir=tmp_path / name, max_wait=5
    )
    runner = ClientRunner(csv, invite.address, options, on_event=lambda e: None)
    results[f"{name}-runner"] = runner
    t = threading.Thread(target=lambda: results.__setitem__(name, runner.run()), name=f"test-{name}")
    t.start()
    return t


def add_facility(qtbot, page: ServerPage, name: str):
    qtbot.mouseClick(page.add_facility, Qt.MouseButton.LeftButton)
    dialog = page.facility_dialog
    qtbot.waitUntil(dialog.isVisible, timeout=5000)
    qtbot.keyClicks(dialog.name, name)
    qtbot.mouseClick(dialog.create, Qt.MouseButton.LeftButton)
    return dialog


def test_server_page_adds_revokes_and_admits_facilities_by_their_own_invites(qtbot, tmp_path, default_data):
    page = ServerPage()
    page.host = "127.0.0.1"
    qtbot.addWidget(page)
    page.port.setValue(find_free_port(24300, "127.0.0.1"))
    page.rounds.setValue(1)
    page.min_clients.setValue(3)  # nobody trains: the run waits while invites come and go
    page.show()

    # Before the start the name waits for it: no line yet, nothing to copy.
    dialog = add_facility(qtbot, page, "Plant A")
    qtbot.waitUntil(lambda: page.facility_dialog is None, timeout=5000)
    assert not dialog.isVisible()
    assert page.invite_list.names() == ["Plant A"]
    assert page.invite_list.state("Plant A") == "made at start"
    assert not page.invite_list.copy_button("Plant A").isEnabled()
    # A name already invited is refused in the dialog, which stays open to fix it.
    dialog = add_facility(qtbot, page, "plant a")
    assert dialog.isVisible() and "already has an invite" in dialog.problem.text()
    dialog.reject()

    assert page.start_server(tmp_path / "run")
    qtbot.waitUntil(lambda: page.invite_list.line("Plant A") is not None, timeout=30_000)
    runner = page.worker.runner
    line_a = page.invite_list.line("Plant A")
    assert line_a == runner.invites()["Plant A"].to_text() and parse_invite(line_a).name == "Plant A"
    qtbot.mouseClick(page.invite_list.copy_button("Plant A"), Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == line_a
    assert "Plant A's invite copied to the clipboard" in page.log.lines()[-1]

    # While the server runs, the dialog makes the invite at once and shows it with a Copy button.
    dialog = add_facility(qtbot, page, "Plant B")
    assert dialog.invite.isVisible() and dialog.copy.isVisible()
    line_b = dialog.invite.text()
    assert parse_invite(line_b).name == "Plant B" and set(runner.invites()) == {"Plant A", "Plant B"}
    qtbot.mouseClick(dialog.copy, Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == line_b
    dialog.accept()
    qtbot.waitUntil(lambda: page.invite_list.names() == ["Plant A", "Plant B"], timeout=5000)
    assert page.invite_list.line("Plant B") == line_b
    assert not any(parse_invite(line_b).join_code in line for line in page.log.lines())  # the code is not logged

    results: dict = {}
    threads = [join_with(line_b, default_data / "client_1.csv", tmp_path, "Plant B", results)]
    qtbot.waitUntil(lambda: page.invite_list.state("Plant B") == "joined", timeout=60_000)

    # Revoke asks first; Cancel keeps the invite.
    asked = click_in_next_question(qtbot, "Cancel")
    qtbot.mouseClick(page.invite_list.revoke_button("Plant A"), Qt.MouseButton.LeftButton)
    assert asked and "Revoke Plant A's invite?" in asked[0]
    assert set(runner.invites()) == {"Plant A", "Plant B"}
    asked = click_in_next_question(qtbot, "Revoke")
    qtbot.mouseClick(page.invite_list.revoke_button("Plant A"), Qt.MouseButton.LeftButton)
    assert asked
    assert set(runner.invites()) == {"Plant B"} and page.invite_list.names() == ["Plant B"]
    # The revoked code admits no one; Plant B, untouched, is still connected.
    threads.append(join_with(line_a, default_data / "client_0.csv", tmp_path, "Plant A", results))
    threads[-1].join(60)
    assert results["Plant A"].kind == "Failed", results["Plant A"]
    assert page.invite_list.state("Plant B") == "joined"
    assert page.table.item(page.rows["Plant B"], 2).text() == "connected"

    server_thread = page.run_thread
    page.stop_server()
    qtbot.waitUntil(lambda: not page.is_running(), timeout=30_000)
    for t in threads:
        t.join(60)
        assert not t.is_alive()
    # The thread ends once the window's loop has run its queued quit (a blocking wait could not).
    qtbot.waitUntil(server_thread.isFinished, timeout=30_000)
    # The run's codes are gone with it; the name stays for the next start.
    assert page.invite_list.names() == ["Plant B"] and page.invite_list.line("Plant B") is None
    assert page.add_facility.isEnabled()


def test_insecure_shows_a_warning_on_both_pages_and_a_server_has_no_invites_per_facility(qtbot):
    server = ServerPage()
    qtbot.addWidget(server)
    server.show()
    assert not server.insecure_warning.isVisible() and server.add_facility.isEnabled()
    server.insecure.setChecked(True)
    assert server.insecure_warning.isVisible()
    assert "no encryption and no join code: anyone who can reach this port can join" in server.insecure_warning.text().lower()
    assert not server.add_facility.isEnabled()
    server.insecure.setChecked(False)
    assert not server.insecure_warning.isVisible() and server.add_facility.isEnabled()

    client = ClientPage(known_servers=None)
    qtbot.addWidget(client)
    client.show()
    client.address.setText("192.168.1.20:8080")
    assert not client.insecure_warning.isVisible()
    client.insecure.setChecked(True)
    assert client.insecure_warning.isVisible()
    assert "nothing is encrypted and the server is not checked" in client.insecure_warning.text().lower()
    client.address.setText("pumpfl://192.168.1.20:8080/")  # an insecure server's invite: no certificate
    assert client.insecure_warning.isVisible()
    client.address.setText(f"pumpfl://192.168.1.20:8080/?code=K7QM-2XPA-9WD3&fp={FP}")
    assert not client.insecure_warning.isVisible()


# ---- the Client page ----------------------------------------------------------------------


def test_forget_this_server_on_the_client_page_asks_then_unpins_only_that_server(qtbot, tmp_path):
    store = KnownServers(tmp_path / "known.json")
    store.pin("10.0.0.5:8080", FP)
    store.pin("10.0.0.6:8080", "CD" * 32)
    page = ClientPage(known_servers=store)
    qtbot.addWidget(page)
    page.show()
    assert not page.forget.isEnabled()  # an empty field names no server
    page.address.setText("10.0.0.7:8080")
    assert not page.forget.isEnabled()  # nothing pinned for it
    page.address.setText(f"pumpfl://10.0.0.5:8080/?code=K7QM-2XPA-9WD3&fp={FP}")
    assert page.forget.isEnabled()

    asked = click_in_next_question(qtbot, "Cancel")
    qtbot.mouseClick(page.forget, Qt.MouseButton.LeftButton)
    assert asked and "Forget the server at 10.0.0.5:8080?" in asked[0] and "AB:AB:AB:AB" in asked[0]
    assert store.get("10.0.0.5:8080") is not None

    asked = click_in_next_question(qtbot, "Forget")
    qtbot.mouseClick(page.forget, Qt.MouseButton.LeftButton)
    assert asked
    assert store.get("10.0.0.5:8080") is None and store.get("10.0.0.6:8080") is not None
    assert "Forgot the server at 10.0.0.5:8080" in page.status.text()
    assert not page.forget.isEnabled()
    page.address.setText("10.0.0.6")  # the default port
    assert page.forget.isEnabled()
