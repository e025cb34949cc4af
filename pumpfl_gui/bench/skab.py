"""SKAB, the real pump test bed, under its published protocol (bench; no Qt).

Fixed by the protocol (SKAB's README): in every file the first 400 rows may train and the rest
are tested; labels never train; F1, FAR and MAR are counted point by point over the test rows
of all labelled files together. Files without labels (SKAB's anomaly-free run) only train.

Everything else is what users run: each file's detector is made, calibrated and applied
through the one detector door (:class:`~pumpfl_gui.core.detector.Detector`) with the app's
defaults — the network's shape follows the data (:meth:`ModelSpec.for_data`), each file keeps
its own scaler, residual spread and threshold from its own 400 training rows, and every alarm
uses readings up to its row only. Figures come from ``core/metrics.py``.

Modes:

- ``local``: each file trains alone (:data:`~pumpfl_gui.core.detector.LOCAL_TRAINING`: up to
  100 epochs, early stopping on its newest held-back windows) — SKAB's one model per file;
- ``federated``: each subfolder is a facility; a real Flower federation on loopback (TLS and
  join code) trains one global model; then each file, as each facility does in the app,
  personalises it on its own training rows and calibrates it there
  (:meth:`Facility.final_detector <pumpfl_gui.fl.facility.Facility.final_detector>`);
- ``centralized``: one model on every file's training rows pooled (the reference a federation
  approaches without pooling), personalised and calibrated per file in the same way.

Besides SKAB's point-wise figures: the NAB score (``core/metrics.nab_scores``, SKAB's tsad rules,
60-s windows to the right of each of SKAB's changepoints, alarms entering as their starts and
ends, as SKAB's scripts do) and the mean detection delay.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.data_fit import spec_for
from ..core.dataset import SensorData, load_sensor_csv
from ..core.detector import LOCAL_TRAINING, Detector
from ..core.errors import UserError
from ..core.metrics import alarm_edges, confusion, detection_delays, label_changepoints, nab_scores, rates, sum_counts
from ..core.model import build_model, get_parameters
from ..core.model_spec import ModelSpec
from ..core.runtime import seed_everything
from ..core.training import train_epochs
from ..fl.facility import Facility
from ..fl.protocol import FederationSettings
from .machine import machine, ready_for_timing
from .rounds import choice_record, federate

MODES = ("local", "federated", "centralized")
TRAIN_ROWS = 400
PUBLISHED = {  # SKAB README leaderboard (outlier detection), as quoted in ../shared/data/skab/README.md
    "Conv-AE": {"f1": 0.78, "far_pct": 13.55, "mar_pct": 28.02},
    "MSET": {"f1": 0.78, "far_pct": 39.73, "mar_pct": 14.13},
    "LSTM-AE": {"f1": 0.74, "far_pct": 29.96, "mar_pct": 25.92},
    "T-squared+Q": {"f1": 0.76, "far_pct": 26.62, "mar_pct": 24.92},
    "Isolation forest": {"f1": 0.29, "far_pct": 2.56, "mar_pct": 82.89},
}

Progress = Callable[[str, float], None]


@dataclass(frozen=True)
class SkabSettings:
    """The federation's rounds (local and centralized train with early stopping instead)."""

    rounds: int = 10
    local_epochs: int = 3
    batch_size: int = 32
    lr: float = 1e-3
    seed: int = 0

    def federation(self, facilities: int, **choice) -> FederationSettings:
        """``choice``: the coordinator's choices beyond FedAvg (strategy, DP, shared scaling)."""
        return FederationSettings(
            rounds=self.rounds,
            min_clients=facilities,
            local_epochs=self.local_epochs,
            lr=self.lr,
            batch_size=self.batch_size,
            stride=1,
            **choice,
        )


@dataclass
class Site:
    """One facility: a name and its files, each limited to its first TRAIN_ROWS training rows."""

    name: str
    csvs: list[Path]
    parts: list[SensorData] = field(default_factory=list)
    changepoints: list[np.ndarray | None] = field(default_factory=list)  # SKAB's column, per file


def discover(data_dir: Path) -> list[Site]:
    """Each subfolder holding CSVs is a facility; CSVs directly in ``data_dir`` make one more."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise UserError(f"{data_dir} is not a folder of SKAB-format CSV files")
    sites = [Site(d.name, sorted(d.glob("*.csv"), key=_natural)) for d in sorted(data_dir.iterdir()) if d.is_dir()]
    top = sorted(data_dir.glob("*.csv"), key=_natural)
    if top:
        sites.append(Site(data_dir.name, top))
    sites = [s for s in sites if s.csvs]
    if not sites:
        raise UserError(f"{data_dir} holds no CSV files (SKAB's layout: one subfolder per facility, e.g. valve1/0.csv)")
    return sites


def _natural(path: Path) -> tuple:
    return (0, int(path.stem), "") if path.stem.isdigit() else (1, 0, path.stem)


def _changepoints(data: SensorData) -> np.ndarray | None:
    """SKAB's own ``changepoint`` column (the loader keeps it out of the sensors), if any."""
    try:
        frame = pd.read_csv(data.path, sep=data.separator, usecols=lambda name: name == "changepoint")
    except (OSError, ValueError):
        return None
    if "changepoint" not in frame:
        return None
    column = frame["changepoint"].to_numpy()
    return np.flatnonzero(np.nan_to_num(column.astype(float)) == 1) if len(column) == data.rows else None


