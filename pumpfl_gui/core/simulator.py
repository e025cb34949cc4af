"""Deterministic pump-plant simulator that writes the embedded default data (core layer;
numpy only).

It models five facilities running the same kind of pump for weeks, logged once a minute in the
public "pump_sensor_data" schema (``timestamp``, ``sensor_00`` … ``sensor_51``,
``machine_status``). Each sensor belongs to a group (motor, pressure, flow/impeller, vibration,
bearing temperature) and follows a few shared hidden signals: the operating regime (load levels
that change every few hours with smooth ramps), a daily demand cycle, a slowly drifting ambient
temperature, and group-wide process noise, plus its own noise. Facilities differ in calibration,
regime mix, noise and failure mode; each failure is a slow degradation labelled NORMAL (as in the
real log), one BROKEN minute when the pump stops, and a RECOVERING stretch while it is off and
restarting. Stuck readings and empty stretches are added because real plant logs have them and a
detector must cope. The point is an app that runs out of the box on data that behaves like a
plant, not like noise, while staying byte-for-byte reproducible from one seed.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pumpfl_gui.core.dataset import BROKEN, NORMAL, PUMP_STATUS_COLUMN, RECOVERING
from pumpfl_gui.core.files import write_atomic
from pumpfl_gui.core.paths import client_csv_name, default_data_dir

log = logging.getLogger(__name__)

GENERATOR_VERSION = "1"  # bump when output bytes change
DEFAULT_SEED = 20180401
# Same total as the public set (220,320 minutes); one small, one large and three mid facilities.
CLIENT_ROWS = (11_000, 77_000, 44_160, 44_160, 44_000)
START = np.datetime64("2018-04-01T00:00", "m")
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"
STATUSES = (NORMAL, BROKEN, RECOVERING)
SENSORS = tuple(f"sensor_{i:02d}" for i in range(52))
COLUMNS = ("timestamp", *SENSORS, PUMP_STATUS_COLUMN)

CAVITATION = "cavitation"
BEARING_WEAR = "bearing_wear"

# The public set's first row: typical magnitude of each sensor (sensor_15 is never logged).
TYPICAL = np.array([
    2.465, 47.09, 53.21, 46.31, 634.4, 76.46, 13.41, 16.13, 15.57, 15.05,
    37.23, 47.52, 31.12, 1.681, 419.6, np.nan, 461.9, 466.3, 2.565, 665.4,
    399.0, 880.0, 498.9, 975.9, 627.7, 741.7, 848.1, 429.0, 785.2, 684.9,
    594.4, 682.8, 680.4, 433.7, 171.9, 341.9, 195.1, 90.32, 40.36, 31.51,
    70.57, 30.99, 31.77, 41.93, 39.64, 65.68, 50.93, 38.19, 158.0, 67.71,
    243.1, 201.4,
])  # fmt: skip
EMPTY_SENSOR = 15
# Four significant digits like the public set: decimals follow each sensor's magnitude.
DECIMALS = np.where(np.isnan(TYPICAL), 0, 3 - np.floor(np.log10(np.nan_to_num(TYPICAL, nan=1.0))))
DECIMALS = DECIMALS.astype(int)

MINUTES_PER_DAY = 1440
SPAN_MINUTES = 153 * MINUTES_PER_DAY  # 2018-04-01 .. 2018-08-31, the public set's season


@dataclass(frozen=True)
class _Group:
    """How one group of sensors reacts to the hidden signals (all as fractions of typical)."""

    sensors: tuple[int, ...]
    load: float  # response to load changes
    lag: int  # minutes of inertia (thermal mass) on load and on stopping
    ambient: float  # response to the ambient temperature signal
    shared_noise: float  # process noise common to the group: what makes it correlate
    own_noise: float
    stopped: float  # level while the pump is off


GROUPS = {
    "motor": _Group(tuple(range(0, 5)), 1.0, 0, 0.0, 0.010, 0.014, 0.01),
    "pressure": _Group(tuple(range(5, 14)), 0.7, 0, 0.0, 0.012, 0.016, 0.12),
    "flow": _Group(tuple(range(14, 26)), 0.9, 0, 0.0, 0.010, 0.015, 0.03),
    "vibration": _Group(tuple(range(26, 37)), 0.4, 0, 0.0, 0.025, 0.030, 0.06),
    "bearing": _Group(tuple(range(37, 52)), 0.35, 180, 0.06, 0.008, 0.012, 0.60),
}
# Suction-side pressures fall when the pump pushes more: they move against the load.
INVERSE_SENSORS = (5, 12)

# What each failure mode touches: (group, candidate sensors, how many are hit, drift direction).
# Gappy sensors are left out so the signature stays readable. Cavitation starves the pump (pressure
# and flow sag and flutter); bearing wear shakes and heats it (vibration and temperatures climb).
_FAILURE_SENSORS = {
    CAVITATION: (
        ("pressure", (5, 10, 11, 12, 13), 3, -1.0),
        ("flow", (14, 16, 17, 19, 20, 22), 2, -1.0),
    ),
    BEARING_WEAR: (
        ("vibration", tuple(range(26, 37)), 3, 1.0),
        ("bearing", tuple(range(37, 50)), 2, 1.0),
    ),
}


@dataclass(frozen=True)
class _Facility:
    """What makes one facility unlike the others."""

    regime_levels: tuple[float, float, float]  # low / nominal / high load
    regime_mix: tuple[float, float, float]
    regime_hours: float  # mean time between load changes
    ramp_minutes: int  # how smoothly the load changes
    daily_amplitude: float
    noise: float  # multiplies all noise
    failures: int
    failure_mode: str
    # Long outages: (sensor, shortest and longest share of the rows, whether it runs to the end).
    long_gaps: tuple[tuple[int, float, float, bool], ...] = ()
    stuck_per_day: float = 0.15  # stuck stretches per sensor and day


FACILITIES = (
    _Facility(
        regime_levels=(0.88, 1.00, 1.08), regime_mix=(0.20, 0.60, 0.20), regime_hours=8,
        ramp_minutes=40, daily_amplitude=0.03, noise=0.8, failures=1, failure_mode=CAVITATION,
    ),
    _Facility(
        regime_levels=(0.92, 1.00, 1.10), regime_mix=(0.10, 0.50, 0.40), regime_hours=12,
        ramp_minutes=60, daily_amplitude=0.02, noise=1.0, failures=2, failure_mode=CAVITATION,
        long_gaps=((50, 0.28, 0.32, True), (51, 0.02, 0.04, False)),
    ),
    _Facility(
        regime_levels=(0.85, 0.97, 1.04), regime_mix=(0.30, 0.40, 0.30), regime_hours=5,
        ramp_minutes=30, daily_amplitude=0.03, noise=1.2, failures=2, failure_mode=CAVITATION,
        long_gaps=((51, 0.04, 0.08, False), (51, 0.03, 0.06, False)),
    ),
    _Facility(
        regime_levels=(0.90, 1.00, 1.06), regime_mix=(0.15, 0.70, 0.15), regime_hours=16,
        ramp_minutes=90, daily_amplitude=0.02, noise=0.9, failures=1, failure_mode=BEARING_WEAR,
        stuck_per_day=0.25,
    ),
    _Facility(
        regime_levels=(0.86, 1.00, 1.13), regime_mix=(0.25, 0.50, 0.25), regime_hours=6,
        ramp_minutes=45, daily_amplitude=0.04, noise=1.4, failures=1, failure_mode=CAVITATION,
        long_gaps=((51, 0.05, 0.09, False),),
    ),
)  # fmt: skip

# Short dropouts in every facility: (sensor, stretches per day, shortest and longest minutes).
_SHORT_GAPS = ((0, 0.2, 5, 180), (6, 0.3, 1, 10), (7, 0.3, 1, 10), (8, 0.3, 1, 10), (9, 0.3, 1, 10))


def generate(
    out_dir: Path,
    seed: int = DEFAULT_SEED,
    progress: Callable[[str, float], None] | None = None,
) -> dict:
    """Write client_0.csv … client_4.csv and metadata.json into out_dir (created).

    Returns the metadata dict also written to metadata.json.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    log.info("generating simulated pump data (seed %d) in %s", seed, out_dir)
    clients = []
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(len(CLIENT_ROWS))]
    for client_id, (rows, facility, rng) in enumerate(zip(CLIENT_ROWS, FACILITIES, rngs, strict=True)):
        scaled, status, failures = _simulate_facility(rng, rows, facility)
        name = client_csv_name(client_id)
        write_atomic(out_dir / name, _csv_bytes(scaled, status))
        stamps = _timestamps(np.array([0, rows - 1]))
        clients.append(
            {
                "client": client_id,
                "file": name,
                "rows": rows,
                "first_timestamp": stamps[0],
                "last_timestamp": stamps[1],
                "failure_mode": facility.failure_mode,
                "failures": failures,
                "status_counts": {s: int(np.count_nonzero(status == s)) for s in STATUSES},
            }
        )
        if progress is not None:
            progress(f"wrote {name} ({rows:,} rows)", (client_id + 1) / len(CLIENT_ROWS))
    metadata = {
        "generator": __name__,
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "columns": list(COLUMNS),
        "clients": clients,
        "totals": {
            "rows": sum(c["rows"] for c in clients),
            "failures": sum(len(c["failures"]) for c in clients),
            "status_counts": {s: sum(c["status_counts"][s] for c in clients) for s in STATUSES},
        },
    }
    write_atomic(out_dir / "metadata.json", metadata_bytes(metadata))
    return metadata


