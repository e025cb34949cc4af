"""The default facilities: federated vs each facility alone vs centralized (bench; no Qt).

Every facility scores its own whole file with its own scaler and a threshold from its own
normal windows (the app's detection rules, :class:`DetectionSettings`) — or, when the
federation uses shared scaling, with the scaler and threshold the facilities agreed; only the
network differs: trained on the facility's rows alone (``alone``), by a real Flower federation on
loopback (``federated``), or on all facilities' rows pooled (``centralized``, the reference
that federation approaches without pooling). Reported per facility: failures caught before
their BROKEN minute, median lead time, false alarms per day of watched normal operation, and
ROC-AUC of the row scores against the rows that are not NORMAL.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

from ..core.data_fit import spec_for
from ..core.dataset import SensorData, load_sensor_csv
from ..core.detector import Detector, score_data
from ..core.errors import UserError
from ..core.metrics import headline_figures
from ..fl.facility import Facility
from ..fl.protocol import FederationSettings, spec_from_shape
from .machine import machine, ready_for_timing
from .rounds import FederationRun, choice_record, federate, train_rounds

MODES = ("alone", "federated", "centralized")

Progress = Callable[[str, float], None]


def facility_csvs(data_dir: Path) -> list[Path]:
    """Every ``client_*.csv`` (else every CSV) of ``data_dir``: one facility each."""
    data_dir = Path(data_dir)
    csvs = sorted(data_dir.glob("client_*.csv")) or sorted(data_dir.glob("*.csv"))
    if len(csvs) < 2:
        raise UserError(
            f"{data_dir} needs at least two facility CSVs (client_0.csv, client_1.csv, ...) to compare federation with"
        )
    return csvs


def run_pump(
    data_dir: Path,
    settings: FederationSettings,
    seed: int = 0,
    on_progress: Progress | None = None,
    modes: Sequence[str] = MODES,
) -> dict:
    """``modes`` (default all three) on the facilities of ``data_dir``; a JSON-ready dict. The
    federation runs with ``settings``' strategy, differential privacy and shared scaling."""
    if not set(modes) <= set(MODES):
        raise UserError(f"modes must be among {', '.join(MODES)} (got {', '.join(modes)})")
    report = on_progress or (lambda message, fraction: None)
    ready_for_timing()
    data_dir = Path(data_dir)
    csvs = facility_csvs(data_dir)
    parts: list[SensorData] = []
    for csv in csvs:
        report(f"reading {csv.name}", 0.0)
        parts.append(load_sensor_csv(csv, sensors=parts[0].sensors if parts else None))
    if any(p.status is None for p in parts):
        raise UserError("the pump benchmark needs the pump schema (a machine_status column) in every file")
    try:
        settings = FederationSettings(**{**asdict(settings), "min_clients": len(parts)})
    except ValueError as exc:  # e.g. a median with fewer than 3 facilities
        raise UserError(str(exc)) from None
    spec = spec_from_shape(len(parts[0].sensors), settings.shape()) if settings.shape() else spec_for(parts[0])
    try:
        facilities = [Facility(p, spec, p.path.stem, seed) for p in parts]
    except ValueError as exc:  # a file too short for a window, or for a held-out part
        raise UserError(str(exc)) from None
    models: dict[str, list] = {}
    losses: dict[str, dict[str, list[float]]] = {}
    seconds: dict[str, float] = {}
    run: FederationRun | None = None

    if "alone" in modes:
        t0 = time.perf_counter()
        models["alone"], losses["alone"] = [], {}
        for i, fac in enumerate(facilities):
            params, curve = train_rounds(
                fac, settings, seed, f"alone: {fac.name}", 0.33 * i / len(facilities), 0.33 * (i + 1) / len(facilities), report
            )
            models["alone"].append(params)
            losses["alone"][fac.name] = curve
        seconds["alone"] = time.perf_counter() - t0

    if "federated" in modes:
        t0 = time.perf_counter()
        run = federate(settings, csvs, [c.stem for c in csvs], report, 0.33, 0.66, seed=seed)
        models["federated"], losses["federated"] = [run.params] * len(parts), {"global model": run.curve, **run.per_facility}
        seconds["federated"] = time.perf_counter() - t0

    if "centralized" in modes:
        t0 = time.perf_counter()
        pooled = Facility(parts, spec, "centralized", seed)
        params, curve = train_rounds(pooled, settings, seed, "centralized", 0.66, 0.95, report)
        models["centralized"], losses["centralized"] = [params] * len(parts), {"pooled": curve}
        seconds["centralized"] = time.perf_counter() - t0

    report("scoring every facility's rows", 0.95)
    per_facility = []
    for i, fac in enumerate(facilities):
        row = {"facility": fac.name, "rows": fac.data.rows, "train_windows": fac.samples}
        for mode in MODES:
            if mode in models:
                detector = _detector(fac, mode, models[mode][i], run, settings)
                row[mode] = headline_figures(score_data(detector, fac.data).metrics)
                row[mode]["model"] = detector.info.get("model")
        per_facility.append(row)
    report("done", 1.0)
    return {
        "benchmark": "pump",
        "data_dir": str(data_dir),
        "settings": settings.to_dict(),
        "seed": seed,
        "modes": [m for m in MODES if m in modes],
        **({"choice": choice_record(settings, run)} if run is not None else {}),
        "facilities": per_facility,
        "loss_per_round": losses,
        "train_seconds": {k: round(v, 2) for k, v in seconds.items()},
        "machine": machine(),
    }


def _detector(fac: Facility, mode: str, params: list, run: FederationRun | None, settings: FederationSettings) -> Detector:
    """The detector each facility would hold, made as the app makes it: trained alone and
    calibrated on its rows; or the federation's (or pooled) model personalised on its rows, with
    the agreed scaler and threshold under shared scaling."""
    if mode == "alone":
        detector = fac.final_detector(params, personalise=False)
        detector.info["model"] = "trained alone"
        return detector
    if mode == "federated" and settings.shared_scaling and run is not None:
        fac = Facility(fac.data, fac.spec, fac.name, fac.seed)
        fac.use_scaler(run.scaler)
        return fac.final_detector(params, settings.rounds, run.threshold)
    return fac.final_detector(params, settings.rounds if mode == "federated" else None)
