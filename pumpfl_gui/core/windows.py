"""Scaling and windowing of sensor rows (core layer; numpy + scikit-learn).

Windows are never materialised as one big array: :func:`window_view` is a strided view
(``numpy.lib.stride_tricks.sliding_window_view``) and batches are gathered from it by index,
so a 77,000-row facility costs no more memory than its rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


@dataclass(frozen=True)
class Scaler:
    """Per-sensor standardisation fitted on training rows only.

    A sensor marked ``relative`` wanders slowly (a temperature warming through the day): its
    level in the training rows says little about its level later, so it is judged by how it
    moved over the last ``span`` rows instead — each standardised reading minus the mean of
    the ``span`` readings up to it (causal; the first rows use what came before them).
    """

    mean: np.ndarray  # float64 (sensors,)
    scale: np.ndarray  # float64 (sensors,), never zero
    relative: np.ndarray | None = None  # bool (sensors,); None: every sensor by its level
    span: int = 32

    @classmethod
    def fit(cls, values: np.ndarray, wander_below: float | None = None, span: int = 32) -> Scaler:
        """Fit on ``values``; with ``wander_below``, sensors whose :func:`step_ratio` is below it
        become relative."""
        if len(values) == 0:
            raise ValueError("cannot fit a scaler on zero rows")
        from sklearn.preprocessing import StandardScaler  # imported here: scikit-learn takes seconds to load

        sk = StandardScaler().fit(values)
        # A sensor that is constant in the training rows has scale 1 (StandardScaler's rule),
        # so any later movement still shows up in the reconstruction error.
        relative = None
        if wander_below is not None and len(values) > 2:
            relative = step_ratio(values) < wander_below
        return cls(np.asarray(sk.mean_, dtype=np.float64), np.asarray(sk.scale_, dtype=np.float64), relative, span)

    def transform(self, values: np.ndarray) -> np.ndarray:
        z = (values - self.mean) / self.scale
        if self.relative is not None and self.relative.any():
            z[:, self.relative] -= trailing_mean(z[:, self.relative], self.span)
        return z.astype(np.float32)

    def to_dict(self) -> dict:
        d = {"mean": self.mean.tolist(), "scale": self.scale.tolist()}
        if self.relative is not None:
            d.update(relative=self.relative.tolist(), span=self.span)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Scaler:
        mean = np.asarray(d["mean"], dtype=np.float64)
        scale = np.asarray(d["scale"], dtype=np.float64)
        relative = np.asarray(d["relative"], dtype=bool) if d.get("relative") is not None else None
        span = int(d.get("span", 32))
        if mean.shape != scale.shape or mean.ndim != 1 or not np.all(scale > 0):
            raise ValueError("scaler statistics are malformed")
        if (relative is not None and relative.shape != mean.shape) or span < 1:
            raise ValueError("scaler statistics are malformed")
        return cls(mean=mean, scale=scale, relative=relative, span=span)


def step_ratio(values: np.ndarray) -> np.ndarray:
    """Per sensor: spread of the row-to-row steps over the spread of the readings.

    About 1.4 for a reading that fluctuates around a level, well below 1 for one that wanders
    smoothly (von Neumann's ratio, as a standard deviation). A constant sensor gives 1.4.
    """
    v = np.asarray(values, dtype=np.float64)
    spread = v.std(axis=0)
    steps = np.diff(v, axis=0).std(axis=0)
    return np.where(spread > 0, steps / np.where(spread > 0, spread, 1.0), np.sqrt(2.0))


def trailing_mean(z: np.ndarray, span: int) -> np.ndarray:
    """Mean of each row and the ``span - 1`` rows before it (fewer at the start), per column."""
    c = np.cumsum(np.vstack([np.zeros((1, z.shape[1])), z]), axis=0)
    end = np.arange(1, len(z) + 1)
    start = np.maximum(end - span, 0)
    return (c[end] - c[start]) / (end - start)[:, None]


def window_view(scaled: np.ndarray, window: int) -> np.ndarray:
    """All stride-1 windows as a read-only view of shape (rows - window + 1, sensors, window).

    Channels come first, as ``torch.nn.Conv1d`` expects.
    """
    if scaled.shape[0] < window:
        return np.empty((0, scaled.shape[1], window), dtype=scaled.dtype)
    return sliding_window_view(scaled, window, axis=0)


def clean_window_starts(ok_rows: np.ndarray, window: int, stride: int = 1) -> np.ndarray:
    """Start rows of windows (every ``stride``-th) whose rows are all ``ok_rows``."""
    n = ok_rows.shape[0] - window + 1
    if n <= 0:
        return np.empty(0, dtype=np.int64)
    bad = np.concatenate(([0], np.cumsum(~ok_rows, dtype=np.int64)))
    all_ok = (bad[window : window + n] - bad[:n]) == 0
    starts = np.flatnonzero(all_ok)
    return starts[::stride] if stride > 1 else starts


def gather(view: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """A contiguous float32 batch (len(starts), sensors, window) copied from the view."""
    return np.ascontiguousarray(view[starts])