_ENSURE_LOCK = threading.Lock()


def ensure_default_data(
    data_dir: Path | None = None,
    progress: Callable[[str, float], None] | None = None,
) -> Path:
    """Make the default data if any of the five CSVs is missing; return the folder.

    data_dir defaults to :func:`pumpfl_gui.core.paths.default_data_dir`. Data left by an older
    generator version (per its metadata.json) is made again too, so a change to the simulator
    reaches existing checkouts.
    """
    data_dir = default_data_dir() if data_dir is None else Path(data_dir)
    # Several facilities of one app ("Try it on this computer") may ask at once: make it once.
    with _ENSURE_LOCK:
        missing = [i for i in range(len(CLIENT_ROWS)) if not (data_dir / client_csv_name(i)).is_file()]
        if missing or _stale_version(data_dir / "metadata.json"):
            generate(data_dir, progress=progress)
    return data_dir


def metadata_bytes(metadata: dict) -> bytes:
    """Deterministic JSON: sorted keys, two-space indent, trailing newline."""
    return (json.dumps(metadata, indent=2, sort_keys=True) + "\n").encode("utf-8")


def _stale_version(metadata_path: Path) -> bool:
    try:
        version = json.loads(metadata_path.read_text(encoding="utf-8")).get("generator_version")
    except (OSError, ValueError, AttributeError):
        return False  # no or foreign metadata: the CSVs decide
    return version is not None and version != GENERATOR_VERSION


