"""A server and its facilities on loopback, each runner in its own thread (shared by the tests)."""

import os
import threading
import time
from pathlib import Path

from pumpfl_gui.fl.addresses import ServerAddress, find_free_port
from pumpfl_gui.fl.client_runner import ClientOptions, ClientRunner
from pumpfl_gui.fl.invite import parse_invite
from pumpfl_gui.fl.protocol import FederationSettings
from pumpfl_gui.fl.server_runner import ServerOptions, ServerRunner


class Run:
    """A server and its facilities, each in its own thread, with every event recorded."""

    def __init__(self, tmp: Path, settings: FederationSettings, insecure=False, resume: Path | None = None):
        self.tmp = tmp
        # Each xdist worker (gw0, gw1, ...) looks in its own thousand ports: two tests starting
        # servers at the same moment in two workers never pick the same free port.
        worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
        self.port = find_free_port(19000 + 1000 * (worker % 4) + hash(tmp) % 900, "127.0.0.1")
        self.events: list = []
        self.server = ServerRunner(
            settings,
            ServerOptions(host="127.0.0.1", port=self.port, out_dir=tmp / "server", insecure=insecure, resume=resume),
            on_event=lambda e: self.events.append(("server", e)),
        )
        self.threads = [threading.Thread(target=self._run_server, name="test-server")]
        self.threads[0].start()
        assert self.server.ready.wait(20)
        self.invite = parse_invite((tmp / "server" / "invite.txt").read_text())
        self.results: dict = {}
        self.clients: dict = {}

    def _run_server(self):
        self.results["server"] = self.server.run()

    def add(self, name: str, csv: Path, runner_class=ClientRunner, **option_overrides):
        options = dict(
            insecure=self.invite.insecure,
            join_code=self.invite.join_code,
            fingerprint=self.invite.fingerprint,
            out_dir=self.tmp / name,
            name=name,
            max_wait=20,
            # The fine-tune on a facility's own rows after the last round takes longer than the
            # rounds these tests run; the tests of the saved model ask for it by name.
            personalise=False,
        )
        options.update(option_overrides)
        runner = runner_class(
            csv, ServerAddress("127.0.0.1", self.port), ClientOptions(**options), on_event=lambda e: self.events.append((name, e))
        )
        self.clients[name] = runner
        t = threading.Thread(target=lambda: self.results.__setitem__(name, runner.run()), name=f"test-{name}")
        self.threads.append(t)
        t.start()

    def join(self, timeout=240):
        for t in self.threads:
            t.join(timeout)
            assert not t.is_alive(), f"{t.name} did not finish"

    def stop_after(self, name: str, evaluated: int = 1, timeout: float = 120) -> None:
        """Stop facility ``name`` once it has evaluated ``evaluated`` rounds (as a person clicks
        Stop), wait for its result, then stop the server and join everyone."""
        deadline = time.monotonic() + timeout
        while len(self.of(name, "EvaluateResult")) < evaluated and time.monotonic() < deadline:
            time.sleep(0.05)
        self.clients[name].stop()
        while name not in self.results and time.monotonic() < deadline:
            time.sleep(0.05)
        self.server.stop()
        self.join()

    def of(self, who, kind):
        return [e for w, e in self.events if w == who and e.kind == kind]
