"""Speed of the default model beside the naive pipeline of the original trial (bench; no Qt).

:func:`run_speed` measures, in one run on the same rows of one CSV:

- PumpFL's default model (the default :class:`FederationSettings` and its round 1 config):
  data preparation (a :class:`Facility` is made: scaler fit, window indexing, held-out split;
  loading the CSV is reported apart), the windows per second of one local epoch, and one full
  local round exactly as a federation runs it (``Facility.fit`` then ``Facility.evaluate``);
- the naive pipeline (:mod:`pumpfl_gui.bench.naive`): its window-building loop, one epoch, and
  one round (build the windows, the same number of local epochs, score the held-out windows);
- the ratios, and the ROC-AUC of each model's row scores after one round against the rows
  labelled anomalous (for pump data, ``machine_status`` not NORMAL), over the rows both score.

Wall times on a shared machine are noisy; the dict records the machine and its load.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..core.alarm_rules import row_scores
from ..core.data_fit import spec_for
from ..core.dataset import SensorData, load_sensor_csv
from ..core.model import build_model, get_parameters
from ..core.runtime import choose_device, seed_everything
from ..core.training import train_epochs, window_errors
from ..fl.facility import Facility
from ..fl.protocol import FederationSettings, spec_from_shape, train_settings_from_config
from . import naive
from .machine import machine, ready_for_timing


def run_speed(
    csv: Path,
    max_rows: int | None = None,
    on_progress: Callable[[str, float], None] | None = None,
    repeats: int = 3,
) -> dict:
    """Time both pipelines on ``csv`` (its first ``max_rows`` rows when given); a JSON-ready dict.

    Each round is run ``repeats`` times, alike from the same start; the figures are medians.
    """
    if max_rows is not None and max_rows < 1:
        raise ValueError("max_rows must be at least 1")
    if repeats < 1:
        raise ValueError("repeats must be at least 1")
    report = on_progress or (lambda message, fraction: None)
    ready_for_timing()

    device = choose_device()
    federation = FederationSettings()
    config = federation.round_config(1)
    settings = train_settings_from_config(config)

    report("loading the CSV", 0.0)
    t0 = time.perf_counter()
    data = load_sensor_csv(csv)
    load_s = time.perf_counter() - t0
    rows_in_file = data.rows
    if max_rows is not None:
        data = _first_rows(data, max_rows)

    # PumpFL's default model.
    report("PumpFL: preparing the data", 0.1)
    spec = spec_from_shape(len(data.sensors), federation.shape()) if federation.shape() else spec_for(data)
    t0 = time.perf_counter()
    facility = Facility(data, spec)
    prep_s = time.perf_counter() - t0
    epoch_starts = facility.train_pool[:: settings.stride]
    report("PumpFL: one epoch", 0.2)
    seed_everything(settings.seed)
    epoch = train_epochs(build_model(spec), facility.view, epoch_starts, replace(settings, epochs=1))[0]
    report("PumpFL: one round", 0.35)
    seed_everything(settings.seed)
    initial = get_parameters(build_model(spec))
    fits, evals = [], []
    for _ in range(repeats):  # the same round from the same start; the median of its times
        t0 = time.perf_counter()
        parameters, _, _ = facility.fit(initial, config)
        t1 = time.perf_counter()
        _, held_out = facility.evaluate(parameters)
        fits.append(t1 - t0)
        evals.append(time.perf_counter() - t1)
    report("PumpFL: scoring every row", 0.5)
    ours_scores = row_scores(window_errors(facility.model, facility.view), spec.window, data.rows)
    ours = _figures(prep_s, epoch.windows, epoch.seconds, _median([f + e for f, e in zip(fits, evals)]))
    ours["round_parts_s"] = {"fit": _s(_median(fits)), "evaluate": _s(_median(evals))}
    ours["round_repeats_s"] = [_s(f + e) for f, e in zip(fits, evals)]
    ours["round_held_out_windows"] = held_out

    # The naive pipeline on the same rows.
    report("naive: building the windows", 0.55)
    t0 = time.perf_counter()
    windows = naive.prepare_windows(data)
    naive_prep_s = time.perf_counter() - t0
    report("naive: one epoch", 0.65)
    seed_everything(settings.seed)
    naive_epoch_s = naive.train(naive.NaiveAutoencoder(windows.train.shape[1]), windows.train, 1, settings.seed, device)[0]
    report("naive: one round", 0.75)
    naive_rounds = [naive.run_round(data, federation.local_epochs, settings.seed) for _ in range(repeats)]
    naive_round = naive_rounds[0]
    report("naive: scoring every row", 0.9)
    naive_scores = row_scores(naive.all_window_errors(naive_round.model, data), naive.WINDOW, data.rows)
    theirs = _figures(naive_prep_s, len(windows.train), naive_epoch_s, _median([r.round_s for r in naive_rounds]))
    theirs["round_parts_s"] = {
        "build_windows": _s(_median([r.windows_s for r in naive_rounds])),
        "train": _s(_median([r.train_s for r in naive_rounds])),
        "evaluate": _s(_median([r.evaluate_s for r in naive_rounds])),
    }
    theirs["round_repeats_s"] = [_s(r.round_s) for r in naive_rounds]
    theirs["round_held_out_windows"] = naive_round.held_out_windows

    report("done", 1.0)
    return {
        "benchmark": "speed",
        "data": {
            "file": data.path.name,
            "schema": data.schema,
            "rows_in_file": rows_in_file,
            "rows": data.rows,
            "sensors": len(data.sensors),
            "load_s": _s(load_s),
        },
        "machine": machine(device),
        "pumpfl": {
            "design": f"conv1d autoencoder, window {spec.window}, channels {list(spec.channels)}, kernel {spec.kernel}, "
            f"all {spec.sensors} sensors standardised, windows gathered from a strided view, training stride {settings.stride}, "
            f"batch {settings.batch_size}",
            "model": spec.to_dict(),
            "round_config": config,
            "prep": "Facility(): scaler fit, window indexing, held-out split (done once per run, not per round)",
            "round": f"Facility.fit ({federation.local_epochs} local epochs) + Facility.evaluate (held-out windows)",
            **ours,
        },
        "naive": {
            "design": f"first {naive.sensor_count(data)} sensors min-max scaled, Python loop per {naive.WINDOW}-row window, "
            f"DataLoader batch {naive.BATCH_SIZE}, Conv1d({naive.FILTERS}, k{naive.KERNEL}) + MaxPool + "
            "ConvTranspose1d + sigmoid, "
            "training stride 1",
            "prep": "min-max fit + the Python loop building every clean window",
            "round": f"build the windows + {federation.local_epochs} local epochs + errors of the held-out windows",
            **theirs,
        },
        "ratios": {
            "round_speedup": _ratio(theirs["round_s"], ours["round_s"]),
            "round_speedup_counting_our_prep": _ratio(theirs["round_s"], ours["round_s"] + ours["prep_s"]),
            "throughput": _ratio(ours["windows_per_s"], theirs["windows_per_s"]),
            "prep_speedup": _ratio(theirs["prep_s"], ours["prep_s"]),
        },
        "detection": _detection(data, ours_scores, naive_scores),
    }


def _first_rows(data: SensorData, rows: int) -> SensorData:
    def cut(a: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else a[:rows]

    return replace(
        data, values=data.values[:rows], timestamps=cut(data.timestamps), status=cut(data.status), labels=cut(data.labels)
    )


def _median(values: list[float]) -> float:
    return float(np.median(values))


def _s(seconds: float) -> float:
    return round(seconds, 6)


def _ratio(a: float, b: float) -> float:
    return round(a / b, 3)


def _figures(prep_s: float, epoch_windows: int, epoch_s: float, round_s: float) -> dict:
    return {
        "prep_s": _s(prep_s),
        "epoch_windows": int(epoch_windows),
        "epoch_s": _s(epoch_s),
        "windows_per_s": round(epoch_windows / epoch_s, 1),
        "round_s": _s(round_s),
    }


def _detection(data: SensorData, ours: np.ndarray, theirs: np.ndarray) -> dict:
    """ROC-AUC of both models' row scores over the rows both score."""
    from sklearn.metrics import roc_auc_score

    scored = ~np.isnan(ours) & ~np.isnan(theirs)
    result = {
        "rounds": 1,  # both models are scored after one local round from the same seed
        "labels": "machine_status not NORMAL" if data.status is not None else data.label_column,
        "scored_rows": int(scored.sum()),
        "anomalous_rows": None,
        "pumpfl_roc_auc": None,
        "naive_roc_auc": None,
    }
    if data.labels is None:
        return result
    y = data.labels[scored].astype(bool)
    result["anomalous_rows"] = int(y.sum())
    if 0 < y.sum() < len(y):
        result["pumpfl_roc_auc"] = round(float(roc_auc_score(y, ours[scored])), 4)
        result["naive_roc_auc"] = round(float(roc_auc_score(y, theirs[scored])), 4)
    return result