# --- one facility -------------------------------------------------------------------------------


def _simulate_facility(rng: np.random.Generator, rows: int, fac: _Facility):
    """Return (values scaled to integers per DECIMALS, NaN for gaps), statuses and
    failure records."""
    minutes = np.arange(rows)
    load = _load_profile(rng, rows, fac)
    ambient = _ambient(rng, minutes)
    failures = _place_failures(rng, rows, fac)
    running = _running_factor(rows, failures)

    # Each facility's transmitters are installed and calibrated a little differently.
    level = TYPICAL * rng.normal(1.0, 0.05, TYPICAL.size)
    offset = TYPICAL * rng.normal(0.0, 0.02, TYPICAL.size)
    values = np.empty((rows, TYPICAL.size))
    for group in GROUPS.values():
        lagged_load = _trailing_mean(load, group.lag) if group.lag else load
        shared = _unit_noise(rng, rows, 30)
        for j in group.sensors:
            if j == EMPTY_SENSOR:
                values[:, j] = np.nan
                continue
            sign = -1.0 if j in INVERSE_SENSORS else 1.0
            response = sign * group.load * rng.uniform(0.7, 1.3)
            # Half jitter, half slow wander of the transmitter itself.
            jitter, wander = rng.standard_normal(rows), _unit_noise(rng, rows, 120)
            own = fac.noise * group.own_noise * (0.7 * jitter + 0.7 * wander)
            values[:, j] = (
                level[j]
                * (
                    1.0
                    + response * (lagged_load - 1.0)
                    + group.ambient * rng.uniform(0.8, 1.2) * ambient
                    + fac.noise * group.shared_noise * rng.uniform(0.7, 1.3) * shared
                    + own
                )
                + offset[j]
            )

    status = np.full(rows, NORMAL, dtype=object)
    records = []
    for f in failures:
        _degrade(rng, values, level, f)
        status[f["broken"]] = BROKEN
        status[f["broken"] + 1 : f["recovered"]] = RECOVERING
        records.append(
            {
                "degradation_start": _timestamps(f["start"]),
                "broken_at": _timestamps(f["broken"]),
                "recovered_at": _timestamps(f["recovered"]),
                "mode": fac.failure_mode,
                "sensors": [SENSORS[j] for j in f["sensors"]],
            }
        )

    # A stopped pump drops each group towards its resting level; temperatures lag behind.
    for group in GROUPS.values():
        run = _trailing_mean(running, group.lag) if group.lag else running
        idx = list(group.sensors)
        rest = level[idx] * group.stopped
        values[:, idx] = rest + (values[:, idx] - rest) * run[:, None]
        values[:, idx] += (1.0 - run[:, None]) * rest * 0.01 * rng.standard_normal((rows, len(idx)))

    scaled = np.rint(np.maximum(values, 0.0) * 10.0**DECIMALS)
    _add_stuck_stretches(rng, scaled, fac, failures)
    _add_gaps(rng, scaled, fac)
    scaled[1] = scaled[0]  # the public log's second row repeats its first exactly
    return scaled, status, records


