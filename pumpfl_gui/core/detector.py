"""The one detector door: fit on a facility's normal rows, calibrate, score, predict (core layer).

Every caller — the app, ``pumpfl train/score``, a facility in a federation, the benchmarks —
makes, calibrates and applies detectors through :class:`Detector`, so a benchmark measures
exactly what users run. The shape is scikit-learn's and PyOD's: :meth:`Detector.fit`,
:meth:`Detector.decision_function` (a score per row), ``threshold`` (calibrated on the
facility's own normal rows), :meth:`Detector.predict` (alarms); :func:`score_data` adds the
events and figures the app and the benchmarks show.

Calibration is one rule (``core/alarm_rules.py``): a facility's own scaler (unless the
federation agreed one), its residuals' spread per sensor and its threshold, all from the
windows of its training rows.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

import numpy as np

from .alarm_rules import (
    DetectionSettings,
    combined_ratios,
    fast_weight,
    flag_rows,
    row_scores,
    runs,
    smooth_residuals,
    spread_from_sums,
    threshold_from_scores,
    top_mean,
)
from .data_fit import check_trainable, detection_for, spec_for
from .dataset import SensorData
from .metrics import failure_metrics, label_event_metrics, pointwise_metrics
from .model import ConvAutoencoder, build_model
from .model_spec import ModelSpec
from .runtime import seed_everything
from .task import TaskState
from .training import EpochResult, TrainSettings, newest_residuals, train_epochs
from .windows import ScaledWindows, Scaler, clean_window_starts

# How a facility trains alone, and how it adapts a federation's model to itself: up to this
# many epochs, stopping early on its newest held-back windows (measured on SKAB); a big
# facility's epoch visits 4,000 windows spread over all of them.
LOCAL_TRAINING = TrainSettings(epochs=100, lr=1e-3, batch_size=32, stride=1, patience=5, max_windows=4000)
PERSONALISING = TrainSettings(epochs=20, lr=3e-4, batch_size=32, stride=1, patience=5, max_windows=4000)
# A sensor whose steps are this small against its spread wanders (Scaler.fit): about 1.4 is white
# noise; 0.75 was picked on SKAB's valve1, confirmed on valve2 (BENCHMARKS.md, "The wander cut").
WANDER_BELOW = 0.75
# A long file is scored a block of windows at a time, and its threshold rests on at most this
# many of its training windows, evenly spread (every training window still sets the spread).
BLOCK_WINDOWS = 1 << 14
CALIBRATION_WINDOWS = 100_000
AGREED = "agreed across facilities"  # info["scaler"] / info["threshold"]: the federation's, kept as is
INCOMPLETE_RUN = "incomplete_run"  # info key: {"rounds": N, "of": M} for a model from a federation that ended early


@dataclass
class PreparedData:
    """A facility's rows, scaled as they are read, and indexed for windowing."""

    view: ScaledWindows  # every stride-1 window (n_windows, sensors, window)
    clean_starts: np.ndarray  # every window of normal training rows
    train_starts: np.ndarray  # every ``stride``-th of them: the windows training visits


def calibration_windows(clean_starts: np.ndarray, n_windows: int, span: int) -> np.ndarray:
    """Windows whose smoothed residual averages ``span`` clean windows (it and the ones before):
    the first windows of a stretch average fewer, are noisier, and would set the threshold."""
    ok = np.zeros(n_windows, dtype=bool)
    ok[clean_starts] = True
    return clean_window_starts(ok, span) + span - 1


def prepare(data: SensorData, window: int, scaler: Scaler, train_stride: int = 1) -> PreparedData:
    clean = clean_window_starts(data.train_mask(), window)
    return PreparedData(ScaledWindows([(data.values, scaler)], window), clean, clean[::train_stride])


def smoothed_blocks(
    model: ConvAutoencoder, view: ScaledWindows, spans: tuple[int, ...], state: TaskState | None = None
) -> Iterator[tuple[int, list[np.ndarray]]]:
    """(first window, the residuals (windows, sensors) float64 smoothed over each of ``spans``),
    a block of windows at a time over all of ``view``: each block equals the same rows of
    smoothing the whole file."""
    keep = max(spans) - 1
    carry = np.empty((0, view.shape[1]), dtype=np.float32)  # the residuals a block's smoothing reads before it
    for lo in range(0, len(view), BLOCK_WINDOWS):
        residuals = newest_residuals(model, view, state=state, start=lo, stop=lo + BLOCK_WINDOWS)
        joined = np.concatenate([carry, residuals])
        yield lo, [smooth_residuals(joined, span)[len(carry) :] for span in spans]
        carry = joined[len(joined) - min(keep, len(joined)) :]
        view.release(lo)  # rows before this block's first window are done with
    view.release()


