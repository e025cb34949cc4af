"""From the network's reconstructions to alarms (core layer; numpy).

The rule, chosen on SKAB (docs/BENCHMARKS.md, "Choosing the detector") and shown to users
through ``pumpfl score`` and the GUI:

- residuals: for the window ending at row ``t``, each sensor's newest reading minus its
  reconstruction (``core/training.newest_residuals``), so row ``t`` is judged from readings up
  to ``t`` only and an alarm can be raised as the reading arrives;
- smoothing: each sensor's residuals are averaged over the last ``smooth`` rows (one window
  by default): a sensor that sits off its usual value stands out, one that flickers does not;
- per sensor against its own spread: each smoothed residual is divided by its root mean
  square over the training windows whose smoothing span is full (the first windows of a
  stretch average fewer residuals and are noisier);
- score: the mean of the ``top`` largest of those ratios;
- threshold: the ``quantile`` of those training windows' scores times ``factor`` (with a short
  history, 1 and 5: neighbouring windows share most of their rows, so a few hundred of them
  show far less of a sensor's range than the minutes after);
- a faster look (short history): the same residuals smoothed over the last ``fast`` of the
  span (24 of a 60-row window), each sensor judged by its level (one judged by its change over
  the last window already looks at the last minute) against its own spread at that span, judged
  against ``fast_factor`` (2.75; 2.0 for a model that learned from a federation,
  ``core/data_fit.SHORT_HISTORY_SHARED_MODEL``) times the highest of its training scores. A
  row alarms when either look is over its own threshold: the long one keeps a small persistent
  shift, the fast one catches a big change within seconds instead of a minute. Both go into one
  score (the fast ratios weighted so that its threshold is the long one's) and one threshold;
- a row is flagged once ``persistence`` consecutive scores exceed the threshold;
- flagged rows closer than ``merge_gap`` rows form one event; an event's start is its alarm.

The settings follow how much normal history calibrates them (``core/data_fit.detection_for``):

- a short history (fewer clean training windows than 20 window lengths; SKAB's 400 training
  seconds): smoothing over one window and over 0.4 of it, the single sensor furthest off, five
  (slow look) and 2.75 (fast look) times the highest training score, and sensors that wander in
  the training rows (a temperature warming up) judged by their change over the last window —
  chosen on SKAB;
- a long history (days of readings; the pump schema's weeks): smoothing over three windows,
  the mean of the four sensors furthest off, the 0.995 quantile of the training scores (normal
  rows can hold the start of an unlabelled degradation), every sensor by its level — chosen on
  the pump data, where slow drifts are what comes before a failure (no fast look).

How alarms are judged (failures caught, lead times, false alarms per day, SKAB's figures) is
``core/metrics.py``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np


@dataclass(frozen=True)
class DetectionSettings:
    quantile: float = 1.0
    factor: float = 5.0
    persistence: int = 1
    merge_gap: int = 60
    horizon_hours: float = 24.0  # pump schema: an alarm this long before a failure caught it
    smooth: int | None = None  # rows each sensor's residuals are averaged over; None: one window
    top: int = 1  # the score is the mean of this many sensors' largest deviations
    wander: bool = True  # sensors that wander in the training rows are judged by their change
    fast: float | None = 0.4  # the fast look's smoothing, a fraction of ``span``; None: no fast look
    fast_factor: float = 2.75  # the fast look's threshold: this times its highest training score
    # The fast look reads only the sensors judged by their level: one judged by its change over the
    # last window is already a look at the last minute. True: every sensor (models saved before).
    fast_reads_changes: bool = False

    def __post_init__(self) -> None:
        if not (0 < self.quantile <= 1) or not (self.factor > 0) or not (self.fast_factor > 0):
            raise ValueError("the threshold's quantile must be in (0, 1] and its factors positive")
        if self.fast is not None and not (0 < self.fast < 1):
            raise ValueError("the fast look's span must be a fraction of the smoothing span, between 0 and 1")
        if self.persistence < 1 or self.merge_gap < 0 or self.top < 1:
            raise ValueError("persistence and top must be at least 1, merge gap at least 0")
        if self.smooth is not None and self.smooth < 1:
            raise ValueError("smoothing must cover at least 1 row")

    def span(self, window: int) -> int:
        return self.smooth if self.smooth is not None else window

    def spans(self, window: int) -> tuple[int, ...]:
        """The smoothing spans in rows: the slow look's, then the fast look's if there is one."""
        span = self.span(window)
        return (span,) if self.fast is None else (span, max(1, round(self.fast * span)))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> DetectionSettings:
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        known.setdefault("fast", None)  # saved before the fast look existed: scored as it was calibrated
        known.setdefault("fast_reads_changes", True)  # saved while the fast look read every sensor
        return cls(**known)


def smooth_residuals(residuals: np.ndarray, span: int) -> np.ndarray:
    """Causal mean of each column over the last ``span`` rows (fewer at the start), float64."""
    r = np.asarray(residuals, dtype=np.float64)
    c = np.cumsum(np.vstack([np.zeros((1, r.shape[1])), r]), axis=0)
    end = np.arange(1, len(r) + 1)
    start = np.maximum(end - span, 0)
    return (c[end] - c[start]) / (end - start)[:, None]


def residual_scale(smoothed_train: np.ndarray) -> np.ndarray:
    """Each sensor's spread: the root mean square of its smoothed training residuals."""
    return spread_from_sums(np.square(np.asarray(smoothed_train, dtype=np.float64)).sum(axis=0), len(smoothed_train))