def _load_profile(rng, rows, fac: _Facility) -> np.ndarray:
    """Piecewise load regimes with smooth ramps between them, times a daily demand cycle."""
    mean_minutes = fac.regime_hours * 60
    count = int(rows / (0.3 * mean_minutes)) + 8  # comfortably more segments than needed
    durations = np.maximum(30, rng.exponential(mean_minutes, count)).astype(int)
    levels = rng.choice(fac.regime_levels, size=count, p=fac.regime_mix) * rng.normal(1.0, 0.015, count)
    steps = np.repeat(levels, durations)
    steps = np.pad(steps, (0, max(0, rows - steps.size)), mode="edge")[:rows]
    daily = np.sin(2 * np.pi * np.arange(rows) / MINUTES_PER_DAY + rng.uniform(0, 2 * np.pi))
    return _centred_mean(steps, fac.ramp_minutes) * (1.0 + fac.daily_amplitude * daily)


def _ambient(rng, minutes) -> np.ndarray:
    """Unitless ambient temperature: spring-to-summer warming, a daily swing, slow weather."""
    season = minutes / SPAN_MINUTES
    daily = np.sin(2 * np.pi * (minutes / MINUTES_PER_DAY - 0.375))  # warmest mid-afternoon
    weather = _centred_mean(np.cumsum(rng.standard_normal(minutes.size)), 720)
    weather = (weather - weather.mean()) / weather.std()
    return 1.2 * season + 0.5 * daily + 0.4 * weather


