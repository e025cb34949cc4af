"""Facilities that leave, a paused run, and honest endings — real federations on loopback.

Facilities that must die do so as real processes (``python -m pumpfl_gui client``) killed with
SIGKILL; the others run in threads (tests/loopback.py).
"""

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pumpfl_gui.core.detector import describe_model
from pumpfl_gui.core.model_store import load_detector
from pumpfl_gui.fl.addresses import ServerAddress, find_free_port
from pumpfl_gui.fl.client_runner import ClientOptions, ClientRunner
from pumpfl_gui.fl.invite import parse_invite
from pumpfl_gui.fl.protocol import FederationSettings

from loopback import Run

pytestmark = pytest.mark.federation  # the `pumpfl` processes too


def _facility_process(csv: Path, invite: str, name: str, out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pumpfl_gui.cli",
            "client",
            str(csv),
            invite,
            "--name",
            name,
            "--out",
            str(out),
            "--no-personalise",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_until(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {seconds:.0f} s"
        time.sleep(0.02)


def _timed(run: Run) -> None:
    """Stamp every event with the moment it arrived (the kill is timed against them)."""
    events, stamped = run.events, []

    class Stamping(list):
        def append(self, item):
            stamped.append((time.monotonic(), item))
            super().append(item)

    run.events = Stamping(events)
    run.stamped = stamped


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGSTOP], ids=["killed", "hung"])
def test_a_facility_killed_or_hung_mid_round_is_out_within_seconds_under_the_default_timeout(plant, tmp_path, how):
    settings = FederationSettings(rounds=3, min_clients=2, local_epochs=3, join_timeout=120)
    assert settings.round_timeout == 600  # the default: the round must not wait for it
    run = Run(tmp_path, settings)
    _timed(run)
    victim = _facility_process(plant / "client_2.csv", run.invite.to_text(), "victim", tmp_path / "victim")
    try:
        _wait_until(lambda: run.of("server", "ClientJoined"), 60, "the victim joining")
        run.add("a", plant / "client_0.csv")
        run.add("b", plant / "client_1.csv")
        _wait_until(lambda: any(e.round == 2 for e in run.of("server", "RoundStarted")), 120, "round 2")
        assert "victim" in run.of("server", "RoundStarted")[-1].participants
        time.sleep(0.5)  # inside round 2's training (three epochs on the largest file)
        victim.send_signal(how)  # SIGSTOP: the process stays, its socket open, and answers nothing
        killed = time.monotonic()
        run.join()
    finally:
        victim.kill()
        victim.communicate()
    ended = next(t for t, (who, e) in run.stamped if who == "server" and e.kind == "RoundFinished" and e.round == 2)
    print(f"round 2 ended {ended - killed:.1f} s after {how.name} (round timeout {settings.round_timeout:.0f} s)")
    assert ended - killed < 30
    result = run.results["server"]
    assert result.kind == "Finished" and result.complete and result.rounds_completed == 3
    dropped = [e for e in run.of("server", "FacilityDropped") if e.name == "victim"]
    assert dropped and dropped[0].round == 2 and "left" in dropped[0].reason
    history = json.loads((tmp_path / "server" / "history.json").read_text())["rounds"]
    assert history[1]["left"] == {"victim": dropped[0].reason}  # the round's record names it
    assert set(history[1]["per_client"]) == {"a", "b"} and set(history[2]["per_client"]) == {"a", "b"}
    for name in ("a", "b"):
        assert run.results[name].complete and run.results[name].message == "the run completed (3 rounds)"