def load_sites(sites: list[Site], on_progress: Progress) -> list[str]:
    """Load every file with the first file's sensors; returns those sensors."""
    sensors: list[str] | None = None
    total = sum(len(s.csvs) for s in sites)
    done = 0
    for site in sites:
        for csv in site.csvs:
            on_progress(f"reading {site.name}/{csv.name}", 0.05 * done / total)
            data = load_sensor_csv(csv, sensors=sensors)
            sensors = sensors or list(data.sensors)
            if data.rows <= TRAIN_ROWS:
                raise UserError(f"{site.name}/{csv.name} has {data.rows} rows; SKAB's protocol trains on the first {TRAIN_ROWS}")
            site.parts.append(replace(data, train_rows=TRAIN_ROWS))
            site.changepoints.append(_changepoints(data))
            done += 1
    if not any(p.labels is not None for s in sites for p in s.parts):
        raise UserError("none of the files has an anomaly label column, so there is nothing to score")
    return sensors or []


def run_skab(
    data_dir: Path,
    mode: str,
    settings: SkabSettings = SkabSettings(),
    on_progress: Progress | None = None,
    choice: dict | None = None,
) -> dict:
    """Train in ``mode``, score every labelled file's test rows; a JSON-ready dict. ``choice``:
    FederationSettings fields for the federated mode (strategy, DP, shared scaling)."""
    if mode not in MODES:
        raise UserError(f"mode must be one of {', '.join(MODES)} (got {mode!r})")
    if choice and mode != "federated":
        raise UserError("a strategy, differential privacy or shared scaling applies to the federated mode only")
    report = on_progress or (lambda message, fraction: None)
    ready_for_timing()
    sites = discover(data_dir)
    try:
        fed = settings.federation(len(sites), **(choice or {}))
    except ValueError as exc:  # e.g. a median with fewer than 3 facilities
        raise UserError(str(exc)) from None
    t0 = time.perf_counter()
    sensors = load_sites(sites, report)
    spec = spec_for(sites[0].parts[0])
    record: dict = {}
    if mode == "local":
        detectors, losses = _local(sites, spec, settings, report)
    elif mode == "centralized":
        detectors, losses = _centralized(sites, spec, settings, report)
    else:
        detectors, losses, record = _federated(sites, spec, fed, settings.seed, report)
    report("scoring the test rows", 0.95)
    files = [_score(site, part, cps, detectors[(site.name, part.path.name)]) for site, part, cps in _labelled(sites)]
    wall = time.perf_counter() - t0
    overall = _figures(files)
    typical = min(files, key=lambda f: abs(f["f1"] - overall["f1"]))  # the example timeline: a file like the whole
    per_site = {
        s.name: _figures([f for f in files if f["facility"] == s.name])
        for s in sites
        if any(f["facility"] == s.name for f in files)
    }
    report("done", 1.0)
    return {
        "benchmark": "skab",
        "mode": mode,
        "data_dir": str(data_dir),
        "facilities": {s.name: [p.path.name for p in s.parts] for s in sites},
        "sensors": sensors,
        "settings": {
            **asdict(settings),
            "train_rows": TRAIN_ROWS,
            "spec": spec.to_dict(),
            "local_training": LOCAL_TRAINING.to_dict(),
        },
        **record,
        **overall,
        "per_facility": per_site,
        "published": PUBLISHED,
        "loss_per_round": losses,
        "files": [{k: v for k, v in f.items() if k not in ("timeline", "nab_parts", "delay_parts")} for f in files],
        "example": typical["timeline"],
        "wall_s": round(wall, 2),
        "machine": machine(),
    }


def _labelled(sites: list[Site]):
    for site in sites:
        for part, cps in zip(site.parts, site.changepoints):
            if part.labels is not None:
                yield site, part, cps


def _figures(files: list[dict]) -> dict:
    """SKAB's point-wise figures, NAB and detection delay over ``files`` together."""
    counts = sum_counts(f["counts"] for f in files)
    nab = nab_scores([p for f in files for p in f["nab_parts"]]) if any(f["nab_parts"] for f in files) else None
    delays = detection_delays([p for f in files for p in f["delay_parts"]])
    return {**rates(counts), "counts": counts, "nab": nab, "delay": delays}