def _place_failures(rng, rows, fac: _Facility) -> list[dict]:
    """One failure per equal slot after the first two days, so none overlap and each has history."""
    first, last = 2 * MINUTES_PER_DAY, rows - 12 * 60
    slot = (last - first) // fac.failures
    # RECOVERING is 6-7 % of each facility's rows, as in the public set (14,477 of 220,320).
    budget = rows * rng.uniform(0.06, 0.07)
    weights = rng.uniform(0.4, 0.6, fac.failures)
    recoveries = np.rint(budget * weights / weights.sum()).astype(int)
    failures = []
    for i, recovery in enumerate(recoveries):
        lo, hi = first + i * slot, first + (i + 1) * slot
        longest = min(3 * MINUTES_PER_DAY, slot - recovery - 1 - 6 * 60)
        assert longest >= 6 * 60, "facility too short for its failures"
        degradation = int(np.rint(np.exp(rng.uniform(np.log(6 * 60), np.log(longest)))))
        start = int(rng.integers(lo, hi - (degradation + 1 + recovery) + 1))
        broken = start + degradation
        sensors, directions = [], []
        for _, pool, count, direction in _FAILURE_SENSORS[fac.failure_mode]:
            picked = sorted(rng.choice(pool, size=count, replace=False).tolist())
            sensors += picked
            directions += [direction] * count
        failures.append(
            {
                "start": start,
                "broken": broken,
                "recovered": broken + 1 + int(recovery),  # first NORMAL minute again
                "off_fraction": rng.uniform(0.35, 0.65),
                "sensors": sensors,
                "directions": directions,
            }
        )
    return failures


def _running_factor(rows, failures) -> np.ndarray:
    """1 while pumping; 0 from the BROKEN minute while off; a smooth ramp while restarting."""
    running = np.ones(rows)
    for f in failures:
        off_end = f["broken"] + 1 + int(f["off_fraction"] * (f["recovered"] - f["broken"] - 1))
        running[f["broken"] : off_end] = 0.0
        ramp = np.linspace(0.0, 1.0, f["recovered"] - off_end, endpoint=False)
        running[off_end : f["recovered"]] = ramp * ramp * (3 - 2 * ramp)
    return running


def _degrade(rng, values, level, failure) -> None:
    """Growing drift and noise in the affected sensors, quiet at first and plain near the end."""
    start, broken = failure["start"], failure["broken"]
    progress = np.linspace(0.0, 1.0, broken - start, endpoint=False) ** 2
    for j, direction in zip(failure["sensors"], failure["directions"], strict=True):
        drift = direction * rng.uniform(0.30, 0.50)
        noise = rng.uniform(0.03, 0.06) * level[j]
        segment = values[start:broken, j]
        segment *= 1.0 + drift * progress
        segment += noise * progress * rng.standard_normal(progress.size)


def _add_stuck_stretches(rng, scaled, fac: _Facility, failures) -> None:
    """A sensor repeats its last reading for minutes to hours (a frozen transmitter)."""
    rows = scaled.shape[0]
    windows = [(f["start"], f["recovered"]) for f in failures]
    for j in range(scaled.shape[1]):
        if j == EMPTY_SENSOR:
            continue
        count = rng.poisson(fac.stuck_per_day * rows / MINUTES_PER_DAY)
        starts = rng.integers(1, rows, count)
        lengths = np.rint(np.exp(rng.uniform(np.log(5), np.log(6 * 60), count))).astype(int)
        for s, n in zip(starts, lengths, strict=True):
            e = min(rows, s + n)
            # Keep failure windows clean so their signature can be scored.
            if any(s < hi and e > lo for lo, hi in windows):
                continue
            scaled[s:e, j] = scaled[s - 1, j]


