"""Thresholds, flags, events and the detection figures, checked against hand-worked cases."""

import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

from pumpfl_gui.core.detection import (
    DetectionSettings,
    failure_metrics,
    flag_rows,
    label_event_metrics,
    pointwise_metrics,
    row_scores,
    runs,
    threshold_from_errors,
)


def test_threshold_is_quantile_times_factor():
    errs = np.arange(1001, dtype=float)
    assert threshold_from_errors(errs, DetectionSettings(quantile=0.9, factor=2.0)) == pytest.approx(1800.0)


def test_row_scores_are_causal():
    scores = row_scores(np.array([1.0, 2.0, 3.0]), window=4, rows=6)
    assert np.isnan(scores[:3]).all()
    assert scores[3:].tolist() == [1.0, 2.0, 3.0]  # row 3 is scored by the window of rows 0..3


@pytest.mark.parametrize("persistence", [1, 2, 3, 7])
def test_flag_rows_persistence_against_naive(persistence):
    rng = np.random.default_rng(persistence)
    scores = rng.random(300)
    scores[:5] = np.nan
    above = np.nan_to_num(scores, nan=-1) > 0.4
    naive = [i >= persistence - 1 and above[i - persistence + 1 : i + 1].all() for i in range(300)]
    assert flag_rows(scores, 0.4, persistence).tolist() == naive


def test_runs_and_merging():
    mask = np.array([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 1, 1], dtype=bool)
    assert runs(mask) == [(1, 3), (5, 6), (10, 12)]
    assert runs(mask, merge_gap=3) == [(1, 6), (10, 12)]
    assert runs(np.zeros(4, bool)) == []


def test_pointwise_metrics_agree_with_sklearn():
    rng = np.random.default_rng(3)
    labels = (rng.random(400) > 0.8).astype(np.int8)
    scores = labels + rng.normal(0, 0.6, 400)
    scores[:10] = np.nan
    flags = np.nan_to_num(scores, nan=-9) > 0.5
    m = pointwise_metrics(labels, flags, scores)
    keep = ~np.isnan(scores)
    y, f = labels[keep], flags[keep]
    assert m["precision"] == pytest.approx(precision_score(y, f))
    assert m["recall"] == pytest.approx(recall_score(y, f))
    assert m["f1"] == pytest.approx(f1_score(y, f))  # SKAB's TP/(TP+(FP+FN)/2) is the usual F1
    assert m["far_pct"] == pytest.approx(100 * m["fp"] / (m["fp"] + m["tn"]))
    assert m["mar_pct"] == pytest.approx(100 - 100 * m["recall"])
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, scores[keep]))
    assert m["rows"] == 390


def test_failure_metrics_on_a_hand_built_timeline():
    # Four days at one row per minute; BROKEN at minute 4000 then 500 minutes RECOVERING.
    rows = 4 * 1440
    status = np.array(["NORMAL"] * rows, dtype=object)
    status[4000] = "BROKEN"
    status[4001:4501] = "RECOVERING"
    ts = np.datetime64("2018-04-01T00:00") + np.arange(rows).astype("timedelta64[m]")
    settings = DetectionSettings(horizon_hours=24)
    events = [
        (500, 520),  # false alarm: long before the horizon
        (3000, 3100),  # inside the 24 h before the failure: caught, lead (4000-3000)/60 h
        (3800, 3810),  # also inside: not a false alarm, not the earliest
        (4200, 4300),  # during RECOVERING: neither caught nor false
        (5000, 5010),  # back to normal and fully watched: false alarm
    ]
    m = failure_metrics(status, ts, events, window=10, settings=settings)
    assert m["failures"] == 1 and m["caught"] == 1
    assert m["per_failure"][0]["lead_hours"] == pytest.approx(1000 / 60)
    assert m["false_alarms"] == 2
    watched = rows - 9 - 1440 - 1 - 500 - 9  # minus first window, horizon, broken, recovery (+window)
    assert m["watched_days"] == pytest.approx(watched / 1440)
    assert m["false_alarms_per_day"] == pytest.approx(2 / (watched / 1440))


def test_a_missed_failure_has_no_lead_time():
    status = np.array(["NORMAL"] * 3000, dtype=object)
    status[2000] = "BROKEN"
    m = failure_metrics(status, None, [(100, 110)], window=4, settings=DetectionSettings(horizon_hours=10))
    assert m["caught"] == 0 and m["median_lead_hours"] is None and m["false_alarms"] == 1


def test_label_event_metrics():
    labels = np.zeros(100, np.int8)
    labels[10:20] = 1
    labels[50:60] = 1
    m = label_event_metrics(labels, [(15, 30), (80, 90)])
    assert m == {"anomaly_events": 2, "detected": 1, "median_delay_rows": 5.0}