def test_a_run_below_the_minimum_pauses_and_resumes_when_a_facility_comes_back(plant, tmp_path):
    run = Run(tmp_path, FederationSettings(rounds=3, min_clients=2, local_epochs=1, join_timeout=90, round_timeout=60))
    victim = _facility_process(plant / "client_2.csv", run.invite.to_text(), "victim", tmp_path / "victim")
    try:
        _wait_until(lambda: run.of("server", "ClientJoined"), 60, "the victim joining")
        run.add("a", plant / "client_0.csv")
        _wait_until(lambda: run.of("server", "RoundFinished"), 120, "round 1")
        before = len(run.of("server", "Waiting"))  # the wait for the first two to join
        victim.send_signal(signal.SIGKILL)
        _wait_until(lambda: len(run.of("server", "Waiting")) > before, 30, "the pause")
        waiting = run.of("server", "Waiting")[before]
        assert (waiting.needed, waiting.connected) == (2, 1)
        assert waiting.detail.startswith("waiting for victim: ") and 80 < waiting.seconds_left <= 90
        time.sleep(6)  # the countdown goes on while nobody comes
        later = run.of("server", "Waiting")[before + 1]
        assert later.seconds_left < waiting.seconds_left and "server" not in run.results
        run.add("victim", plant / "client_2.csv")  # the facility is back (restarted)
        run.join()
    finally:
        victim.kill()
        victim.communicate()
    result = run.results["server"]
    assert result.kind == "Finished" and result.complete and result.rounds_completed == 3
    history = json.loads((tmp_path / "server" / "history.json").read_text())["rounds"]
    assert [h["round"] for h in history] == [1, 2, 3]
    assert set(history[-1]["per_client"]) == {"a", "victim"}
    assert run.results["a"].complete


def test_too_few_facilities_for_the_whole_join_wait_fail_resumably_and_facilities_wait(plant, tmp_path):
    run = Run(tmp_path, FederationSettings(rounds=5, min_clients=2, local_epochs=1, join_timeout=15, round_timeout=60))
    victim = _facility_process(plant / "client_0.csv", run.invite.to_text(), "victim", tmp_path / "victim")
    try:
        _wait_until(lambda: run.of("server", "ClientJoined"), 15, "the victim joining")
        run.add("a", plant / "client_0.csv", max_wait=4)
        _wait_until(lambda: run.of("server", "RoundFinished"), 60, "round 1")
        victim.send_signal(signal.SIGKILL)
        run.join()
    finally:
        victim.kill()
        victim.communicate()
    result = run.results["server"]
    assert result.kind == "Failed"
    assert "only 1 of 2 facilities are connected after waiting 15 s for victim" in result.message
    assert "--resume" in result.message
    said = [e.detail for e in run.of("a", "ConnectionState") if e.state == "waiting"]
    assert len(said) == 1 and said[0].startswith("the coordinator's run failed at round ")
    assert said[0].endswith("; waiting for it to resume") and "only 1 of 2" in said[0]
    # It waited for the coordinator (up to max_wait), never claiming the run finished.
    assert not run.of("a", "Finished") and run.results["a"].kind == "Failed" and "no server at" in run.results["a"].message
    assert not (tmp_path / "a").exists()  # no "final" model from a failed run


def test_a_run_stopped_by_the_coordinator_says_so_and_marks_the_models_incomplete(plant, tmp_path):
    run = Run(tmp_path, FederationSettings(rounds=20, min_clients=2, local_epochs=1, join_timeout=60, round_timeout=60))
    run.add("a", plant / "client_0.csv")
    run.add("b", plant / "client_1.csv")
    _wait_until(lambda: len(run.of("server", "RoundFinished")) >= 2, 120, "two rounds")
    run.server.stop()
    run.join()
    server = run.results["server"]
    done = server.rounds_completed
    assert server.kind == "Finished" and not server.complete and 2 <= done < 20
    assert server.message == f"stopped at round {done} of 20"
    for name in ("a", "b"):
        result = run.results[name]
        assert result.kind == "Finished" and not result.complete
        assert result.message == f"the coordinator stopped the run at round {done} of 20"
        model = load_detector(tmp_path / name)
        words = describe_model(model.info, "its rows", "its rows")
        assert words.endswith(f"from an incomplete run: {result.rounds_completed} of 20 rounds"), words


