"""Long files: time and memory against rows (bench; no Qt).

A CSV of N rows is made from default facility 1 (or another pump-schema file) repeated, one
reading a second (52 sensor columns and ``machine_status``), and the CLI runs on it as users
run it, each command in its own process with its own, empty rows cache: ``pumpfl data check``
twice (cold: the first read; warm: from the cache), ``pumpfl train --epochs 1`` and ``pumpfl
score``. Reported per command: seconds (wall) and the process's peak resident memory (the
rows themselves, mapped from the cache, are given back after each pass and live in the
operating system's file cache).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from ..core.errors import UserError
from ..core.simulator import ensure_default_data
from .machine import machine

ROW_COUNTS = (200_000, 2_000_000, 20_000_000)  # what `pumpfl bench report` runs `pumpfl bench rows` with
Progress = Callable[[str, float], None]
STEPS_SAID = {
    "check_cold": "data check, first",
    "check_warm": "data check, cached",
    "train": "train --epochs 1",
    "score": "score",
}


def write_rows_csv(path: Path, rows: int, source: Path) -> Path:
    """``source`` repeated to ``rows`` rows, one reading a second from 2020-01-01."""
    import polars as pl

    base = pl.read_csv(source, infer_schema_length=10_000)
    start = pl.datetime(2020, 1, 1)
    with open(path, "wb") as fh:
        for first in range(0, rows, base.height):
            part = base.head(min(base.height, rows - first)).with_row_index("n", offset=first)
            stamp = (start + pl.duration(seconds=pl.col("n"))).dt.strftime("%Y-%m-%d %H:%M:%S")
            part.with_columns(stamp.alias(base.columns[0])).drop("n").write_csv(fh, include_header=first == 0)
    return path


def _timed(args: list[str], env: dict) -> dict:
    """Run ``pumpfl ARGS``; its wall seconds and peak resident memory (MB)."""
    command = [sys.executable, "-m", "pumpfl_gui.cli", *args]
    t0 = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = [0]

    def sample() -> None:  # where the kernel does not say (no wait4), watch from outside
        while child.poll() is None:
            with contextlib.suppress(psutil.Error):
                peak[0] = max(peak[0], psutil.Process(child.pid).memory_info().rss)
            time.sleep(0.05)

    if hasattr(os, "wait4"):
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        peak[0] = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    else:
        watcher = threading.Thread(target=sample, daemon=True)
        watcher.start()
        child.wait()
        watcher.join()
    seconds = time.perf_counter() - t0
    errors = child.stderr.read()
    child.stderr.close()
    if child.returncode != 0:
        raise UserError(
            f"pumpfl {' '.join(args[:2])} failed: {errors.strip().splitlines()[-1] if errors.strip() else child.returncode}"
        )
    return {"seconds": round(seconds, 2), "peak_mb": round(peak[0] / 2**20, 1)}


def run_rows(rows: int, on_progress: Progress | None = None, folder: Path | None = None, source: Path | None = None) -> dict:
    """The four commands on a CSV of ``rows`` rows, written in ``folder`` (or a temporary one)."""
    if rows < 1000:
        raise UserError("the rows benchmark needs at least 1,000 rows")
    report = on_progress or (lambda message, fraction: None)
    source = source or ensure_default_data() / "client_1.csv"
    with tempfile.TemporaryDirectory(prefix="pumpfl-rows-", dir=folder) as tmp:
        tmp = Path(tmp)
        report(f"writing {rows:,} rows", 0.0)
        csv = write_rows_csv(tmp / f"rows-{rows}.csv", rows, source)
        env = {**os.environ, "PUMPFL_CACHE_DIR": str(tmp / "cache")}
        steps = [
            ("check_cold", ["data", "check", str(csv)]),
            ("check_warm", ["data", "check", str(csv)]),
            ("train", ["train", str(csv), "--epochs", "1", "--out", str(tmp / "model")]),
            ("score", ["score", "--model", str(tmp / "model"), "--data", str(csv)]),
        ]
        result = {"benchmark": "rows", "rows": rows, "file_mb": round(csv.stat().st_size / 2**20, 1)}
        for i, (name, args) in enumerate(steps):
            report(f"{rows:,} rows: pumpfl {' '.join(args[:2])}", 0.1 + 0.9 * i / len(steps))
            result[name] = _timed(args, env)
        for name in ("check_cold", "check_warm"):
            result[name]["rows_per_s"] = round(rows / result[name]["seconds"])
    report("done", 1.0)
    return {**result, "machine": machine()}
