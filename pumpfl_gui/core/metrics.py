"""SKAB-style scoring: point-wise rates, the NAB changepoint score, detection delays (core layer).

numpy only: no Qt, no torch, no pandas. Every function takes plain arrays, so a caller scores
one file or many and sums the parts; the sums are where the SKAB figures come from.

Point-wise (SKAB's outlier leaderboard): ``confusion`` counts rows, ``rates`` turns counts of
one file or of many files summed into F1 = TP / (TP + (FP + FN) / 2), FAR % = 100 FP / (FP + TN)
and MAR % = 100 FN / (FN + TP).

Changepoints (SKAB's changepoint leaderboard): ``nab_scores``, the Numenta Anomaly Benchmark
score as SKAB computes it with the ``tsad`` library (``chp_score(metric="nab",
window_width="60s", anomaly_window_destination="righter")``). The rules, read in tsad 0.19.4
``tsad/utils/evaluating/{src,univariate_funcs,evaluating}.py`` and in SKAB's copy
``waico/SKAB core/metrics.py`` (their docstring example is reproduced in our tests):

- profiles (A_tp, A_fp, A_fn): standard (1, -0.11, -1), low FP (1, -0.22, -1),
  low FN (1, -0.11, -2);
- each true changepoint ``c`` opens the closed window [c, c + width] ("righter");
  when a window reaches the next one's start, the later window is cut to start where the
  earlier one ends (tsad's default "cut right window");
- in each window the first predicted changepoint is the true positive; later ones in that
  window are ignored; a window without one is a false negative scored A_fn;
- a true positive at relative position p = (t - start) / (end - start) earns
  A_fp + (A_tp - A_fp) / 2 * (1 - tanh(x) / tanh(pi / 2)), with x the p-th point of 1000
  evenly spaced from -pi/2 to pi/2 (index int(1000 p), capped at 999): A_tp on the
  changepoint, A_fp at the window's end. This is tsad's "improved" scaled curve (a tanh in
  place of Numenta's scaled sigmoid; tsad accepts no other curve);
- every predicted changepoint outside all windows is a false positive scored plainly A_fp
  (no sigmoid weighting by distance, unlike Numenta's NAB);
- per file the null score is (windows x A_fn) and the perfect score (windows x A_tp); raw,
  null and perfect scores are summed over all files first and only then normalised:
  100 (raw - null) / (perfect - null), rounded to 2 decimals. Null detector 0, perfect 100.

Window width: SKAB's tsad-based scripts use 60 s (our default), but SKAB's README says its
published changepoint table was made with 30-s windows by an older scorer of its own
(``utils/evaluating.py``), so leaderboard figures are not strictly comparable at any width.

True changepoints: SKAB's files carry a ``changepoint`` column and tsad is given that column:
in the valve files it marks three or four rows per experiment: the anomaly's first row,
regime changes inside it, and the first row after it. Use ``np.flatnonzero(changepoint == 1)``.
``label_changepoints`` (the first row of every anomaly run) is only a fallback for data that
has an ``anomaly`` column alone. Predicted changepoints: ``alarm_starts`` (an alarm's first
row) is this project's choice; SKAB's own notebooks pass |diff(flags)| with row 0 = flags[0],
i.e. starts *and* ends of alarms (``alarm_edges``). An end outside every window is then one
more false positive, so the two give different scores for the same alarms.

Delays: ``detection_delays`` measures, per labelled anomaly run, the time from its first row to
the first flagged row inside it. (tsad's "average_time" measures from a changepoint to the first
predicted changepoint in its NAB window instead.)

Time: ``times`` is a datetime64 array, one per row; ``None`` means one row per second, as in
SKAB.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .alarm_rules import DetectionSettings, runs
from .column_roles import BROKEN, NORMAL

NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class NabProfile:
    a_tp: float
    a_fp: float
    a_fn: float


NAB_PROFILES: dict[str, NabProfile] = {
    "standard": NabProfile(a_tp=1.0, a_fp=-0.11, a_fn=-1.0),
    "low_fp": NabProfile(a_tp=1.0, a_fp=-0.22, a_fn=-1.0),
    "low_fn": NabProfile(a_tp=1.0, a_fp=-0.11, a_fn=-2.0),
}

# tsad samples its reward curve at 1000 points and picks one by int(1000 * position).
_CURVE_POINTS = 1000
_CURVE_X = np.linspace(-np.pi / 2, np.pi / 2, _CURVE_POINTS)

COUNT_KEYS = ("tp", "fp", "fn", "tn")


# --- point-wise -----------------------------------------------------------------------------


def confusion(labels: np.ndarray, flags: np.ndarray) -> dict:
    """Row counts tp, fp, fn, tn of flags against 0/1 (or bool) labels of the same length."""
    y = np.asarray(labels).astype(bool)
    f = np.asarray(flags).astype(bool)
    if y.shape != f.shape:
        raise ValueError(f"labels and flags differ in length: {y.shape} vs {f.shape}")
    return {
        "tp": int(np.sum(y & f)),
        "fp": int(np.sum(~y & f)),
        "fn": int(np.sum(y & ~f)),
        "tn": int(np.sum(~y & ~f)),
    }


def sum_counts(many: Iterable[Mapping]) -> dict:
    """tp, fp, fn, tn added up over files (SKAB pools rows of all files before its rates)."""
    total = dict.fromkeys(COUNT_KEYS, 0)
    for counts in many:
        for key in COUNT_KEYS:
            total[key] += int(counts[key])
    return total


def rates(counts: Mapping) -> dict:
    """SKAB's F1 (4 decimals), FAR % and MAR % (2 decimals); 0.0 where a denominator is 0."""
    tp, fp, fn, tn = (int(counts[k]) for k in COUNT_KEYS)
    f1 = tp / (tp + (fp + fn) / 2) if tp + fp + fn else 0.0
    far = 100.0 * fp / (fp + tn) if fp + tn else 0.0
    mar = 100.0 * fn / (fn + tp) if fn + tp else 0.0
    return {"f1": round(f1, 4), "far_pct": round(far, 2), "mar_pct": round(mar, 2)}


