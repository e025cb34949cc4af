"""Long series drawn by their envelope: each stretch of rows its lowest and highest reading
(gui layer, numpy only; run in a worker thread or on the window's, before drawing).

pyqtgraph thins what it draws by itself (peak downsampling, clip to view), but it is handed
every point first: 20 million of them take seconds to pass on the window's thread. A few
hundred thousand points of envelope look the same at any zoom a screen can show.
"""

from __future__ import annotations

import numpy as np

from ...core.windows import CHUNK_ROWS, release


def envelope(
    times: np.ndarray | None, values: np.ndarray, most: int, sensors: int | None = None
) -> tuple[np.ndarray | None, np.ndarray]:
    """At most ``most`` rows of the first ``sensors`` columns of ``values`` (all by default)
    that draw like all of them: each stretch of rows becomes its lowest and its highest reading
    per sensor, at the stretch's first time. A long file is gone through a chunk at a time,
    each chunk given back when done (core.windows.release)."""
    rows, k = len(values), values.shape[1] if sensors is None else sensors
    if rows <= most:
        return times, np.array(values[:, :k])
    step = -(-2 * rows // most)
    starts = np.arange(0, rows, step)
    thin = np.empty((2 * len(starts), k), dtype=values.dtype)
    chunk = max(1, CHUNK_ROWS // step) * step  # whole stretches a chunk
    for lo in range(0, rows, chunk):
        part = values[lo : lo + chunk, :k]
        at = np.arange(0, len(part), step)
        first = lo // step
        thin[2 * first : 2 * (first + len(at)) : 2] = np.fmin.reduceat(part, at, axis=0)
        thin[2 * first + 1 : 2 * (first + len(at)) : 2] = np.fmax.reduceat(part, at, axis=0)
        release(values, lo, lo + chunk)
    return (None if times is None else np.repeat(times[starts], 2)), thin
