"""Statistics facilities can agree on without showing a reading: aggregates and their
pooling (core).

*Shared scaling.* Each facility summarises its training rows per sensor — how many, their mean
and variance, and the same for the row-to-row steps (within each file) — and the coordinator
pools the summaries. The pooled mean and variance are exactly those of all facilities' rows
together (the parallel-variance identity of Chan, Golub and LeVeque, 1979), so the shared
scaler is the one a single site holding everything would fit, built from aggregates only.

*Shared threshold.* Each facility sends its window errors' quantiles at a few fixed
probabilities. The shared threshold is the detection quantile of the mixture of the facilities'
distributions, each weighted by its window count and read between its quantiles linearly.

*Bounded and robust.* Summaries come from other sites: each is checked (finite, non-negative
spreads, counts within what the facility registered, magnitudes no sensor reaches), and
pooling keeps one facility from moving the result without bound. With three facilities or
more, each one's mean and spread are clipped to within ``POOL_REACH`` typical spreads of the
facilities' median (honest sites' levels differ by a few spreads: no clipping happens), and the
shared threshold stays within ``THRESHOLD_REACH`` times the facilities' median own threshold.
With two, neither can be outvoted; the threshold's reference is then the lower of the two own
thresholds, so a facility can make alarms more frequent (which people see) but never silence
them by raising the threshold beyond ``THRESHOLD_REACH`` times the other's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .windows import Scaler

# Probabilities at which a facility reports its errors: dense near the detection quantiles in use.
SKETCH_PROBS = (0.5, 0.9, 0.95, 0.98, 0.99, 0.995, 0.998, 0.999, 1.0)
# Magnitudes no sensor reading, spread or window score reaches (pooling them cannot overflow).
MAX_MAGNITUDE = 1e12
MAX_COUNT = 10**9  # rows or windows of one facility
# Measured on the default data's five facilities: means at most 3.3 typical spreads from the
# median facility's, spreads at most 2.0 times the typical one, own thresholds within 1.3 times
# of each other (round 1). The reaches below leave honest pooling untouched there.
POOL_REACH = 100.0  # a facility's mean within this many typical spreads of the median; its spread at most this many
THRESHOLD_REACH = 10.0  # the shared threshold within this factor of the median facility's own


def _moments(blocks: Sequence[np.ndarray]) -> tuple[int, np.ndarray, np.ndarray]:
    """(count, mean, population variance) per column over the rows of all ``blocks``."""
    blocks = [np.asarray(b, dtype=np.float64) for b in blocks if len(b)]
    if not blocks:
        raise ValueError("no rows to summarise")
    return _pool([(len(b), b.mean(axis=0), b.var(axis=0)) for b in blocks])


def _pool(parts: Sequence[tuple[int, np.ndarray, np.ndarray]]) -> tuple[int, np.ndarray, np.ndarray]:
    n = sum(p[0] for p in parts)
    mean = sum(p[0] * p[1] for p in parts) / n
    var = sum(p[0] * (p[2] + (p[1] - mean) ** 2) for p in parts) / n
    return n, mean, var


def scaling_stats(files: Sequence[np.ndarray]) -> dict:
    """One facility's summary of its training rows (one array of rows per file).

    ``within_var`` is the row-weighted mean of each file's own variance: the spread a sensor
    shows inside one run, without the differences between runs' levels. Whether a sensor
    wanders is judged against it, as :func:`~.windows.step_ratio` judges one file.
    """
    n, mean, var = _moments(files)
    used = [np.asarray(f, dtype=np.float64) for f in files if len(f)]
    within = sum(len(f) * f.var(axis=0) for f in used) / n
    steps = [np.diff(f, axis=0) for f in used if len(f) > 1]
    m, step_mean, step_var = _moments(steps) if steps else (0, np.zeros_like(mean), np.zeros_like(mean))
    return {
        "rows": n,
        "mean": mean.tolist(),
        "var": var.tolist(),
        "within_var": within.tolist(),
        "steps": m,
        "step_mean": step_mean.tolist(),
        "step_var": step_var.tolist(),
    }


def check_stats(stats: dict, sensors: int, max_rows: int | None = None) -> None:
    """Raise ValueError unless ``stats`` is a well-formed, bounded summary of ``sensors``
    columns (of at most ``max_rows`` rows, when given)."""
    try:
        rows, steps = int(stats["rows"]), int(stats["steps"])
        arrays = [np.asarray(stats[k], dtype=np.float64) for k in ("mean", "var", "step_mean", "step_var", "within_var")]
    except (KeyError, TypeError, ValueError, OverflowError):
        raise ValueError("the scaling summary is malformed") from None
    if rows < 1 or steps < 0 or any(a.shape != (sensors,) or not np.all(np.isfinite(a)) for a in arrays):
        raise ValueError("the scaling summary is malformed")
    if np.any(arrays[1] < 0) or np.any(arrays[3] < 0) or np.any(arrays[4] < 0):
        raise ValueError("the scaling summary has a negative variance")
    limit = min(MAX_COUNT, max_rows) if max_rows is not None else MAX_COUNT
    if rows > limit or steps > rows:
        raise ValueError(f"the scaling summary counts {rows:,} rows and {steps:,} steps, more than the facility has ({limit:,})")
    if any(np.any(np.abs(a) > MAX_MAGNITUDE) for a in arrays[::2]) or any(np.any(a > MAX_MAGNITUDE**2) for a in arrays[1::2]):
        raise ValueError(f"the scaling summary holds values beyond {MAX_MAGNITUDE:g}, which no sensor reads")


def _clipped_parts(stats: Sequence[dict]) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(rows, mean, variance) per facility; with 3 or more, each within reach of the median's."""
    parts = [(int(s["rows"]), np.asarray(s["mean"], dtype=np.float64), np.asarray(s["var"], dtype=np.float64)) for s in stats]
    if len(parts) < 3:
        return parts
    centre = np.median([p[1] for p in parts], axis=0)
    typical = np.median([np.sqrt(p[2]) for p in parts], axis=0)
    # A sensor the median facility reads as constant: reach measured against its level instead.
    reach = POOL_REACH * np.where(typical > 0, typical, np.maximum(np.abs(centre), 1.0))
    return [(n, np.clip(m, centre - reach, centre + reach), np.minimum(v, reach**2)) for n, m, v in parts]


