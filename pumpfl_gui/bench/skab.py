"""SKAB, the real pump test bed, under its published protocol (bench; no Qt).

Fixed by the protocol (SKAB's README): in every file the first 400 rows may train and the rest
are tested; labels never train; F1, FAR and MAR are counted point by point over the test rows
of all labelled files together. Files without labels (SKAB's anomaly-free run) only train.

Ours to choose, and chosen before looking at any test row:

- the default PumpFL model (window 32), trained on each file's first 400 rows — the first four
  fifths of its training windows; the last fifth is held out and gives the loss per round;
- each file's own scaler, fitted on its 400 training rows; a sensor whose readings wander
  there (step ratio below 0.5, :func:`pumpfl_gui.core.windows.step_ratio`) is judged by its
  change over the window rather than its level;
- SKAB's published threshold rule for its Conv-AE, with our window: the 0.999 quantile of the
  errors of the file's windows the model trained on, times 4/3, and a row is flagged once the ``window - 1`` window
  scores up to it all exceed that threshold.

With shared scaling (a federated choice, ``fl/choices.py``) every file is scaled with the scaler
the facilities agreed from their training rows' aggregates, and judged against the threshold
they agreed: the app's rule, the 0.995 quantile of every file's clean training-window errors
pooled across facilities (``core/pooling.py``), with the same ``window - 1`` persistence — the
federation's own agreement, in place of a threshold per file. The same model is also scored
with the agreed scaler and SKAB's per-file threshold, so the scaler's effect shows apart from
the threshold's.

Modes: ``local`` (one model per file, as published), ``federated`` (each subfolder is a
facility; a real Flower federation on loopback trains one global model), ``centralized``
(one model on every file's training rows pooled: the reference federation approaches without
pooling). Local and centralized train for ``rounds x local_epochs`` epochs, evaluated after
every ``local_epochs`` as if in rounds, so the three loss curves compare.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from ..core.dataset import SensorData, load_sensor_csv
from ..core.detection import DetectionSettings, flag_rows, row_scores, threshold_from_errors
from ..core.detector import prepare
from ..core.errors import UserError
from ..core.model import build_model, set_parameters
from ..core.training import window_errors
from ..core.windows import Scaler
from ..fl.facility import Facility, split_held_out
from ..fl.protocol import FederationSettings
from .machine import machine, ready_for_timing
from .rounds import FederationRun, choice_record, federate, train_rounds

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
    rounds: int = 10
    local_epochs: int = 3
    batch_size: int = 32
    lr: float = 1e-3
    window: int = 32
    channels: tuple[int, int] = (16, 4)
    kernel: int = 3
    wander_below: float | None = 0.5
    quantile: float = 0.999
    factor: float = 4 / 3
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
            window=self.window,
            channels=self.channels,
            kernel=self.kernel,
            wander_below=self.wander_below,
            **choice,
        )

    def detection(self) -> DetectionSettings:
        return DetectionSettings(quantile=self.quantile, factor=self.factor, persistence=self.window - 1, merge_gap=0)


@dataclass
class Site:
    """One facility: a name and its files, each limited to its first TRAIN_ROWS training rows."""

    name: str
    csvs: list[Path]
    parts: list[SensorData] = field(default_factory=list)


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
            site.parts.append(replace(data, train_rows=TRAIN_ROWS))
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
    spec = fed.spec_for(len(sensors))
    record, scaler, threshold = {}, None, None
    if mode == "local":
        models, losses = _local(sites, spec, settings, report)
    elif mode == "centralized":
        params, curve = _pooled([p for s in sites for p in s.parts], spec, settings, "centralized", 0.05, 0.85, report)
        models, losses = {}, {"centralized": curve}
        for s in sites:
            for p in s.parts:
                models[(s.name, p.path.name)] = params
    else:
        run, losses = _federated(sites, fed, report)
        models = {(s.name, p.path.name): run.params for s in sites for p in s.parts}
        record = {"federation": fed.to_dict(), "choice": choice_record(fed, run)}
        if fed.shared_scaling:
            scaler, threshold = run.scaler, run.threshold
    report("scoring the test rows", 0.9)
    labelled = [(s.name, p) for s in sites for p in s.parts if p.labels is not None]
    files = [_score(site, p, spec, models[(site, p.path.name)], settings, scaler, threshold) for site, p in labelled]
    wall = time.perf_counter() - t0
    if scaler is not None:
        # The agreed scaler with SKAB's per-file threshold too: the scaler's effect apart from the threshold's.
        own = _totals([_score(site, p, spec, models[(site, p.path.name)], settings, scaler) for site, p in labelled])
        record["shared_scaler_own_threshold"] = {**_rates(own), "counts": own}
    totals = _totals(files)
    overall = _rates(totals)
    typical = min(files, key=lambda f: abs(f["f1"] - overall["f1"]))  # the example timeline: a file like the whole
    report("done", 1.0)
    return {
        "benchmark": "skab",
        "mode": mode,
        "data_dir": str(data_dir),
        "facilities": {s.name: [p.path.name for p in s.parts] for s in sites},
        "sensors": sensors,
        "settings": {**asdict(settings), "train_rows": TRAIN_ROWS, "persistence": spec.window - 1},
        **record,
        **overall,
        "counts": totals,
        "published": PUBLISHED,
        "loss_per_round": losses,
        "files": [{k: v for k, v in f.items() if k != "timeline"} for f in files],
        "example": typical["timeline"],
        "wall_s": round(wall, 2),
        "machine": machine(),
    }


def _totals(files: list[dict]) -> dict:
    return {k: sum(f["counts"][k] for f in files) for k in ("tp", "fp", "fn", "tn")}


def _rates(c: dict) -> dict:
    tp, fp, fn, tn = c["tp"], c["fp"], c["fn"], c["tn"]
    return {
        "f1": round(tp / (tp + (fp + fn) / 2), 4) if tp + fp + fn else 0.0,
        "far_pct": round(100 * fp / (fp + tn), 2) if fp + tn else 0.0,
        "mar_pct": round(100 * fn / (fn + tp), 2) if fn + tp else 0.0,
    }


# -- training ---------------------------------------------------------------------------


def _local(sites: list[Site], spec, settings: SkabSettings, report: Progress) -> tuple[dict, dict]:
    labelled = [(s, p) for s in sites for p in s.parts if p.labels is not None]
    models, losses = {}, {}
    for i, (site, part) in enumerate(labelled):
        lo = 0.05 + 0.85 * i / len(labelled)
        facility = _facility(part, spec, f"{site.name}/{part.path.name}", settings)
        params, curve = train_rounds(facility, settings.federation(1), settings.seed, facility.name, lo, lo + 0.85 / len(labelled), report)
        models[(site.name, part.path.name)] = params
        losses[facility.name] = curve
    # One curve for the mode: the files' held-out losses averaged round by round.
    losses = {"local (mean of files)": [round(float(np.mean(c)), 6) for c in zip(*losses.values())], **losses}
    return models, losses


def _facility(parts, spec, name: str, settings: SkabSettings) -> Facility:
    try:
        return Facility(parts, spec, name, settings.seed, settings.wander_below)
    except ValueError as exc:  # a file too short for a window, or for a held-out part
        raise UserError(f"{name}: {exc}") from None


def _pooled(parts: list[SensorData], spec, settings: SkabSettings, name: str, lo: float, hi: float, report: Progress) -> tuple[list, list[float]]:
    facility = _facility(parts, spec, name, settings)
    return train_rounds(facility, settings.federation(1), settings.seed, name, lo, hi, report)


def _federated(sites: list[Site], fed: FederationSettings, report: Progress) -> tuple[FederationRun, dict]:
    run = federate(fed, [s.csvs for s in sites], [s.name for s in sites], report, 0.05, 0.9, TRAIN_ROWS)
    return run, {"federated (global model)": run.curve, **{f"{k} (held-out part)": v for k, v in run.per_facility.items()}}


# -- scoring ----------------------------------------------------------------------------


def _score(
    site: str, part: SensorData, spec, params: list, settings: SkabSettings, scaler: Scaler | None = None, threshold: float | None = None
) -> dict:
    """The file's own scaler and threshold (from its training rows) applied to its test rows;
    with shared scaling, the federation's agreed ``scaler`` and ``threshold`` instead."""
    model = build_model(spec)
    set_parameters(model, params)
    detection = settings.detection()
    if scaler is None:
        scaler = Scaler.fit(part.values[part.train_mask()], settings.wander_below, spec.window)
    prep = prepare(part, spec.window, scaler)
    if threshold is None:
        trained_on, _ = split_held_out(prep.clean_starts, spec.window)
        threshold = threshold_from_errors(window_errors(model, prep.view, trained_on), detection)
    scores = row_scores(window_errors(model, prep.view), spec.window, part.rows)
    flags = flag_rows(scores, threshold, detection.persistence)[TRAIN_ROWS:]
    truth = part.labels[TRAIN_ROWS:].astype(bool)
    counts = {
        "tp": int((flags & truth).sum()),
        "fp": int((flags & ~truth).sum()),
        "fn": int((~flags & truth).sum()),
        "tn": int((~flags & ~truth).sum()),
    }
    return {
        "facility": site,
        "file": part.path.name,
        "test_rows": int(len(truth)),
        "threshold": round(threshold, 6),
        "relative_sensors": [s for s, r in zip(part.sensors, scaler.relative if scaler.relative is not None else []) if r],
        **_rates(counts),
        "counts": counts,
        "timeline": {
            "facility": site,
            "file": part.path.name,
            "train_rows": TRAIN_ROWS,
            "threshold": round(threshold, 6),
            "scores": [None if np.isnan(v) else round(float(v), 5) for v in scores],
            "labels": part.labels.astype(int).tolist(),
            "flags": flags.astype(int).tolist(),
        },
    }
