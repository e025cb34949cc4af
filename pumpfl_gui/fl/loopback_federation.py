"""A whole federation on this computer: one server and K facilities on loopback (fl layer).

The engine of ``pumpfl demo``, the self-test (``fl/self_test.py``) and the benchmarks'
federated mode (``bench/rounds.py``); the app's "Try it on this computer" drives its own
Server and Client pages instead. It runs the same server and client runners as a real
deployment, TLS and join code included; only the address is loopback.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from .addresses import PortInUseError, find_free_port
from .client_runner import ClientOptions, ClientRunner
from .events import Event, Failed, Finished
from .protocol import FederationSettings
from .server_runner import ServerOptions, ServerRunner


class LoopbackFederation:
    def __init__(
        self,
        settings: FederationSettings,
        csvs: Sequence[Path | Sequence[Path]],
        out_dir: Path,
        on_event: Callable[[str, Event], None] | None = None,
        port: int | None = None,
        names: Sequence[str] | None = None,
        train_rows: int | None = None,
        compare: bool = False,
        seed: int = 0,
    ) -> None:
        """``csvs``: one entry per facility, a CSV or a list of one facility's CSVs;
        ``names``: the facilities' names (default: each first CSV's stem); ``compare``: each
        facility also trains alone and writes ``comparison.json`` (fl/alone.py); ``seed``: the
        starting model's and every facility's training seed."""
        self.settings = settings
        self.csvs = [[Path(c)] if isinstance(c, (str, Path)) else [Path(x) for x in c] for c in csvs]
        self.names = list(names) if names is not None else [c[0].stem for c in self.csvs]
        self.train_rows = train_rows
        self.compare = compare
        self.seed = seed
        self.out_dir = Path(out_dir)
        self._on_event = on_event or (lambda who, e: None)
        self._port_given = port is not None
        self.port = port or find_free_port(8080, "127.0.0.1") or find_free_port(20000, "127.0.0.1")
        self.server = self._server_on(self.port)
        self.clients: list[ClientRunner] = []
        self._errors: dict[str, Exception] = {}
        self._stopped = threading.Event()
        self._failure: Failed | None = None  # the first facility that could not take part

    def stop(self) -> None:
        self._stopped.set()
        self.server.stop()
        for c in self.clients:
            c.stop()

    def _server_on(self, port: int) -> ServerRunner:
        options = ServerOptions(host="127.0.0.1", port=port, out_dir=self.out_dir / "server", seed=self.seed)
        return ServerRunner(self.settings, options, lambda e: self._on_event("server", e))

    def _start_server(self, results: dict) -> threading.Thread | None:
        """The server's thread once it listens, or None when it could not start. A port it
        chose itself and another program took in the meantime (found free, then bound by
        someone else before the server) is swapped for the next free one, up to three times."""
        for _attempt in range(3):
            thread = self._start("server", self.server.run, results)
            while not self.server.ready.wait(0.2):
                if not thread.is_alive():
                    break
            if self.server.ready.is_set():
                return thread
            thread.join()
            taken = isinstance(self._errors.get("server"), (PortInUseError, OSError))
            if self._port_given or not taken or self._stopped.is_set():
                return None
            self.port = find_free_port(self.port + 1, "127.0.0.1") or find_free_port(20000, "127.0.0.1")
            self.server = self._server_on(self.port)
            results.pop("server", None)
        return None

    def run(self) -> Finished | Failed:
        results: dict[str, object] = {}
        server_thread = self._start_server(results)
        if server_thread is None:
            return results.get("server") or Failed(message="the server did not start")
        threads = [server_thread]
        try:
            invite = self.server.invite
            for csv, name in zip(self.csvs, self.names):
                options = ClientOptions(
                    join_code=invite.join_code,
                    fingerprint=invite.fingerprint,
                    name=name,
                    out_dir=self.out_dir / name,
                    max_wait=60,
                    train_rows=self.train_rows,
                    compare=self.compare,
                    seed=self.seed,
                )
                runner = ClientRunner(csv, invite.address, options, lambda e, name=name: self._on_event(name, e))
                self.clients.append(runner)
                if self._stopped.is_set():
                    runner.stop()
                threads.append(self._start(name, runner.run, results))
            for t in threads:
                t.join()
        except BaseException:
            self.stop()
            for t in threads:
                t.join(30)
            raise
        if self._failure is not None:
            return self._failure
        return results["server"]

    def _start(self, name: str, work, results: dict) -> threading.Thread:
        def target():
            try:
                results[name] = work()
            except Exception as exc:  # e.g. a facility's file could not be read
                self._errors[name] = exc
                results[name] = Failed(message=str(exc))
            # On one computer every facility is ours: one that cannot take part ends the run
            # now, with its reason, rather than leaving the server waiting for it.
            result = results[name]
            if name != "server" and isinstance(result, Failed) and not self._stopped.is_set():
                self._failure = Failed(message=f"{name}: {result.message}")
                self.stop()

        t = threading.Thread(target=target, name=f"pumpfl-demo-{name}")
        t.start()
        return t
