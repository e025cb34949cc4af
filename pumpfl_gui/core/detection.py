"""From reconstruction errors to alarms, and honest figures for them (core layer).

Scoring is causal: row ``t`` gets the error of the window that *ends* at ``t``, so an alarm
raised at ``t`` used nothing recorded after ``t`` and a lead time means what it says.

Rules (shown to users through ``pumpfl score`` and the GUI):

- threshold: the ``quantile`` of the training windows' errors times ``factor``;
- a row is flagged once ``persistence`` consecutive window scores exceed the threshold;
- flagged rows closer than ``merge_gap`` rows form one event; an event's start is its alarm;
- for the pump schema a failure is a BROKEN row; it is *caught* when an alarm starts within
  ``horizon_hours`` before it; the lead time is from the earliest such alarm to the BROKEN
  minute;
- a *false alarm* is an alarm that starts while the pump is watched in normal operation
  (the whole window NORMAL) and outside every failure's horizon; false alarms per day divide
  their count by the days of such watched time.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .dataset import BROKEN, NORMAL


@dataclass(frozen=True)
class DetectionSettings:
    quantile: float = 0.995
    factor: float = 1.0
    persistence: int = 5
    merge_gap: int = 60
    horizon_hours: float = 24.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "DetectionSettings":
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)


def _roc_auc(labels, scores) -> float:
    from sklearn.metrics import roc_auc_score  # imported here: scikit-learn takes seconds to load

    return float(roc_auc_score(labels, scores))

def threshold_from_errors(train_errors: np.ndarray, settings: DetectionSettings) -> float:
    if len(train_errors) == 0:
        raise ValueError("no training errors to set a threshold from")
    return float(np.quantile(train_errors, settings.quantile) * settings.factor)


def row_scores(window_errs: np.ndarray, window: int, rows: int) -> np.ndarray:
    """Per-row score: the error of the window ending at that row; NaN for the first rows."""
    scores = np.full(rows, np.nan)
    scores[window - 1 : window - 1 + len(window_errs)] = window_errs
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


def pointwise_metrics(labels: np.ndarray, flags: np.ndarray, scores: np.ndarray) -> dict:
    """Precision, recall, F1, FAR, MAR (SKAB's definitions) and ROC-AUC over scored rows."""
    scored = ~np.isnan(scores)
    y = labels[scored].astype(bool)
    f = flags[scored].astype(bool)
    tp = int(np.sum(f & y))
    fp = int(np.sum(f & ~y))
    fn = int(np.sum(~f & y))
    tn = int(np.sum(~f & ~y))
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
