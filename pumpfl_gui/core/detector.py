"""A trained detector: network, scaler, sensors, threshold — and the steps that make and use it.

Core layer. ``fit_detector`` is one facility training alone (the baseline federation must
beat); ``score_data`` applies any detector, local or federated, to a facility's data.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .dataset import SensorData
from .detection import (
    DetectionSettings,
    failure_metrics,
    flag_rows,
    label_event_metrics,
    pointwise_metrics,
    row_scores,
    runs,
    threshold_from_errors,
)
from .runtime import seed_everything
from .model import ConvAutoencoder, ModelSpec, build_model
from .task import TaskState
from .training import EpochResult, TrainSettings, train_epochs, window_errors
from .windows import Scaler, clean_window_starts, window_view


@dataclass
class Detector:
    spec: ModelSpec
    model: ConvAutoencoder
    scaler: Scaler | None  # None: not yet calibrated to a facility (a federation's global model)
    sensors: list[str]
    threshold: float | None
    detection: DetectionSettings = field(default_factory=DetectionSettings)
    info: dict = field(default_factory=dict)  # provenance: data file, training settings, losses


@dataclass
class PreparedData:
    """A facility's rows scaled and indexed for windowing."""

    scaled: np.ndarray  # float32 (rows, sensors)
    view: np.ndarray  # stride-1 window view (n_windows, sensors, window)
    clean_starts: np.ndarray  # every window of normal rows (the threshold is set on these)
    train_starts: np.ndarray  # every ``stride``-th of them: the windows training visits


def prepare(data: SensorData, window: int, scaler: Scaler, train_stride: int = 1) -> PreparedData:
    scaled = scaler.transform(data.values)
    view = window_view(scaled, window)
    clean = clean_window_starts(data.train_mask(), window)
    return PreparedData(scaled, view, clean, clean[::train_stride])


def check_trainable(data: SensorData, window: int) -> None:
    """Raise ValueError with a human sentence when the data cannot train a window model."""
    n_ok = int(data.train_mask().sum())
    if data.rows < window:
        raise ValueError(f"{data.path.name} has {data.rows} rows; the model needs at least {window} in a row")
    if len(clean_window_starts(data.train_mask(), window)) == 0:
        raise ValueError(
            f"{data.path.name} has no stretch of {window} normal rows to learn from ({n_ok} normal rows in all)"
        )


def fit_detector(
    data: SensorData,
    spec: ModelSpec | None = None,
    settings: TrainSettings = TrainSettings(),
    detection: DetectionSettings = DetectionSettings(),
    state: TaskState | None = None,
    on_epoch: Callable[[EpochResult], None] | None = None,
) -> Detector:
    """Train one facility's detector on its own normal rows (labels never used)."""
    spec = spec or ModelSpec(sensors=len(data.sensors))
    check_trainable(data, spec.window)
    scaler = Scaler.fit(data.values[data.train_mask()])
    prep = prepare(data, spec.window, scaler, settings.stride)
    seed_everything(settings.seed)  # the initial weights, too, follow the seed
    model = build_model(spec)
    t0 = time.perf_counter()
    history = train_epochs(model, prep.view, prep.train_starts, settings, state, on_epoch)
    train_seconds = time.perf_counter() - t0
    threshold = calibrate_threshold(model, prep, detection, settings.device, state)
    info = {
        "data_file": data.path.name,
        "train_windows": int(len(prep.train_starts)),
        "train_settings": settings.to_dict(),
        "epoch_losses": [r.loss for r in history],
        "train_seconds": round(train_seconds, 3),
    }
    return Detector(spec, model, scaler, list(data.sensors), threshold, detection, info)


def calibrate_threshold(
    model: ConvAutoencoder,
    prep: PreparedData,
    detection: DetectionSettings,
    device: str | None = None,
    state: TaskState | None = None,
) -> float:
    """Threshold from the errors of every clean training window (stride 1)."""
    errs = window_errors(model, prep.view, prep.clean_starts, device=device, state=state)
    return threshold_from_errors(errs, detection)


@dataclass
class ScoreResult:
    scores: np.ndarray  # per row, NaN before the first full window
    flags: np.ndarray  # bool per row
    events: list[tuple[int, int]]  # (start, end) rows, end exclusive
    threshold: float
    metrics: dict  # pointwise / failures / label_events, where labels exist


def calibrate(detector: Detector, data: SensorData, state: TaskState | None = None) -> Detector:
    """Fit the threshold — and the scaler, unless the model has one (a federation's agreed
    scaler) — on ``data``'s own normal rows."""
    check_trainable(data, detector.spec.window)
    scaler = detector.scaler if detector.scaler is not None else Scaler.fit(data.values[data.train_mask()])
    prep = prepare(data, detector.spec.window, scaler)
    threshold = calibrate_threshold(detector.model, prep, detector.detection, state=state)
    info = {**detector.info, "calibrated_on": data.path.name}
    return Detector(detector.spec, detector.model, scaler, detector.sensors, threshold, detector.detection, info)


def score_data(detector: Detector, data: SensorData, state: TaskState | None = None) -> ScoreResult:
    """Score every row of ``data`` (its sensors must be the detector's, in order).

    An uncalibrated detector (a federation's global model) is first calibrated on ``data``'s
    own normal rows, as each facility does with the model it receives.
    """
    if list(data.sensors) != list(detector.sensors):
        raise ValueError("the data's sensors differ from the model's; load it with sensors=detector.sensors")
    w = detector.spec.window
    if data.rows < w:
        raise ValueError(f"{data.path.name} has {data.rows} rows; scoring needs at least {w}")
    if detector.scaler is None or detector.threshold is None:
        detector = calibrate(detector, data, state)
    scaled = detector.scaler.transform(data.values)
    view = window_view(scaled, w)
    errs = window_errors(detector.model, view, state=state)
    scores = row_scores(errs, w, data.rows)
    flags = flag_rows(scores, detector.threshold, detector.detection.persistence)
    events = runs(flags, detector.detection.merge_gap)
    metrics: dict = {}
    if data.labels is not None:
        metrics["pointwise"] = pointwise_metrics(data.labels, flags, scores)
        metrics["label_events"] = label_event_metrics(data.labels, events)
    if data.status is not None:
        metrics["failures"] = failure_metrics(data.status, data.timestamps, events, w, detector.detection)
    return ScoreResult(scores, flags, events, detector.threshold, metrics)
