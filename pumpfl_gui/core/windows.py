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
    """Per-sensor standardisation fitted on training rows only."""

    mean: np.ndarray  # float64 (sensors,)
    scale: np.ndarray  # float64 (sensors,), never zero

    @classmethod
    def fit(cls, values: np.ndarray) -> "Scaler":
        if len(values) == 0:
            raise ValueError("cannot fit a scaler on zero rows")
        from sklearn.preprocessing import StandardScaler  # imported here: scikit-learn takes seconds to load

        sk = StandardScaler().fit(values)
        # A sensor that is constant in the training rows has scale 1 (StandardScaler's rule),
        # so any later movement still shows up in the reconstruction error.
        return cls(mean=np.asarray(sk.mean_, dtype=np.float64), scale=np.asarray(sk.scale_, dtype=np.float64))

    def transform(self, values: np.ndarray) -> np.ndarray:
        return ((values - self.mean) / self.scale).astype(np.float32)

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "Scaler":
        mean = np.asarray(d["mean"], dtype=np.float64)
        scale = np.asarray(d["scale"], dtype=np.float64)
        if mean.shape != scale.shape or mean.ndim != 1 or not np.all(scale > 0):
            raise ValueError("scaler statistics are malformed")
        return cls(mean=mean, scale=scale)


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
