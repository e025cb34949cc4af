"""Many facilities on one coordinator: ``pumpfl server`` and N light facilities (bench; no Qt).

The coordinator runs as its own ``pumpfl server`` process, as a deployment runs it, so its memory
is its own; the facilities are N client runners in this process, each on a small SKAB-format
file of its own (the detector's default shape for it), all on loopback with TLS and the join
code. Reported per round, from the coordinator's ``history.json`` and its process: seconds,
facilities that answered, coordinator memory (RSS), threads and open files, and the bytes each
facility received and sent against the model's float32 size.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from ..core.errors import UserError
from ..core.skab_simulator import write_skab_csv
from ..fl.addresses import find_free_port
from ..fl.client_runner import ClientOptions, ClientRunner
from ..fl.events import EvaluateResult, Finished
from ..fl.invite import parse_invite
from .machine import machine

ROWS = 600  # a light facility: ten minutes of SKAB-like readings at 1 Hz
Progress = Callable[[str, float], None]


def run_scale(facilities: int, rounds: int = 3, rows: int = ROWS, on_progress: Progress | None = None) -> dict:
    """A coordinator and ``facilities`` facilities for ``rounds`` rounds of one local epoch."""
    if facilities < 1 or rounds < 1:
        raise UserError("the scale benchmark needs at least one facility and one round")
    report = on_progress or (lambda message, fraction: None)
    with tempfile.TemporaryDirectory(prefix="pumpfl-scale-") as tmp:
        folder = Path(tmp)
        report(f"writing {facilities} facilities' files", 0.0)
        csvs = [
            write_skab_csv(
                folder / "data" / f"site-{i:03d}.csv", rows=rows, anomaly_start=rows // 2, anomaly_rows=rows // 6, seed=i
            )
            for i in range(facilities)
        ]
        server, invite = _start_server(folder / "server", facilities, rounds)
        try:
            watch = _Watch(psutil.Process(server.pid), rounds, report)
            idle = watch.now().get("rss_mb") or 0.0  # listening, before anyone joins
            t0 = time.perf_counter()
            results = _run_facilities(csvs, invite, watch)
            wall = time.perf_counter() - t0
            server.wait(60)
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
        history = _history(folder / "server")
    failed = {name: r.message for name, r in results.items() if not isinstance(r, Finished)}
    per_round = []
    for h in history:
        after = watch.after_round.get(h["round"], {})
        per_round.append(
            {
                "round": h["round"],
                "seconds": h["seconds"],
                "answered": len(h["participants"]),
                "coordinator_rss_mb": after.get("rss_mb"),
                "coordinator_threads": after.get("threads"),
                "coordinator_open_files": after.get("fds"),
                **({"per_facility": h["per_facility"], "model_bytes": h["model_bytes"]} if "per_facility" in h else {}),
            }
        )
    report("done", 1.0)
    return {
        "benchmark": "scale",
        "facilities": facilities,
        "rounds": rounds,
        "rows_per_facility": rows,
        "rounds_completed": len(history),
        "wall_s": round(wall, 2),
        "join_s": watch.joined_s,
        "failed": failed,
        "per_round": per_round,
        "coordinator_idle_rss_mb": idle,
        "coordinator_peak_rss_mb": watch.peak_rss_mb,
        # what each facility adds to the coordinator's memory, beyond the listening server's
        "coordinator_rss_per_facility_mb": round(max(0.0, watch.peak_rss_mb - idle) / facilities, 3),
        "facility_process_threads_peak": watch.own_threads,
        "machine": machine(),
    }


def _start_server(out: Path, facilities: int, rounds: int) -> tuple[subprocess.Popen, object]:
    port = find_free_port(28080, "127.0.0.1") or find_free_port(40000, "127.0.0.1")
    command = [sys.executable, "-m", "pumpfl_gui.cli", "server", str(rounds), str(facilities), "--host", "127.0.0.1"]
    command += ["--port", str(port), "--out", str(out), "--local-epochs", "1", "--join-timeout", "600", "--round-timeout", "600"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = server.stdout.readline()  # the shared invite, first thing on its output
    invite = line.strip().removeprefix("invite: ")
    if not invite.startswith("pumpfl://"):
        server.kill()
        raise UserError(f"the coordinator did not start ({line.strip() or 'no output'})")
    threading.Thread(target=server.stdout.read, daemon=True).start()  # keep its pipe drained
    return server, parse_invite(invite)


class _Watch:
    """The coordinator's process seen from outside: its memory after each round (when the first
    facility hears of that round's evaluation), the peak, and when every facility had joined."""

    def __init__(self, process: psutil.Process, rounds: int, report: Progress) -> None:
        self.process, self.rounds, self.report = process, rounds, report
        self.after_round: dict[int, dict] = {}
        self.peak_rss_mb = 0.0
        self.joined_s: float | None = None
        self.own_threads = 0
        self._t0 = time.perf_counter()
        self._joined = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        threading.Thread(target=self._sample, name="pumpfl-scale-watch", daemon=True).start()

    def now(self) -> dict:
        try:
            with self.process.oneshot():
                return {
                    "rss_mb": round(self.process.memory_info().rss / 2**20, 1),
                    "threads": self.process.num_threads(),
                    "fds": self.process.num_fds() if hasattr(self.process, "num_fds") else None,
                }
        except psutil.Error:
            return {}

    def _sample(self) -> None:
        while True:
            self._note(self.now())
            if self._stop.wait(0.2):
                return

    def _note(self, now: dict) -> dict:
        self.peak_rss_mb = max(self.peak_rss_mb, now.get("rss_mb") or 0.0)
        self.own_threads = max(self.own_threads, threading.active_count())
        return now

    def joined(self, total: int) -> None:
        with self._lock:
            self._joined += 1
            if self._joined == total:
                self.joined_s = round(time.perf_counter() - self._t0, 2)
                self.report(f"all {total} facilities joined", 0.1)

    def evaluated(self, rnd: int) -> None:
        with self._lock:
            if rnd in self.after_round:
                return
            self.after_round[rnd] = self._note(self.now())
        self.report(f"round {rnd}/{self.rounds}", 0.1 + 0.9 * rnd / self.rounds)

    def stop(self) -> None:
        self._stop.set()


def _run_facilities(csvs: list[Path], invite, watch: _Watch) -> dict:
    results: dict[str, object] = {}
    threads = []
    total = len(csvs)
    for csv in csvs:
        name = csv.stem
        options = ClientOptions(
            join_code=invite.join_code, fingerprint=invite.fingerprint, name=name, max_wait=120, personalise=False
        )

        def on_event(e) -> None:
            if getattr(e, "state", "") == "connected":
                watch.joined(total)
            if isinstance(e, EvaluateResult):
                watch.evaluated(e.round)

        runner = ClientRunner(csv, invite.address, options, on_event)
        thread = threading.Thread(target=lambda r=runner, n=name: results.__setitem__(n, r.run()), name=f"pumpfl-scale-{name}")
        threads.append(thread)
        thread.start()
    for thread in threads:
        thread.join()
    watch.stop()
    return results


def _history(out: Path) -> list[dict]:
    path = out / "history.json"
    return json.loads(path.read_text())["rounds"] if path.is_file() else []