def test_the_server_killed_mid_run_no_facility_says_the_run_finished(plant, tmp_path):
    port = find_free_port(23500, "127.0.0.1")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pumpfl_gui.cli",
            "server",
            "50",
            "2",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--out",
            str(tmp_path / "srv"),
            "--local-epochs",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    facility = None
    try:
        invite = parse_invite(server.stdout.readline())
        facility = _facility_process(plant / "client_1.csv", invite.to_text(), "cli", tmp_path / "cli")
        events: list = []
        runner = ClientRunner(
            plant / "client_0.csv",
            invite.address,
            ClientOptions(
                join_code=invite.join_code, fingerprint=invite.fingerprint, max_wait=6, out_dir=tmp_path / "mine", name="mine"
            ),
            events.append,
        )
        t = threading.Thread(target=runner.run, name="test-mine")
        t.start()
        _wait_until(lambda: any(e.kind == "EvaluateResult" for e in events), 90, "a first round")
        server.send_signal(signal.SIGKILL)
        server.communicate()
        t.join(60)
        assert not t.is_alive()
        time.sleep(12)  # the facility process notices within about 10 s (gRPC keepalive)
        facility.send_signal(signal.SIGINT)
        console = facility.communicate(timeout=30)[0]
    finally:
        for proc in (server, facility):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.communicate()
    lost = [e.detail for e in events if e.kind == "ConnectionState" and e.state == "reconnecting"]
    assert lost and all("lost the server" in d and "waiting for it to come back" in d for d in lost)
    assert not any(e.kind == "Finished" or getattr(e, "state", "") == "finishing" for e in events)
    assert events[-1].kind == "Failed" and "no server at" in events[-1].message
    assert not (tmp_path / "mine").exists() and not (tmp_path / "cli").exists()  # no "final" model
    assert "lost the server" in console and "finished" not in console and "Traceback" not in console, console


def test_a_wrong_address_that_never_answered_fails_within_seconds(plant, tmp_path):
    port = find_free_port(24500, "127.0.0.1")  # nothing listens there
    cases = [
        (ServerAddress("127.0.0.1", port), dict(join_code="AAAA-BBBB-CCCC", fingerprint="ab" * 32), "refused the connection"),
        (ServerAddress("127.0.0.1", port), dict(insecure=True), "cannot reach the server"),
        (
            ServerAddress("no-such-host.invalid", port),
            dict(join_code="AAAA-BBBB-CCCC", fingerprint="ab" * 32),
            "cannot find server",
        ),
    ]
    for address, options, words in cases:
        events: list = []
        runner = ClientRunner(plant / "client_0.csv", address, ClientOptions(max_wait=600, **options), events.append)
        box = {}
        t = threading.Thread(
            target=lambda box=box, runner=runner: box.setdefault("result", runner.run()), name="test-wrong-address"
        )
        t0 = time.monotonic()
        t.start()
        t.join(15)
        if t.is_alive():  # the old behaviour: retrying for max_wait
            runner.stop()
            t.join(30)
        assert "result" in box and time.monotonic() - t0 < 15, f"{address}: still retrying after 15 s"
        assert box["result"].kind == "Failed" and words in box["result"].message, box["result"].message
        assert not any(e.kind == "ConnectionState" and e.state == "reconnecting" for e in events)


def test_the_cli_server_says_a_failure_once_without_a_traceback(tmp_path):
    port = find_free_port(25500, "127.0.0.1")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pumpfl_gui.cli",
            "server",
            "2",
            "2",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--out",
            str(tmp_path / "srv"),
            "--join-timeout",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    console = proc.stdout + proc.stderr
    assert proc.returncode == 2
    assert console.count("only 0 of 2 facilities joined within 2 s") == 1, console
    assert "error: only 0 of 2 facilities joined within 2 s" in console
    assert "Traceback" not in console


