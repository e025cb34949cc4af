"""Scaling and windowing of sensor rows (core layer; numpy + scikit-learn).

Windows are never materialised as one big array: :func:`window_view` is a strided view
(``numpy.lib.stride_tricks.sliding_window_view``) and batches are gathered from it by index.
:class:`ScaledWindows` goes one step further for a facility's rows: each batch is scaled as it
is gathered, so a facility holds one copy of its readings (float32) and nothing more, whatever
its length; scalers are fitted and rows scaled a chunk at a time for the same reason.
"""

from __future__ import annotations

import mmap
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

CHUNK_ROWS = 1 << 16  # rows scaled or summed at a time: 65,536 (27 MB of float64 for 52 sensors)


def release(values: np.ndarray, lo: int = 0, hi: int | None = None) -> None:
    """Let the operating system take back the memory of rows ``lo:hi`` of ``values`` when they
    are mapped from a file (a long file's rows, :mod:`~pumpfl_gui.core.rows_cache`): they stay
    in its file cache and are read again from there when next needed, so a pass over a long
    file never holds all of it. Rows in ordinary memory are left alone."""
    mapping = getattr(values, "_mmap", None)
    if mapping is None or not hasattr(mmap, "MADV_DONTNEED") or not values.flags.c_contiguous:
        return
    row = values.strides[0]
    first = values.ctypes.data - np.frombuffer(mapping, np.uint8, count=1).ctypes.data  # where row 0 lies in the mapping
    start = first + lo * row
    stop = first + (len(values) if hi is None else min(hi, len(values))) * row
    start = -(-start // mmap.PAGESIZE) * mmap.PAGESIZE  # whole pages inside the range only
    stop = stop // mmap.PAGESIZE * mmap.PAGESIZE
    if stop > start:
        mapping.madvise(mmap.MADV_DONTNEED, start, stop - start)


def _file_position(values: np.ndarray) -> int | None:
    """Where row 0 of a memory-mapped ``values`` lies in its file; None for ordinary memory."""
    mapping, name = getattr(values, "_mmap", None), getattr(values, "filename", None)
    if mapping is None or name is None or not values.flags.c_contiguous:
        return None
    mapped_from = values.offset - values.offset % mmap.ALLOCATIONGRANULARITY  # np.memmap maps whole granules
    return mapped_from + values.ctypes.data - np.frombuffer(mapping, np.uint8, count=1).ctypes.data


def read_windows(values: np.ndarray, starts: np.ndarray, window: int) -> np.ndarray | None:
    """Windows of a memory-mapped ``values`` at ``starts``, read from its file: (len(starts),
    sensors, window). Touching a mapped file at random would map its neighbouring pages into
    the process too (the kernel's read-around), about 400 KB a window; reading copies only the
    window. None when ``values`` lies in ordinary memory."""
    begin = _file_position(values)
    if begin is None:
        return None
    row = values.strides[0]
    out = np.empty((len(starts), window, values.shape[1]), dtype=values.dtype)
    with open(values.filename, "rb") as fh:
        for i, s in enumerate(starts.tolist()):
            fh.seek(begin + s * row)
            if fh.readinto(memoryview(out[i]).cast("B")) != out[i].nbytes:
                raise OSError(f"{values.filename} is shorter than its rows")
    return out.transpose(0, 2, 1)


def spread_rows(values: np.ndarray, most: int) -> np.ndarray:
    """At most ``most`` rows of ``values``, evenly spread; read from the file when it is mapped
    (every 200th row of a mapped file would map all of it, the kernel reading around each)."""
    rows = np.arange(0, len(values), max(1, -(-len(values) // most)))
    read = read_windows(values, rows, 1)
    return values[rows] if read is None else read[:, :, 0]


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
    def fit(cls, values: np.ndarray, wander_below: float | None = None, span: int = 32, rows: np.ndarray | None = None) -> Scaler:
        """Fit on ``values`` (only the ``rows`` marked True, when given), a chunk at a time;
        with ``wander_below``, sensors whose :func:`step_ratio` is below it become relative."""
        from sklearn.preprocessing import StandardScaler  # imported here: scikit-learn takes seconds to load

        levels, steps = StandardScaler(), StandardScaler()
        previous = None  # the last chosen row of the chunk before: steps run across chunks
        for lo in range(0, len(values), CHUNK_ROWS):
            chunk = values[lo : lo + CHUNK_ROWS]
            if rows is not None:
                chunk = chunk[rows[lo : lo + CHUNK_ROWS]]
            if not len(chunk):
                continue
            levels.partial_fit(chunk)
            joined = chunk if previous is None else np.concatenate([previous, chunk])
            if len(joined) > 1:
                steps.partial_fit(np.diff(joined.astype(np.float64), axis=0))
            previous = chunk[-1:].copy()
            release(values, lo, lo + CHUNK_ROWS)
        if not hasattr(levels, "mean_"):
            raise ValueError("cannot fit a scaler on zero rows")
        # A sensor that is constant in the training rows has scale 1 (StandardScaler's rule),
        # so any later movement still shows up in the reconstruction error.
        relative = None
        if wander_below is not None and levels.n_samples_seen_ > 2:
            relative = _ratio(np.sqrt(steps.var_), np.sqrt(levels.var_)) < wander_below
        return cls(np.asarray(levels.mean_, dtype=np.float64), np.asarray(levels.scale_, dtype=np.float64), relative, span)

    def transform(self, values: np.ndarray) -> np.ndarray:
        """``values`` scaled, float32, a chunk at a time."""
        out = np.empty(values.shape, dtype=np.float32)
        for lo in range(0, len(values), CHUNK_ROWS):
            hi = min(lo + CHUNK_ROWS, len(values))
            out[lo:hi] = self.rows(values, lo, hi)
        return out

    def rows(self, values: np.ndarray, lo: int, hi: int) -> np.ndarray:
        """Rows ``lo:hi`` of ``values`` scaled (float64): a relative sensor's trailing mean
        reads the rows before ``lo`` too, so any slice equals the same rows scaled whole."""
        context = min(lo, self.span - 1) if self.relative is not None and self.relative.any() else 0
        z = (values[lo - context : hi] - self.mean) / self.scale
        if self.relative is not None and self.relative.any():
            z[:, self.relative] -= trailing_mean(z[:, self.relative], self.span)
        return z[context:]

    def windows(self, values: np.ndarray, starts: np.ndarray, window: int) -> np.ndarray:
        """Windows of ``values`` at ``starts``, scaled: (len(starts), sensors, window) float64."""
        raw = read_windows(values, starts, window)
        raw = sliding_window_view(values, window, axis=0)[starts] if raw is None else raw
        z = (raw - self.mean[:, None]) / self.scale[:, None]
        if self.relative is None or not self.relative.any():
            return z
        rel, span = np.flatnonzero(self.relative), self.span
        far = starts >= span - 1  # a full span of rows before the window's first row
        if far.any():
            longer = sliding_window_view(values[:, rel], window + span - 1, axis=0)[starts[far] - (span - 1)]
            longer = (longer - self.mean[rel, None]) / self.scale[rel, None]
            c = np.concatenate([np.zeros(longer.shape[:2] + (1,)), np.cumsum(longer, axis=2)], axis=2)
            z[np.ix_(np.flatnonzero(far), rel)] = longer[:, :, span - 1 :] - (c[:, :, span:] - c[:, :, :window]) / span
        for i in np.flatnonzero(~far):
            s = int(starts[i])
            z[i, rel] = self.rows(values, s, s + window)[:, rel].T
        return z

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
    return _ratio(np.diff(v, axis=0).std(axis=0), v.std(axis=0))


def _ratio(steps: np.ndarray, spread: np.ndarray) -> np.ndarray:
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


class ScaledWindows:
    """Every stride-1 window of a facility's rows — one file or several end to end — each row
    scaled by its own file's scaler as a batch is gathered: it indexes like :func:`window_view`
    of the scaled rows (``view[starts]``, shape ``(windows, sensors, window)``) without keeping
    them, so a facility's memory is its readings. Indexing returns a float32 copy.
    """

    ndim = 3
    dtype = np.dtype(np.float32)

    def __init__(self, parts: Sequence[tuple[np.ndarray, Scaler]], window: int) -> None:
        self._parts = [(values, scaler) for values, scaler in parts]
        self.window = window
        self._starts = np.cumsum([0] + [len(v) for v, _ in self._parts])  # first row of each file
        self._released = 0  # rows before this were given back by a pass (release)
        sensors = self._parts[0][0].shape[1]
        self.shape = (max(int(self._starts[-1]) - window + 1, 0), sensors, window)

    def __len__(self) -> int:
        return self.shape[0]

    def release(self, below: int | None = None) -> None:
        """Give back the memory of the rows before row ``below`` (all rows by default) of
        files mapped from the rows cache (:func:`release`); a pass through the rows calls it as
        it goes, so only what it passed since the last call is given back."""
        start, self._released = (0, 0) if below is None else (self._released, max(below, self._released))
        for (values, _), first in zip(self._parts, self._starts[:-1]):
            hi = None if below is None else max(self._released - int(first), 0)
            release(values, max(start - int(first), 0), hi)

    def scaled_rows(self, lo: int, hi: int) -> np.ndarray:
        """Rows ``lo:hi`` of all files end to end, scaled (float32)."""
        out = np.empty((hi - lo, self.shape[1]), dtype=np.float32)
        for (values, scaler), first in zip(self._parts, self._starts[:-1]):
            a, b = max(lo, first), min(hi, first + len(values))
            if a < b:
                out[a - lo : b - lo] = scaler.rows(values, a - first, b - first)
        return out

    def __getitem__(self, index) -> np.ndarray:
        if isinstance(index, slice):
            return self[np.arange(*index.indices(len(self)))]
        starts = np.asarray(index, dtype=np.int64)
        if starts.ndim == 0:
            return self[starts[None]][0]
        n, w = len(starts), self.window
        if n and (starts.min() < 0 or starts.max() >= len(self)):
            raise IndexError("window start out of range")
        if n > 1 and starts[-1] - starts[0] == n - 1 and bool((np.diff(starts) == 1).all()):
            rows = self.scaled_rows(int(starts[0]), int(starts[-1]) + w)  # a run of neighbours
            return np.ascontiguousarray(sliding_window_view(rows, w, axis=0))
        out = np.empty((n, self.shape[1], w), dtype=np.float32)
        part = np.searchsorted(self._starts, starts, side="right") - 1
        alone = starts + w <= self._starts[part + 1]  # windows inside one file
        for p in np.unique(part[alone]):
            chosen = np.flatnonzero(alone & (part == p))
            values, scaler = self._parts[p]
            out[chosen] = scaler.windows(values, starts[chosen] - self._starts[p], w)
        for i in np.flatnonzero(~alone):  # a window across two files: each row by its own file
            out[i] = self.scaled_rows(int(starts[i]), int(starts[i]) + w).T
        return out


def clean_window_starts(ok_rows: np.ndarray, window: int, stride: int = 1) -> np.ndarray:
    """Start rows of windows (every ``stride``-th) whose rows are all ``ok_rows``."""
    n = ok_rows.shape[0] - window + 1
    if n <= 0:
        return np.empty(0, dtype=np.int64)
    bad = np.concatenate(([0], np.cumsum(~ok_rows, dtype=np.int64)))
    all_ok = (bad[window : window + n] - bad[:n]) == 0
    starts = np.flatnonzero(all_ok)
    return starts[::stride] if stride > 1 else starts


def gather(view: np.ndarray | ScaledWindows, starts: np.ndarray) -> np.ndarray:
    """A contiguous float32 batch (len(starts), sensors, window) copied from the view."""
    return np.ascontiguousarray(view[starts])
