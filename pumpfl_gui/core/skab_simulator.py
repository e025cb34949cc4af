"""Small SKAB-format files made here, so tests and examples need no copy of SKAB (core layer;
numpy + pandas only).

The layout is SKAB's (waico/SKAB): ``;``-separated, ``datetime`` at one row per second, its eight
sensor columns and, in labelled files, ``anomaly`` and ``changepoint`` written as 0.0/1.0. Levels
and noise follow the magnitudes of SKAB's own files; no row of SKAB is copied. Temperature and
Thermocouple warm slowly through each file, steadily enough that they wander in a file's first
400 training rows as they do in SKAB. A labelled file holds one valve-closing experiment: the
valve closes over a minute, stays closed, and opens over a minute; flow falls, pressure rises,
the motor's current and vibration change. Like SKAB, ``changepoint`` marks the first anomalous
row, the row the valve is fully closed, the row it starts to open, and the first row after the
block. The anomaly-free run is, as in SKAB, logged at another operating point (higher flow)
without labels. Every file is the same bytes for the same arguments.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd

from .dataset import SKAB_SENSORS
from .files import write_atomic

__all__ = ["skab_frame", "write_anomaly_free_csv", "write_skab_csv", "write_skab_folder"]

# Per sensor: (level, white-noise standard deviation, decimals written), as in SKAB's valve files.
VALVE_RIG = {
    "Accelerometer1RMS": (0.0268, 0.0003, 7),
    "Accelerometer2RMS": (0.0400, 0.0006, 7),
    "Current": (1.00, 0.22, 5),
    "Pressure": (0.06, 0.26, 6),
    "Temperature": (72.0, 0.09, 4),
    "Thermocouple": (25.5, 0.005, 4),
    "Voltage": (231.0, 10.8, 3),
    "Volume Flow RateRMS": (32.1, 0.44, 4),
}
# SKAB's anomaly-free run: the same rig at another operating point.
ANOMALY_FREE_RIG = {
    **VALVE_RIG,
    "Accelerometer1RMS": (0.212, 0.0012, 6),
    "Accelerometer2RMS": (0.268, 0.0014, 6),
    "Current": (2.40, 0.46, 5),
    "Temperature": (89.0, 0.17, 4),
    "Thermocouple": (27.0, 0.005, 4),
    "Volume Flow RateRMS": (125.0, 0.35, 4),
}
WARMING_PER_S = {"Temperature": 0.004, "Thermocouple": 0.0003}  # degrees per second
PRESSURE_STEP, PRESSURE_OFFSET = 0.327927, 0.054711  # SKAB's pressure readings sit on this grid
# Change at full valve closure, in each sensor's own units.
CLOSED_VALVE = {
    "Volume Flow RateRMS": -8.0,
    "Pressure": 1.0,
    "Current": 0.5,
    "Accelerometer1RMS": 0.002,
    "Accelerometer2RMS": 0.003,
}
RAMP_ROWS = 57  # the valve takes about a minute to close and to open (SKAB's inner changepoints)
START = pd.Timestamp("2020-03-09 10:00:00")
FILE_SPACING = pd.Timedelta(minutes=20)  # SKAB's experiments start 20 minutes apart
DEFAULT_FACILITIES = MappingProxyType({"valve1": 2, "valve2": 1})


def skab_frame(
    rows: int = 1100,
    anomaly_start: int | None = 600,
    anomaly_rows: int = 300,
    seed: int | tuple[int, ...] = 0,
    start: pd.Timestamp = START,
) -> pd.DataFrame:
    """One SKAB-layout table; ``anomaly_start=None`` makes an unlabelled anomaly-free run."""
    labelled = anomaly_start is not None
    if labelled and not (anomaly_start > 0 and anomaly_start + anomaly_rows <= rows and anomaly_rows > 0):
        raise ValueError(f"anomaly rows {anomaly_start}..{anomaly_start + anomaly_rows} do not fit in {rows} rows")
    rng = np.random.default_rng(seed)
    rig = VALVE_RIG if labelled else ANOMALY_FREE_RIG
    seconds = np.arange(rows, dtype=np.float64)
    closure = np.zeros(rows)  # 0 open .. 1 closed
    if labelled:
        ramp = min(RAMP_ROWS, anomaly_rows // 3)
        closure[anomaly_start : anomaly_start + anomaly_rows] = 1.0
        closure[anomaly_start : anomaly_start + ramp] = np.arange(1, ramp + 1) / ramp
        closure[anomaly_start + anomaly_rows - ramp : anomaly_start + anomaly_rows] = np.arange(ramp, 0, -1) / ramp
    frame = pd.DataFrame({"datetime": pd.date_range(start, periods=rows, freq="s").strftime("%Y-%m-%d %H:%M:%S")})
    for sensor in SKAB_SENSORS:
        level, noise, decimals = rig[sensor]
        level = level * rng.uniform(0.97, 1.03)  # each experiment a little different
        values = level + noise * rng.standard_normal(rows)
        values += WARMING_PER_S.get(sensor, 0.0) * seconds + CLOSED_VALVE.get(sensor, 0.0) * closure
        if sensor == "Pressure":
            values = np.round((values - PRESSURE_OFFSET) / PRESSURE_STEP) * PRESSURE_STEP + PRESSURE_OFFSET
        frame[sensor] = np.round(values, decimals)
    if labelled:
        anomaly = np.zeros(rows)
        anomaly[anomaly_start : anomaly_start + anomaly_rows] = 1.0
        changepoint = np.zeros(rows)
        changepoint[[anomaly_start, anomaly_start + ramp, anomaly_start + anomaly_rows - ramp]] = 1.0
        if anomaly_start + anomaly_rows < rows:  # SKAB marks the first row after the block
            changepoint[anomaly_start + anomaly_rows] = 1.0
        frame["anomaly"], frame["changepoint"] = anomaly, changepoint
    return frame


def _write(path: str | Path, frame: pd.DataFrame) -> Path:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(path, frame.to_csv(sep=";", index=False, lineterminator="\n").encode())


def write_skab_csv(path: str | Path, rows: int = 1100, anomaly_start: int = 600, anomaly_rows: int = 300, seed: int = 0) -> Path:
    """One labelled valve-closing experiment at ``path``."""
    return _write(path, skab_frame(rows, anomaly_start, anomaly_rows, seed))


def write_anomaly_free_csv(path: str | Path, rows: int = 2000, seed: int = 0) -> Path:
    """An unlabelled run of normal operation at ``path``."""
    return _write(path, skab_frame(rows, None, seed=seed))


def write_skab_folder(
    folder: str | Path,
    facilities: Mapping[str, int] = DEFAULT_FACILITIES,
    rows: int = 1100,
    anomaly_start: int = 600,
    anomaly_rows: int = 300,
    anomaly_free_rows: int = 2000,
    seed: int = 0,
) -> Path:
    """SKAB's layout: ``folder/<group>/<i>.csv`` labelled
    files, ``folder/anomaly-free/anomaly-free.csv``."""
    folder = Path(folder)
    for g, (group, count) in enumerate(facilities.items()):
        for i in range(count):
            start = START + (g * 10 + i) * FILE_SPACING
            frame = skab_frame(rows, anomaly_start, anomaly_rows, seed=(seed, g, i), start=start)
            _write(folder / group / f"{i}.csv", frame)
    frame = skab_frame(anomaly_free_rows, None, seed=(seed, len(facilities)), start=START - pd.Timedelta(days=30))
    _write(folder / "anomaly-free" / "anomaly-free.csv", frame)
    return folder