# --- changepoints from 0/1 series ------------------------------------------------------------


def alarm_starts(flags: np.ndarray) -> np.ndarray:
    """Rows where flags turn on (False -> True); row 0 counts when it is flagged."""
    f = np.asarray(flags).astype(bool)
    return np.flatnonzero(f & ~np.concatenate(([False], f[:-1])))


def alarm_edges(flags: np.ndarray) -> np.ndarray:
    """Rows where flags change (alarm starts and the row after each alarm), row 0 if flagged.

    SKAB's notebooks' predicted changepoints: |diff(flags)| with row 0 set to flags[0].
    """
    f = np.asarray(flags).astype(bool)
    return np.flatnonzero(f != np.concatenate(([False], f[:-1])))


def label_changepoints(labels: np.ndarray) -> np.ndarray:
    """First row of each run of 1s: a fallback when a file has no ``changepoint`` column."""
    return np.array([s for s, _ in runs(np.asarray(labels).astype(bool))], dtype=np.int64)


# --- NAB -------------------------------------------------------------------------------------


def _instants_ns(points, times: np.ndarray | None) -> np.ndarray:
    """Sorted unique int64 nanoseconds of changepoints given as row indices or datetime64."""
    pts = np.asarray(points)
    if pts.size == 0:
        return np.zeros(0, dtype=np.int64)
    if np.issubdtype(pts.dtype, np.datetime64):
        ns = pts.astype("datetime64[ns]").astype(np.int64)
    elif np.issubdtype(pts.dtype, np.integer):
        if times is None:
            ns = pts.astype(np.int64) * NS_PER_S
        else:
            ns = np.asarray(times).astype("datetime64[ns]").astype(np.int64)[pts]
    else:
        raise TypeError(f"changepoints must be row indices or datetime64, not {pts.dtype}")
    return np.unique(ns)


def nab_windows(true_ns: np.ndarray, width_ns: int) -> np.ndarray:
    """(start, end) per true changepoint, righter windows, overlaps cut from the later one."""
    windows = np.stack([true_ns, true_ns + width_ns], axis=1) if len(true_ns) else np.zeros((0, 2), np.int64)
    for i in range(1, len(windows)):
        if windows[i - 1, 1] >= windows[i, 0]:
            windows[i, 0] = windows[i - 1, 1]
    return windows


def nab_reward(position: float, profile: NabProfile) -> float:
    """Reward of a true positive at ``position`` (0 = changepoint, 1 = window end)."""
    x = _CURVE_X[min(int(position * _CURVE_POINTS), _CURVE_POINTS - 1)]
    half = (profile.a_tp - profile.a_fp) / 2
    return float(profile.a_fp + half * (1 - np.tanh(x) / np.tanh(np.pi / 2)))