def spread_from_sums(sum_squares: np.ndarray, count: int) -> np.ndarray:
    """:func:`residual_scale` from each sensor's sum of squared smoothed residuals over ``count``
    windows (summed a block at a time over a long file)."""
    if count == 0:
        raise ValueError("no training windows to measure the residuals' spread on")
    return np.maximum(np.sqrt(sum_squares / count), 1e-6)  # a sensor reconstructed perfectly still has a finite spread


def top_mean(ratios: np.ndarray, top: int) -> np.ndarray:
    """Per window: the mean of the ``top`` largest |smoothed residual| / spread ratios."""
    k = min(top, ratios.shape[1])
    return np.partition(ratios, ratios.shape[1] - k, axis=1)[:, -k:].mean(axis=1)


def threshold_from_scores(train_scores: np.ndarray, settings: DetectionSettings) -> float:
    if len(train_scores) == 0:
        raise ValueError("no training scores to set a threshold from")
    return float(np.quantile(train_scores, settings.quantile) * settings.factor)


def fast_weight(slow_train: np.ndarray, fast_train: np.ndarray, settings: DetectionSettings) -> float:
    """What the fast look's scores are multiplied by so that its threshold (``fast_factor`` times
    the ``quantile`` of its training scores) lands on the slow look's: one score, one threshold."""
    fast_threshold = threshold_from_scores(fast_train, replace(settings, factor=settings.fast_factor))
    return threshold_from_scores(slow_train, settings) / max(fast_threshold, 1e-12)


def combined_ratios(slow: np.ndarray, fast: np.ndarray | None, weight: float | None) -> np.ndarray:
    """Per window and sensor, the larger of the slow look's ratio and the weighted fast one's."""
    return slow if fast is None or weight is None else np.maximum(slow, weight * fast)


def row_scores(per_window: np.ndarray, window: int, rows: int) -> np.ndarray:
    """Per-row score: the score of the window ending at that row; NaN for the first rows."""
    scores = np.full(rows, np.nan)
    scores[window - 1 : window - 1 + len(per_window)] = per_window
    return scores


def flag_rows(scores: np.ndarray, threshold: float, persistence: int = 1) -> np.ndarray:
    """True where the last ``persistence`` scores (this row's included) all exceed the threshold."""
    above = np.nan_to_num(scores, nan=-np.inf) > threshold
    if persistence <= 1:
        return above
    run = np.concatenate(([0], np.cumsum(above, dtype=np.int64)))
    flags = np.zeros_like(above)
    flags[persistence - 1 :] = (run[persistence:] - run[:-persistence]) == persistence
    return flags


def runs(mask: np.ndarray, merge_gap: int = 0) -> list[tuple[int, int]]:
    """(start, end) row pairs, end exclusive, of True runs; runs closer than merge_gap merge."""
    padded = np.concatenate(([False], mask.astype(bool), [False]))
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    pairs = list(zip(edges[0::2].tolist(), edges[1::2].tolist()))
    if merge_gap <= 0 or not pairs:
        return pairs
    merged = [pairs[0]]
    for s, e in pairs[1:]:
        if s - merged[-1][1] < merge_gap:
            merged[-1] = (merged[-1][0], e)
        else:
            merged.append((s, e))
    return merged