def test_the_app_shows_the_countdown_and_a_run_cut_short(qtbot, tmp_path, plant, monkeypatch):
    from PySide6.QtCore import Qt

    from pumpfl_gui.fl.security import KnownServers
    from pumpfl_gui.gui.client_page import ClientPage
    from pumpfl_gui.gui.server_page import ServerPage

    monkeypatch.setenv("PUMPFL_DATA_DIR", str(plant))
    server = ServerPage()
    server.host = "127.0.0.1"
    qtbot.addWidget(server)
    server.port.setValue(find_free_port(31500, "127.0.0.1"))
    server.rounds.setValue(20)
    server.epochs.setValue(1)
    server.min_clients.setValue(2)
    server.join_wait.setValue(120)
    qtbot.mouseClick(server.start, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: server.invite.text().startswith("pumpfl://"), timeout=30_000)
    clients = []
    for i in (0, 1):
        page = ClientPage(known_servers=KnownServers(tmp_path / "known.json"))
        qtbot.addWidget(page)
        page.load_default(i)
        qtbot.waitUntil(lambda page=page: page.data is not None, timeout=60_000)
        page.address.setText(server.invite.text())
        page.start_client()
        clients.append(page)
        if i == 0:  # one of two: the server counts down the join wait
            qtbot.waitUntil(lambda: "1 of 2 connected" in server.status.text(), timeout=30_000)
            assert "waiting for 1 more facility to join: " in server.status.text()
            assert "each round then waits up to 600 s" in server.status.text()
    qtbot.waitUntil(lambda: len(server.history) >= 2, timeout=120_000)
    qtbot.mouseClick(server.stop, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not server.is_running() and all(c.score is not None for c in clients), timeout=120_000)
    done = server.history[-1].round
    assert server.status.text().startswith(f"Stopped at round {done} of 20")
    for page in clients:
        assert f"the coordinator stopped the run at round {done} of 20" in "\n".join(page.log.lines())
        assert f"from an incomplete run: {done} of 20 rounds" in page.figures.text()
    server.grab().save(str(tmp_path / "server.png"))
    clients[0].grab().save(str(tmp_path / "client.png"))


def test_consoles_show_a_leaver_and_a_refusal_once_without_a_traceback(plant, tmp_path):
    port = find_free_port(26500, "127.0.0.1")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pumpfl_gui.cli",
            "server",
            "3",
            "2",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--out",
            str(tmp_path / "srv"),
            "--local-epochs",
            "3",
            "--join-timeout",
            "60",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(server.stdout), name="test-console")
    facilities = {}
    try:
        invite = parse_invite(server.stdout.readline())
        reader.start()
        wrong = invite.to_text().replace(invite.join_code, "AAAA-BBBB-CCCC")
        for name, csv, text in (
            ("victim", "client_2.csv", invite.to_text()),
            ("a", "client_0.csv", invite.to_text()),
            ("b", "client_1.csv", invite.to_text()),
            ("bad", "client_1.csv", wrong),
        ):
            facilities[name] = _facility_process(plant / csv, text, name, tmp_path / name)
        _wait_until(lambda: any("round 2/3 with" in line and "victim" in line for line in lines), 120, "round 2 with the victim")
        time.sleep(0.6)  # training (three epochs)
        facilities["victim"].send_signal(signal.SIGKILL)
        assert server.wait(120) == 0
        reader.join(10)
        consoles = {name: proc.communicate(timeout=60)[0] for name, proc in facilities.items()}
    finally:
        for proc in [server, *facilities.values()]:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    console = "".join(lines)
    assert "Traceback" not in console and "GrpcBridgeClosed" not in console, console
    assert console.count("server: victim left") == 1, console
    assert console.count("victim is out of this round") <= 1, console  # when it was killed before answering
    assert console.count("refused bad: wrong join code") == 1 and console.count("finished: all rounds completed") == 1
    assert (
        consoles["bad"].strip()
        == "error: the server refused this facility: wrong join code; ask the coordinator for the current invite"
    )
    for name in ("a", "b"):
        assert consoles[name].count("finished: the run completed (3 rounds)") == 1 and "Traceback" not in consoles[name]
