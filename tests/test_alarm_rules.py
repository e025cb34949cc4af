"""The scoring rule (smoothing, per-sensor spread, scores, threshold, flags, events) and the
detection figures, checked against hand-worked cases."""

import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

from pumpfl_gui.core.alarm_rules import (
    DetectionSettings,
    combined_ratios,
    fast_weight,
    flag_rows,
    residual_scale,
    row_scores,
    runs,
    smooth_residuals,
    threshold_from_scores,
    top_mean,
)
from pumpfl_gui.core.metrics import failure_metrics, label_event_metrics, pointwise_metrics


def test_threshold_is_quantile_times_factor():
    scores = np.arange(1001, dtype=float)
    assert threshold_from_scores(scores, DetectionSettings(quantile=0.9, factor=2.0)) == pytest.approx(1800.0)


def test_quantile_one_is_the_highest_training_score():
    scores = np.random.default_rng(0).random(500)
    assert threshold_from_scores(scores, DetectionSettings(quantile=1.0, factor=1.0)) == scores.max()
    assert threshold_from_scores(scores, DetectionSettings(quantile=1.0, factor=3.5)) == pytest.approx(3.5 * scores.max())
    with pytest.raises(ValueError, match="no training scores"):
        threshold_from_scores(np.empty(0), DetectionSettings())


@pytest.mark.parametrize(
    "bad",
    [
        dict(quantile=0),
        dict(quantile=1.5),
        dict(factor=0),
        dict(persistence=0),
        dict(top=0),
        dict(smooth=0),
        dict(merge_gap=-1),
        dict(fast=0),
        dict(fast=1.0),
        dict(fast_factor=0),
    ],
)
def test_detection_settings_refuse_impossible_rules(bad):
    with pytest.raises(ValueError):
        DetectionSettings(**bad)


def test_detection_settings_span_and_round_trip():
    assert DetectionSettings().span(60) == 60  # one window by default
    assert DetectionSettings(smooth=5).span(60) == 5
    d = DetectionSettings(quantile=0.99, top=3, smooth=10)
    assert DetectionSettings.from_dict({**d.to_dict(), "unknown_later_field": 1}) == d
    # The fast look smooths over 0.4 of the span; rules saved before it existed have none.
    assert DetectionSettings().spans(60) == (60, 24) and DetectionSettings(smooth=10).spans(60) == (10, 4)
    assert DetectionSettings(fast=None).spans(60) == (60,)
    old = {k: v for k, v in DetectionSettings().to_dict().items() if k not in ("fast", "fast_factor")}
    assert DetectionSettings.from_dict(old).fast is None


@pytest.mark.parametrize("seed", range(5))
def test_the_weighted_fast_look_alarms_exactly_when_either_look_is_over_its_threshold(seed):
    rng = np.random.default_rng(seed)
    rule = DetectionSettings(quantile=0.95)
    slow_train, fast_train = rng.gamma(2.0, 1.0, 300), rng.gamma(2.0, 3.0, 300)
    slow_threshold = threshold_from_scores(slow_train, rule)
    fast_threshold = np.quantile(fast_train, rule.quantile) * rule.fast_factor
    weight = fast_weight(slow_train, fast_train, rule)
    slow, fast = rng.gamma(2.0, 3.0, (2000, 4)), rng.gamma(2.0, 6.0, (2000, 4))
    score = top_mean(combined_ratios(slow, fast, weight), 1)
    either = (slow.max(axis=1) > slow_threshold) | (fast.max(axis=1) > fast_threshold)
    assert 0 < either.mean() < 1
    # Equal up to rows within rounding of a threshold.
    near = np.isclose(slow.max(axis=1), slow_threshold) | np.isclose(fast.max(axis=1), fast_threshold)
    np.testing.assert_array_equal((score > slow_threshold)[~near], either[~near])
    assert combined_ratios(slow, None, None) is slow  # no fast look: the slow look's ratios


@pytest.mark.parametrize("span", [1, 3, 10])
def test_smoothing_is_a_causal_trailing_mean(span):
    r = np.random.default_rng(span).normal(size=(40, 3)).astype(np.float32)
    naive = np.stack([r[max(0, t - span + 1) : t + 1].astype(np.float64).mean(axis=0) for t in range(40)])
    np.testing.assert_allclose(smooth_residuals(r, span), naive, rtol=1e-10, atol=1e-12)


def test_residual_scale_is_each_sensors_rms_and_never_zero():
    smoothed = np.array([[3.0, 0.0], [-4.0, 0.0]])
    scale = residual_scale(smoothed)
    assert scale[0] == pytest.approx(np.sqrt(12.5))
    assert 0 < scale[1] <= 1e-6  # a perfectly reconstructed sensor still divides safely
    with pytest.raises(ValueError):
        residual_scale(np.empty((0, 2)))


def test_window_score_is_the_mean_of_the_top_sensor_ratios():
    smoothed = np.array([[1.0, -6.0, 2.0, 0.5], [0.0, 0.0, 0.0, 0.0]])
    scale = np.array([1.0, 2.0, 1.0, 0.25])
    # |ratios| per sensor: [1, 3, 2, 2] and zeros.
    assert top_mean(np.abs(smoothed) / scale, top=1).tolist() == [3.0, 0.0]
    assert top_mean(np.abs(smoothed) / scale, top=2).tolist() == [2.5, 0.0]
    assert top_mean(np.abs(smoothed) / scale, top=9).tolist() == [2.0, 0.0]  # top capped at the sensors


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