def calibration_sample(windows: np.ndarray) -> np.ndarray:
    """The calibration windows a threshold rests on: all of them, or at most
    ``CALIBRATION_WINDOWS`` evenly spread over a long file's."""
    return windows[:: -(-len(windows) // CALIBRATION_WINDOWS)] if len(windows) else windows


def fit_scaler(data: SensorData, window: int, detection: DetectionSettings) -> Scaler:
    """A facility's own scaler from its training rows; with ``detection.wander``, sensors that
    wander there are judged by their change over the last window."""
    return Scaler.fit(data.values, WANDER_BELOW if detection.wander else None, window, rows=data.train_mask())


def describe_model(info: dict, trained_on: str, calibrated_on: str) -> str:
    """How a saved model was made (its ``info["model"]``), in words for the CLI and the app;
    a model from a federation that ended early says so (``info[INCOMPLETE_RUN]``)."""
    kind = info.get("model", "")
    if kind.startswith("personalised"):
        words = f"the federation's model, {kind} on {trained_on}"
    elif kind == "global":
        words = f"the federation's global model, calibrated on {calibrated_on}"
    elif kind == "trained alone":
        words = f"trained alone on {info.get('data_file', 'one file')}"
    else:
        words = kind or "unknown"
    early = info.get(INCOMPLETE_RUN)
    if isinstance(early, dict):
        words += f", from an incomplete run: {early.get('rounds', '?')} of {early.get('of', '?')} rounds"
    return words


@dataclass
class Calibration:
    """What calibrating on a facility's training windows measured: per look (slow, then fast)
    each sensor's spread and the windows' scores; the fast look's weight (core/alarm_rules.py)."""

    scaler: Scaler
    spread: np.ndarray
    slow_scores: np.ndarray
    fast_spread: np.ndarray | None = None
    fast_scores: np.ndarray | None = None
    weight: float | None = None


@dataclass
class Detector:
    spec: ModelSpec
    model: ConvAutoencoder
    scaler: Scaler | None  # None: not yet calibrated to a facility (a federation's global model)
    sensors: list[str]
    threshold: float | None
    detection: DetectionSettings = field(default_factory=DetectionSettings)
    info: dict = field(default_factory=dict)  # provenance: data file, training settings, losses
    spread: np.ndarray | None = None  # per sensor: the smoothed residuals' RMS on training rows
    fast_spread: np.ndarray | None = None  # the same for the fast look's shorter smoothing (None: no fast look)
    fast_weight: float | None = None  # the fast look's ratios times this share the slow look's threshold

    @property
    def calibrated(self) -> bool:
        return self.scaler is not None and self.threshold is not None and self.spread is not None

    # -- making one -------------------------------------------------------------------------

    @classmethod
    def fit(
        cls,
        data: SensorData,
        spec: ModelSpec | None = None,
        settings: TrainSettings = LOCAL_TRAINING,
        detection: DetectionSettings | None = None,
        state: TaskState | None = None,
        on_epoch: Callable[[EpochResult], None] | None = None,
    ) -> Detector:
        """Train one facility's detector on its own normal rows (labels never used); the
        detection rules follow its data unless given."""
        spec = spec or spec_for(data)
        detection = detection or detection_for(data, spec.window)
        check_trainable(data, spec.window, detection)
        scaler = fit_scaler(data, spec.window, detection)
        seed_everything(settings.seed)  # the initial weights, too, follow the seed
        untrained = cls(
            spec, build_model(spec, settings.seed), scaler, list(data.sensors), None, detection, {"data_file": data.path.name}
        )
        return untrained._trained(data, settings, "trained alone", state, on_epoch)

    def personalise(
        self,
        data: SensorData,
        settings: TrainSettings = PERSONALISING,
        state: TaskState | None = None,
        on_epoch: Callable[[EpochResult], None] | None = None,
    ) -> Detector:
        """A copy of this (federation's) model fine-tuned on ``data``'s own normal rows, then
        calibrated there: shared knowledge, local habits."""
        detection = detection_for(data, self.spec.window, shared_model=True)
        check_trainable(data, self.spec.window, detection)
        scaler = self.scaler if self.info.get("scaler") == AGREED else fit_scaler(data, self.spec.window, detection)
        mine = Detector(self.spec, copy.deepcopy(self.model), scaler, self.sensors, self.threshold, detection, dict(self.info))
        return mine._trained(data, settings, "personalised", state, on_epoch)

    def _trained(self, data, settings, how, state, on_epoch) -> Detector:
        clean = clean_window_starts(data.train_mask(), self.spec.window)
        settings = replace(settings, stride=settings.stride_for(len(clean)), max_windows=None)
        prep = prepare(data, self.spec.window, self.scaler, settings.stride)
        t0 = time.perf_counter()
        history = train_epochs(self.model, prep.view, prep.train_starts, settings, state, on_epoch)
        prep.view.release()
        info = {
            **self.info,
            "data_file": data.path.name,
            "model": how,
            "train_windows": int(len(prep.train_starts)),
            "train_settings": settings.to_dict(),
            "epoch_losses": [r.loss for r in history],
            "epochs_run": len(history),
            "train_seconds": round(time.perf_counter() - t0, 3),
        }
        return replace(self, info=info).calibrate(data, state)

    # -- calibration: the one rule ------------------------------------------------------------

    def calibrate(self, data: SensorData, state: TaskState | None = None) -> Detector:
        """Scaler (unless the model carries one the federation agreed), residual spread and
        threshold from ``data``'s own normal rows. Returns a calibrated copy. A model never
        calibrated before (a federation's global model) takes the rules ``data`` calls for."""
        self = self._rules_for(data)
        cal = self._calibration(data, state)
        if self.info.get("threshold") == AGREED and self.threshold is not None:
            threshold = self.threshold  # the federation agreed it (shared scaling)
        else:
            threshold = threshold_from_scores(cal.slow_scores, self.detection)
        info = {**self.info, "calibrated_on": data.path.name, "calibration_windows": int(len(cal.slow_scores))}
        looks = {"spread": cal.spread, "fast_spread": cal.fast_spread, "fast_weight": cal.weight}
        detection = self.detection if cal.weight is not None else replace(self.detection, fast=None)
        return replace(self, scaler=cal.scaler, threshold=threshold, info=info, detection=detection, **looks)

    def training_scores(self, data: SensorData, state: TaskState | None = None) -> np.ndarray:
        """The slow look's scores of the training windows, which the threshold rests on (a
        federation pools their quantiles for a shared threshold; the fast look is weighted to
        it)."""
        return self._rules_for(data)._calibration(data, state).slow_scores

    def _rules_for(self, data: SensorData) -> Detector:
        """A federation's global model takes the rules ``data`` calls for (a shared model's);
        a facility's keeps its own."""
        if self.info.get("model") == "global":
            return replace(self, detection=detection_for(data, self.spec.window, shared_model=True))
        return self

    def _calibration(self, data: SensorData, state: TaskState | None) -> Calibration:
        check_trainable(data, self.spec.window, self.detection)
        scaler = self.scaler if self.scaler is not None else fit_scaler(data, self.spec.window, self.detection)
        prep = prepare(data, self.spec.window, scaler)
        spans = self.detection.spans(self.spec.window)
        windows = calibration_windows(prep.clean_starts, len(prep.view), spans[0])  # full for every look
        sample = calibration_sample(windows)
        sum_squares = np.zeros((len(spans), prep.view.shape[1]))
        kept: list[list[np.ndarray]] = [[] for _ in spans]
        for lo, looks in smoothed_blocks(self.model, prep.view, spans, state):
            here = windows[np.searchsorted(windows, lo) : np.searchsorted(windows, lo + len(looks[0]))] - lo
            mine = sample[np.searchsorted(sample, lo) : np.searchsorted(sample, lo + len(looks[0]))] - lo
            for i, smoothed in enumerate(looks):
                sum_squares[i] += np.square(smoothed[here]).sum(axis=0)
                kept[i].append(smoothed[mine])
        spreads = [spread_from_sums(sums, len(windows)) for sums in sum_squares]
        reads = self._fast_reads(scaler)
        ratios = [np.abs(np.concatenate(k)) / sp for k, sp in zip(kept, spreads)]
        slow_scores = top_mean(ratios[0], self.detection.top)
        if len(spans) == 1 or not reads.any():  # no fast look, or none of its sensors is judged by level
            return Calibration(scaler, spreads[0], slow_scores)
        fast_scores = top_mean(ratios[1][:, reads], self.detection.top)
        weight = fast_weight(slow_scores, fast_scores, self.detection)
        return Calibration(scaler, spreads[0], slow_scores, spreads[1], fast_scores, weight)

    def _fast_reads(self, scaler: Scaler) -> np.ndarray:
        """Which sensors the fast look reads: those judged by their level (one judged by its change
        over the last window already looks at the last minute), or every sensor where the rules say
        so (models saved before)."""
        if self.detection.fast_reads_changes or scaler.relative is None:
            return np.ones(len(scaler.mean), dtype=bool)
        return ~scaler.relative

    # -- applying it --------------------------------------------------------------------------

    def decision_function(self, data: SensorData, state: TaskState | None = None) -> np.ndarray:
        """One score per row (NaN for the rows not judged yet); higher is stranger."""
        return self._scored(data, state, ratios=False)[0]

    def scores_and_ratios(self, data: SensorData, state: TaskState | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The scores, and per row and sensor how far the sensor's smoothed residual is from
        normal in its own spreads (NaN for the rows not judged): which sensors made a score.
        One pass of the model for both."""
        return self._scored(data, state, ratios=True)

    def _scored(self, data: SensorData, state: TaskState | None, ratios: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """Row scores, and with ``ratios`` the per-sensor ratios, a block of windows at a time."""
        if not self.calibrated:
            raise ValueError("the detector is not calibrated to a facility yet")
        w, span = self.spec.window, self.detection.span(self.spec.window)
        fast = self.fast_spread is not None and self.fast_weight is not None and self.detection.fast is not None
        spans = self.detection.spans(w) if fast else (span,)
        reads = self._fast_reads(self.scaler)
        view = ScaledWindows([(data.values, self.scaler)], w)
        per_window = np.empty(len(view))
        by_sensor = np.full((data.rows, view.shape[1]), np.nan) if ratios else None
        for lo, looks in smoothed_blocks(self.model, view, spans, state):
            slow = np.abs(looks[0]) / self.spread
            quick = np.abs(looks[1]) / self.fast_spread * reads if fast else None  # a sensor it does not read: 0
            both = combined_ratios(slow, quick, self.fast_weight)
            per_window[lo : lo + len(both)] = top_mean(both, self.detection.top)
            if by_sensor is not None:
                by_sensor[w - 1 + lo : w - 1 + lo + len(both)] = both
        per_window[: span - 1] = np.nan  # smoothed over fewer windows: not judged
        if by_sensor is not None:
            by_sensor[: w + span - 2] = np.nan
        return row_scores(per_window, w, data.rows), by_sensor

    def lookback(self) -> int:
        """Rows before a row that its alarm depends on: a window, the smoothing span and the
        persistence rule. Scoring a file's tail with this many rows before it flags the tail
        exactly as scoring the whole file does (the detector reads only the past)."""
        return self.spec.window + self.detection.span(self.spec.window) + self.detection.persistence

    def predict(self, data: SensorData, state: TaskState | None = None) -> np.ndarray:
        """True for rows in alarm."""
        return flag_rows(self.decision_function(data, state), self.threshold, self.detection.persistence)


@dataclass
class ScoreResult:
    scores: np.ndarray  # per row, NaN before the first full window
    flags: np.ndarray  # bool per row
    events: list[tuple[int, int]]  # (start, end) rows, end exclusive
    threshold: float
    metrics: dict  # pointwise / failures / label_events, where labels exist


def score_data(detector: Detector, data: SensorData, state: TaskState | None = None) -> ScoreResult:
    """Score every row of ``data`` (its sensors must be the detector's, in order), with events
    and, where the file has labels, the figures.

    An uncalibrated detector (a federation's global model) is first calibrated on ``data``'s
    own normal rows, as each facility does with the model it receives.
    """
    if list(data.sensors) != list(detector.sensors):
        raise ValueError("the data's sensors differ from the model's; load it with sensors=detector.sensors")
    w = detector.spec.window
    if data.rows < w:
        raise ValueError(f"{data.path.name} has {data.rows} rows; scoring needs at least {w}")
    if not detector.calibrated:
        detector = detector.calibrate(data, state)
    scores = detector.decision_function(data, state)
    flags = flag_rows(scores, detector.threshold, detector.detection.persistence)
    events = runs(flags, detector.detection.merge_gap)
    metrics: dict = {}
    if data.labels is not None:
        metrics["pointwise"] = pointwise_metrics(data.labels, flags, scores)
        metrics["label_events"] = label_event_metrics(data.labels, events)
    if data.status is not None:
        metrics["failures"] = failure_metrics(data.status, data.timestamps, events, w, detector.detection)
    return ScoreResult(scores, flags, events, detector.threshold, metrics)