def pool_scaler(stats: Sequence[dict], wander_below: float | None = None, span: int = 32) -> Scaler:
    """The scaler of all facilities' training rows together, from their summaries.

    As :meth:`Scaler.fit`: a sensor without spread gets scale 1, and with ``wander_below`` a
    sensor whose pooled step ratio — steps against the spread within runs — is below it is
    judged by its change.
    """
    if not stats:
        raise ValueError("no facility summaries to pool")
    _, mean, var = _pool(_clipped_parts(stats))
    spread = np.sqrt(var)
    scale = np.where(spread > 0, spread, 1.0)
    relative = None
    with_steps = [s for s in stats if int(s["steps"]) > 0]
    if wander_below is not None and with_steps:
        _, _, step_var = _pool([(int(s["steps"]), np.asarray(s["step_mean"]), np.asarray(s["step_var"])) for s in with_steps])
        rows = sum(int(s["rows"]) for s in stats)
        within = np.sqrt(sum(int(s["rows"]) * np.asarray(s["within_var"]) for s in stats) / rows)
        ratio = np.where(within > 0, np.sqrt(step_var) / np.where(within > 0, within, 1.0), np.sqrt(2.0))
        relative = ratio < wander_below
    return Scaler(mean, scale, relative, span)


def error_sketch(errors: np.ndarray, rule: tuple[float, float] = (1.0, 1.0), probs: Sequence[float] = SKETCH_PROBS) -> dict:
    """A facility's training scores as their count and quantiles at ``probs``, with its
    threshold rule (quantile, factor: ``DetectionSettings``)."""
    errors = np.asarray(errors, dtype=np.float64)
    if len(errors) == 0:
        raise ValueError("no window errors to summarise")
    sketch = {"n": int(len(errors)), "p": [float(p) for p in probs], "v": np.quantile(errors, probs).tolist()}
    sketch["rule"] = [float(rule[0]), float(rule[1])]
    return sketch


def check_sketch(sketch: dict, max_n: int | None = None) -> None:
    """Raise ValueError unless ``sketch`` is a well-formed, bounded error summary (of at most
    ``max_n`` windows, when given)."""
    try:
        n, p, v = int(sketch["n"]), np.asarray(sketch["p"], dtype=np.float64), np.asarray(sketch["v"], dtype=np.float64)
    except (KeyError, TypeError, ValueError, OverflowError):
        raise ValueError("the error summary is malformed") from None
    if n < 1 or p.ndim != 1 or p.shape != v.shape or len(p) < 2 or not np.all(np.isfinite(v)):
        raise ValueError("the error summary is malformed")
    if np.any(np.diff(p) <= 0) or p[0] < 0 or p[-1] != 1.0 or np.any(np.diff(v) < 0):
        raise ValueError("the error summary is malformed")
    if v[0] < 0 or v[-1] > MAX_MAGNITUDE:
        raise ValueError(f"the error summary's scores are outside 0-{MAX_MAGNITUDE:g}")
    limit = min(MAX_COUNT, max_n) if max_n is not None else MAX_COUNT
    if n > limit:
        raise ValueError(f"the error summary counts {n:,} windows, more than the facility has ({limit:,})")
    try:
        q, f = (float(x) for x in sketch["rule"])
    except (KeyError, TypeError, ValueError):
        raise ValueError("the error summary names no threshold rule") from None
    if not (0 < q <= 1 and 0 < f <= 100):
        raise ValueError("the error summary's threshold rule is out of bounds")


def pooled_threshold(sketches: Sequence[dict]) -> float:
    """The shared threshold: the rule's quantile of every facility's training scores together,
    times its factor; the rule of the facility with the most windows (facilities with other
    amounts of history may follow other rules: core/data_fit.detection_for). It stays within
    ``THRESHOLD_REACH`` times the median facility's own threshold (the lower median: see above)."""
    q, f = max(sketches, key=lambda s: s["n"])["rule"]
    pooled = pooled_quantile(sketches, q) * f
    own = sorted(pooled_quantile([s], q) * f for s in sketches)
    reference = own[(len(own) - 1) // 2]
    if reference <= 0:
        return float(pooled)
    return float(np.clip(pooled, reference / THRESHOLD_REACH, reference * THRESHOLD_REACH))


def pooled_quantile(sketches: Sequence[dict], q: float) -> float:
    """The ``q`` quantile of the facilities' errors taken together, from their sketches."""
    if not sketches:
        raise ValueError("no error summaries to pool")
    weights = np.array([s["n"] for s in sketches], dtype=np.float64)
    weights /= weights.sum()

    def cdf(t: float) -> float:
        # Each facility's share of errors at or below t, read linearly between its quantiles.
        return float(sum(w * np.interp(t, s["v"], s["p"], left=0.0, right=1.0) for w, s in zip(weights, sketches)))

    lo = min(s["v"][0] for s in sketches)
    hi = max(s["v"][-1] for s in sketches)
    for _ in range(100):  # bisection: the mixture's CDF is monotone
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cdf(mid) < q else (lo, mid)
    return float(hi)