# -- training ---------------------------------------------------------------------------


def _local(sites: list[Site], spec: ModelSpec, settings: SkabSettings, report: Progress) -> tuple[dict, dict]:
    """Each labelled file alone: the detector a facility holding only that file would train."""
    labelled = [(s, p) for s, p, _ in _labelled(sites)]
    detectors, losses = {}, {}
    for i, (site, part) in enumerate(labelled):
        report(f"local: {site.name}/{part.path.name}", 0.05 + 0.9 * i / len(labelled))
        det = Detector.fit(part, spec, replace(LOCAL_TRAINING, seed=settings.seed))
        detectors[(site.name, part.path.name)] = det
        losses[f"{site.name}/{part.path.name}"] = [round(r, 6) for r in det.info["epoch_losses"]]
    return detectors, {"local (per epoch, each file)": losses}


def _centralized(sites: list[Site], spec: ModelSpec, settings: SkabSettings, report: Progress) -> tuple[dict, dict]:
    """One network on every file's training windows pooled, then personalised per file."""
    pooled = Facility([p for s in sites for p in s.parts], spec, "centralized", settings.seed)
    seed_everything(settings.seed)
    model = build_model(spec)
    report("centralized: training on every file's rows", 0.1)
    history = train_epochs(model, pooled.view, pooled.train_pool, replace(LOCAL_TRAINING, seed=settings.seed))
    detectors = _personalised(sites, spec, get_parameters(model), None, None, None, settings.seed, report)
    return detectors, {"centralized (per epoch)": [round(r.loss, 6) for r in history]}


def _federated(
    sites: list[Site], spec: ModelSpec, fed: FederationSettings, seed: int, report: Progress
) -> tuple[dict, dict, dict]:
    run = federate(fed, [s.csvs for s in sites], [s.name for s in sites], report, 0.05, 0.85, TRAIN_ROWS, seed)
    losses = {"federated (global model)": run.curve, **{f"{k} (held-out part)": v for k, v in run.per_facility.items()}}
    detectors = _personalised(sites, spec, run.params, run.scaler, run.threshold, fed.rounds, seed, report)
    return detectors, losses, {"federation": fed.to_dict(), "choice": choice_record(fed, run)}


def _personalised(sites, spec, params, scaler, threshold, rounds, seed, report) -> dict:
    """Each file's detector from the global ``params``, exactly as a facility makes its own at
    the end of a run: personalised on its training rows, calibrated there (with the agreed
    scaler and threshold under shared scaling)."""
    detectors = {}
    labelled = list(_labelled(sites))
    for i, (site, part, _) in enumerate(labelled):
        report(f"personalising {site.name}/{part.path.name}", 0.85 + 0.1 * i / len(labelled))
        facility = Facility(part, spec, site.name, seed)
        if scaler is not None:
            facility.use_scaler(scaler)
        detectors[(site.name, part.path.name)] = facility.final_detector(params, rounds, threshold)
    return detectors


# -- scoring ----------------------------------------------------------------------------


def _score(site: Site, part: SensorData, changepoints: np.ndarray | None, detector: Detector) -> dict:
    """The file's detector on its test rows: SKAB's counts, NAB's parts and the delays."""
    scores = detector.decision_function(part)
    flags_all = detector.predict(part)
    flags = flags_all[TRAIN_ROWS:]
    truth = part.labels[TRAIN_ROWS:].astype(bool)
    times = part.timestamps[TRAIN_ROWS:] if part.timestamps is not None else None
    true_cps = changepoints if changepoints is not None else label_changepoints(part.labels)
    true_cps = true_cps[true_cps >= TRAIN_ROWS] - TRAIN_ROWS
    counts = confusion(truth, flags)
    return {
        "facility": site.name,
        "file": part.path.name,
        "test_rows": int(len(truth)),
        "threshold": round(float(detector.threshold), 6),
        "model": detector.info.get("model"),
        "epochs_run": detector.info.get("epochs_run"),
        "relative_sensors": [
            s for s, r in zip(part.sensors, detector.scaler.relative if detector.scaler.relative is not None else []) if r
        ],
        **rates(counts),
        "counts": counts,
        "nab_parts": [(true_cps, alarm_edges(flags), times)] if len(true_cps) else [],
        "delay_parts": [(truth, flags, times)],
        "timeline": {
            "facility": site.name,
            "file": part.path.name,
            "train_rows": TRAIN_ROWS,
            "threshold": round(float(detector.threshold), 6),
            "scores": [None if np.isnan(v) else round(float(v), 5) for v in scores],
            "labels": part.labels.astype(int).tolist(),
            "flags": flags.astype(int).tolist(),
        },
    }