def nab_file(true_cps, predicted_cps, times: np.ndarray | None = None, window_s: float = 60) -> dict:
    """One file's raw NAB parts: windows, tp positions, fn, fp and per-profile raw/null/perfect.

    Returned so that many files can be summed before normalising (``nab_scores``).
    """
    if window_s <= 0:
        raise ValueError("the NAB window must be longer than 0 s")
    true_ns = _instants_ns(true_cps, times)
    pred_ns = _instants_ns(predicted_cps, times)
    windows = nab_windows(true_ns, int(round(window_s * NS_PER_S)))
    positions: list[float] = []
    in_any = np.zeros(len(pred_ns), dtype=bool)
    for start, end in windows:
        inside = (pred_ns >= start) & (pred_ns <= end)
        in_any |= inside
        if inside.any():
            first = int(pred_ns[inside][0])
            positions.append((first - int(start)) / (int(end) - int(start)))
    fn = len(windows) - len(positions)
    fp = int(np.sum(~in_any))
    raw, null, perfect = {}, {}, {}
    for name, prof in NAB_PROFILES.items():
        raw[name] = fp * prof.a_fp + fn * prof.a_fn + sum(nab_reward(p, prof) for p in positions)
        null[name] = len(windows) * prof.a_fn
        perfect[name] = len(windows) * prof.a_tp
    return {
        "windows": len(windows),
        "tp_positions": positions,
        "fn": fn,
        "fp": fp,
        "raw": raw,
        "null": null,
        "perfect": perfect,
    }


def nab_scores(files: Sequence[tuple], window_s: float = 60) -> dict:
    """NAB standard / low_fp / low_fn on 0..100 (negative possible) over many files.

    ``files``: (true_changepoints, predicted_changepoints, times or None) per file; changepoints
    as row indices or datetime64. Raw, null and perfect scores are summed over files, then
    normalised, as tsad does; raises ValueError when no file has a true changepoint.
    """
    parts = [nab_file(t, p, times, window_s) for t, p, times in files]
    if sum(part["windows"] for part in parts) == 0:
        raise ValueError("NAB is undefined without true changepoints")
    out = {}
    for name in NAB_PROFILES:
        raw = sum(part["raw"][name] for part in parts)
        null = sum(part["null"][name] for part in parts)
        perfect = sum(part["perfect"][name] for part in parts)
        out[name] = round(100.0 * (raw - null) / (perfect - null), 2)
    return out


# --- delays ----------------------------------------------------------------------------------


def detection_delays(files: Sequence[tuple]) -> dict:
    """Per labelled anomaly run: seconds from its first row to the first flagged row inside it.

    ``files``: (labels, flags, times or None) per file; without times one row is one second.
    Runs with no flagged row inside count as events but not as detected.
    """
    events, delays = 0, []
    for labels, flags, times in files:
        f = np.asarray(flags).astype(bool)
        seconds = (
            None if times is None else ((np.asarray(times) - np.asarray(times)[0]) / np.timedelta64(1, "s")).astype(np.float64)
        )
        for start, end in runs(np.asarray(labels).astype(bool)):
            events += 1
            hits = np.flatnonzero(f[start:end])
            if len(hits):
                first = start + int(hits[0])
                delays.append(float(first - start) if seconds is None else float(seconds[first] - seconds[start]))
    return {
        "events": events,
        "detected": len(delays),
        "mean_delay_s": float(np.mean(delays)) if delays else None,
        "median_delay_s": float(np.median(delays)) if delays else None,
    }


# -- figures for one scored file (pumpfl score, the GUI, the pump benchmark) -----------------


def _roc_auc(labels, scores) -> float:
    from sklearn.metrics import roc_auc_score  # imported here: scikit-learn takes seconds to load

    return float(roc_auc_score(labels, scores))


def pointwise_metrics(labels: np.ndarray, flags: np.ndarray, scores: np.ndarray) -> dict:
    """Precision, recall, F1, FAR, MAR (SKAB's definitions) and ROC-AUC over scored rows."""
    scored = ~np.isnan(scores)
    y = labels[scored].astype(bool)
    counts = confusion(y, flags[scored])
    tp, fp, fn, tn = (counts[k] for k in COUNT_KEYS)
    both = len(np.unique(y)) == 2
    return {
        "rows": int(scored.sum()),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "f1": tp / (tp + (fp + fn) / 2) if tp + fp + fn else 0.0,
        "far_pct": 100.0 * fp / (fp + tn) if fp + tn else 0.0,
        "mar_pct": 100.0 * fn / (fn + tp) if fn + tp else 0.0,
        "roc_auc": _roc_auc(y, scores[scored]) if both else None,
    }