def _add_gaps(rng, scaled, fac: _Facility) -> None:
    """Empty cells: sensor_15 never logged, long outages, and short dropouts."""
    rows = scaled.shape[0]
    scaled[:, EMPTY_SENSOR] = np.nan
    for j, shortest, longest, to_end in fac.long_gaps:
        n = int(rows * rng.uniform(shortest, longest))
        s = rows - n if to_end else int(rng.integers(2, rows - n))
        scaled[s : s + n, j] = np.nan
    for j, per_day, shortest, longest in _SHORT_GAPS:
        count = rng.poisson(per_day * rows / MINUTES_PER_DAY)
        starts = rng.integers(2, rows, count)
        lengths = np.rint(np.exp(rng.uniform(np.log(shortest), np.log(longest), count))).astype(int)
        for s, n in zip(starts, lengths, strict=True):
            scaled[s : s + n, j] = np.nan


# --- signal helpers -----------------------------------------------------------------------------


def _centred_mean(x: np.ndarray, window: int) -> np.ndarray:
    """Moving average over ``window`` samples centred on each one (edges padded)."""
    if window <= 1:
        return x.astype(float)
    left = window // 2
    padded = np.pad(x.astype(float), (left, window - 1 - left), mode="edge")
    c = np.concatenate(([0.0], np.cumsum(padded)))
    return (c[window:] - c[:-window]) / window


def _trailing_mean(x: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last ``window`` samples: inertia, e.g. a casing that warms up slowly."""
    padded = np.pad(x.astype(float), (window - 1, 0), mode="edge")
    c = np.concatenate(([0.0], np.cumsum(padded)))
    return (c[window:] - c[:-window]) / window


def _unit_noise(rng, rows, window) -> np.ndarray:
    """Smooth noise with unit standard deviation (slow wander rather than white jitter)."""
    smooth = _centred_mean(rng.standard_normal(rows), window)
    return smooth / smooth.std()


# --- writing ------------------------------------------------------------------------------------


def _timestamps(minutes) -> list[str] | str:
    """'YYYY-MM-DD HH:MM:SS' for minute offsets from START (one int, or an array gives a list)."""
    offsets = np.atleast_1d(np.asarray(minutes)).astype("timedelta64[m]")
    stamps = np.char.replace(np.datetime_as_string(START + offsets, unit="s"), "T", " ").tolist()
    return stamps if np.ndim(minutes) else stamps[0]


def _number_table(decimals: int, largest: int) -> np.ndarray:
    """Text for every integer 0..largest read as value * 10**-decimals, plus '' at the end
    for gaps."""
    if decimals == 0:
        texts = [str(k) for k in range(largest + 1)]
    else:
        unit = 10**decimals
        texts = [f"{k // unit}.{k % unit:0{decimals}d}" for k in range(largest + 1)]
    return np.array([*texts, ""], dtype=object)


def _csv_bytes(scaled: np.ndarray, status: np.ndarray) -> bytes:
    """The CSV text with fixed decimals per column.

    Looking numbers up in a small table of ready-made strings and joining rows in C writes a
    77,000-row file in about 0.6 s against 5.5 s for ``DataFrame.to_csv`` (measured here).
    """
    gaps = np.isnan(scaled)
    as_int = np.where(gaps, 0, scaled).astype(np.int64)
    columns: list[Sequence[str]] = [_timestamps(np.arange(scaled.shape[0]))]
    tables: dict[int, np.ndarray] = {}
    for d in np.unique(DECIMALS):
        largest = int(as_int[:, d == DECIMALS].max(initial=0))
        tables[int(d)] = _number_table(int(d), largest)
    for j in range(scaled.shape[1]):
        table = tables[int(DECIMALS[j])]
        index = np.where(gaps[:, j], table.size - 1, as_int[:, j])
        columns.append(table[index])
    columns.append(status)
    lines = map(",".join, zip(*columns, strict=True))
    return (",".join(COLUMNS) + "\n" + "\n".join(lines) + "\n").encode("ascii")