def _watched_rows(status: np.ndarray, window: int) -> np.ndarray:
    """Rows whose whole window (this row and the window-1 before it) is NORMAL."""
    normal = status == NORMAL
    bad = np.concatenate(([0], np.cumsum(~normal, dtype=np.int64)))
    watched = np.zeros(len(status), dtype=bool)
    ends = np.arange(window - 1, len(status))
    watched[ends] = (bad[ends + 1] - bad[ends + 1 - window]) == 0
    return watched


def failure_metrics(
    status: np.ndarray,
    timestamps: np.ndarray | None,
    events: list[tuple[int, int]],
    window: int,
    settings: DetectionSettings,
) -> dict:
    """Failures caught before their BROKEN minute, lead times and false alarms per day."""
    rows = len(status)
    if timestamps is None:
        # Without a time column, assume the pump schema's one row per minute.
        minutes = np.arange(rows, dtype=np.float64)
    else:
        minutes = (timestamps - timestamps[0]) / np.timedelta64(1, "m")
        minutes = np.asarray(minutes, dtype=np.float64)
    horizon = settings.horizon_hours * 60.0
    broken = np.flatnonzero(status == BROKEN)
    starts = np.array([s for s, _ in events], dtype=np.int64)
    in_horizon = np.zeros(len(starts), dtype=bool)
    failures = []
    for b in broken:
        t = minutes[b]
        near = (minutes[starts] >= t - horizon) & (minutes[starts] < t) if len(starts) else np.zeros(0, bool)
        in_horizon |= near
        lead = float((t - minutes[starts[near]].min()) / 60.0) if near.any() else None
        failures.append({"row": int(b), "caught": lead is not None, "lead_hours": lead})
    watched = _watched_rows(status, window)
    # Time already counted towards a failure's horizon is not time in which alarms are false.
    outside = np.ones(rows, dtype=bool)
    for b in broken:
        outside &= ~((minutes >= minutes[b] - horizon) & (minutes < minutes[b]))
    watch_rows = watched & outside
    false_starts = [int(s) for s, h in zip(starts, in_horizon) if not h and watched[s]]
    step = float(np.median(np.diff(minutes))) if rows > 1 else 1.0
    days = watch_rows.sum() * step / (24 * 60)
    leads = [f["lead_hours"] for f in failures if f["caught"]]
    return {
        "failures": len(failures),
        "caught": len(leads),
        "per_failure": failures,
        "median_lead_hours": float(np.median(leads)) if leads else None,
        "false_alarms": len(false_starts),
        "watched_days": float(days),
        "false_alarms_per_day": len(false_starts) / days if days > 0 else None,
    }


def label_event_metrics(labels: np.ndarray, events: list[tuple[int, int]]) -> dict:
    """For 0/1 labels: how many labelled anomaly runs an alarm overlaps, and the first delay."""
    label_runs = runs(labels.astype(bool))
    detected, delays = 0, []
    for s, e in label_runs:
        hits = [es for es, ee in events if es < e and ee > s]
        if hits:
            detected += 1
            delays.append(max(0, min(hits) - s))
    return {
        "anomaly_events": len(label_runs),
        "detected": detected,
        "median_delay_rows": float(np.median(delays)) if delays else None,
    }


def headline_figures(metrics: Mapping) -> dict:
    """The few figures people compare two detectors by, from ``score_data(...).metrics``:
    failures caught before breakdown, median warning time, false alarms (per day of normal
    running; or the share of normal readings alarmed, where rows carry labels), labelled
    anomalies with an alarm, ROC-AUC. A figure the data cannot give is None."""
    f = metrics.get("failures") or {}
    e = metrics.get("label_events") or {}
    p = metrics.get("pointwise") or {}
    lead = f.get("median_lead_hours")
    per_day = f.get("false_alarms_per_day")
    auc = p.get("roc_auc")
    return {
        "failures": f.get("failures"),
        "caught": f.get("caught"),
        "median_lead_hours": None if lead is None else round(lead, 2),
        "false_alarms": f.get("false_alarms"),
        "false_alarms_per_day": None if per_day is None else round(per_day, 3),
        "labelled_events": e.get("anomaly_events"),
        "labelled_caught": e.get("detected"),
        "false_alarm_pct": None if not p else round(p["far_pct"], 2),
        "roc_auc": None if auc is None else round(auc, 4),
    }
