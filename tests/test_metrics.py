"""SKAB-style metrics checked against hand-worked cases and tsad's own documented example."""

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix

from pumpfl_gui.core.metrics import (
    alarm_edges,
    alarm_starts,
    confusion,
    detection_delays,
    label_changepoints,
    nab_file,
    nab_scores,
    nab_windows,
    rates,
    sum_counts,
)

T0 = np.datetime64("2020-03-09T10:00:00", "s")


def seconds(*offsets):
    return T0 + np.array(offsets, dtype="timedelta64[s]")


# --- point-wise ------------------------------------------------------------------------------


def test_confusion_matches_scikit_learn():
    rng = np.random.default_rng(3)
    labels = rng.random(500) < 0.3
    flags = rng.random(500) < 0.4
    tn, fp, fn, tp = confusion_matrix(labels, flags, labels=[False, True]).ravel()
    assert confusion(labels.astype(float), flags) == {"tp": tp, "fp": fp, "fn": fn, "tn": tn}


def test_confusion_refuses_different_lengths():
    with pytest.raises(ValueError, match="length"):
        confusion(np.zeros(3), np.zeros(4))


def test_rates_by_hand():
    # F1 = 3 / (3 + (1 + 2) / 2) = 0.66667; FAR = 100 * 1 / 15; MAR = 100 * 2 / 5
    assert rates({"tp": 3, "fp": 1, "fn": 2, "tn": 14}) == {"f1": 0.6667, "far_pct": 6.67, "mar_pct": 40.0}


def test_rates_with_empty_denominators_are_zero():
    assert rates({"tp": 0, "fp": 0, "fn": 0, "tn": 10}) == {"f1": 0.0, "far_pct": 0.0, "mar_pct": 0.0}
    assert rates({"tp": 0, "fp": 0, "fn": 4, "tn": 0}) == {"f1": 0.0, "far_pct": 0.0, "mar_pct": 100.0}


def test_rates_pool_rows_of_many_files():
    a = confusion(np.array([1, 1, 0, 0]), np.array([1, 0, 0, 0]))  # tp 1, fn 1, tn 2
    b = confusion(np.array([0, 0, 0, 0, 1]), np.array([1, 1, 0, 0, 1]))  # fp 2, tn 2, tp 1
    total = sum_counts([a, b])
    assert total == {"tp": 2, "fp": 2, "fn": 1, "tn": 4}
    # Pooled: FAR = 2/6, not the mean of the files' 0/4 and 2/4.
    assert rates(total) == {"f1": round(2 / 3.5, 4), "far_pct": 33.33, "mar_pct": 33.33}


# --- changepoints from 0/1 series ------------------------------------------------------------


def test_alarm_starts_and_edges():
    flags = np.array([1, 1, 0, 0, 1, 1, 1, 0, 1], dtype=bool)
    assert alarm_starts(flags).tolist() == [0, 4, 8]
    # SKAB's |diff| convention: starts and the first row after each alarm.
    assert alarm_edges(flags).tolist() == [0, 2, 4, 7, 8]
    assert alarm_starts(np.zeros(5, bool)).tolist() == []


def test_label_changepoints_are_run_starts():
    assert label_changepoints(np.array([0, 1, 1, 0, 0, 1, 0, 1, 1])).tolist() == [1, 5, 7]


# --- NAB -------------------------------------------------------------------------------------


def one_cp(pred_rows, n=200, cp=100, window_s=60):
    return nab_scores([(np.array([cp]), np.array(pred_rows, dtype=np.int64), None)], window_s=window_s)


def test_perfect_detector_scores_100_and_null_scores_0():
    truth = [np.array([50, 400]), np.array([30])]
    perfect = nab_scores([(truth[0], truth[0], None), (truth[1], truth[1], None)])
    null = nab_scores([(truth[0], np.array([], np.int64), None), (truth[1], np.array([], np.int64), None)])
    assert perfect == {"standard": 100.0, "low_fp": 100.0, "low_fn": 100.0}
    assert null == {"standard": 0.0, "low_fp": 0.0, "low_fn": 0.0}


def test_tsad_documented_example():
    """tsad's chp_score docstring: 7 one-second rows, changepoint at row 3, window_width '3s'."""
    cp = np.array([3])
    at_end = nab_scores([(cp, np.array([6]), None)], window_s=3)
    assert at_end == {"standard": 44.5, "low_fp": 39.0, "low_fn": 63.0}
    before = nab_scores([(cp, np.array([0]), None)], window_s=3)
    assert before == {"standard": -5.5, "low_fp": -11.0, "low_fn": -3.67}
    every_row = nab_scores([(cp, np.arange(7), None)], window_s=3)  # 3 FPs, TP at the cp, 3 ignored
    assert every_row == {"standard": 83.5, "low_fp": 67.0, "low_fn": 89.0}


def test_detection_on_the_changepoint_beats_one_at_the_window_end():
    on_cp = one_cp([100])
    at_end = one_cp([160])  # window [100 s, 160 s] is closed: 160 is its last instant
    just_after = one_cp([161])  # a false positive and a miss
    assert on_cp["standard"] == 100.0
    # At the end the reward is A_fp: (-0.11 - (-1)) / (1 - (-1)) = 44.5 %
    assert at_end == {"standard": 44.5, "low_fp": 39.0, "low_fn": 63.0}
    assert just_after == {"standard": -5.5, "low_fp": -11.0, "low_fn": -3.67}


def test_mid_window_reward_by_hand():
    # position 0.5 -> point 500 of 1000 on [-pi/2, pi/2] -> x = -pi/2 + 500 pi / 999
    x = -np.pi / 2 + 500 * np.pi / 999
    reward = -0.11 + 0.555 * (1 - np.tanh(x) / np.tanh(np.pi / 2))
    assert nab_file([100], [130], None)["raw"]["standard"] == pytest.approx(reward)
    assert one_cp([130])["standard"] == round(100 * (reward + 1) / 2, 2)
    # position 40/60 = 0.6667 -> point int(666.67) = 666 (tsad truncates, it does not round)
    x = -np.pi / 2 + 666 * np.pi / 999
    reward = -0.11 + 0.555 * (1 - np.tanh(x) / np.tanh(np.pi / 2))
    assert nab_file([100], [140], None)["raw"]["standard"] == pytest.approx(reward, rel=1e-9)


def test_only_the_first_detection_in_a_window_counts():
    assert one_cp([100, 110, 150]) == one_cp([100])
    assert one_cp([130, 100 + 5]) == one_cp([105])


def test_one_false_positive_costs_low_fp_most():
    clean = one_cp([100])
    with_fp = one_cp([10, 100])
    drop = {k: clean[k] - with_fp[k] for k in clean}
    # A_fp / (perfect - null): 0.11/2, 0.22/2, 0.11/3
    assert drop == pytest.approx({"standard": 5.5, "low_fp": 11.0, "low_fn": 3.67}, abs=0.006)
    assert drop["low_fp"] > drop["standard"] > drop["low_fn"]


def test_a_miss_costs_low_fn_more_than_standard():
    # Two changepoints: one caught at its window's end (reward A_fp), one on time.
    cps = np.array([100, 300])
    late = nab_scores([(cps, np.array([160, 300]), None)])
    missed = nab_scores([(cps, np.array([300]), None)])
    assert late == {"standard": 72.25, "low_fp": 69.5, "low_fn": 81.5}
    assert missed == {"standard": 50.0, "low_fp": 50.0, "low_fn": 50.0}
    assert late["low_fn"] - missed["low_fn"] > late["standard"] - missed["standard"]


def test_many_files_are_summed_before_normalising():
    three_caught = (np.array([100, 300, 500]), np.array([100, 300, 500]), None)
    one_missed = (np.array([100]), np.array([], np.int64), None)
    # (3 - 1) - (-4) over 4 - (-4): 75 %, not the mean of the files' 100 % and 0 %.
    assert nab_scores([three_caught, one_missed]) == {"standard": 75.0, "low_fp": 75.0, "low_fn": 75.0}
    no_truth_one_alarm = (np.array([], np.int64), np.array([7]), None)
    # A file without changepoints adds its false positives only: (6 - 0.11) / 8 for standard.
    assert nab_scores([three_caught, one_missed, no_truth_one_alarm])["standard"] == pytest.approx(73.62, abs=0.006)


def test_no_changepoints_anywhere_is_refused():
    with pytest.raises(ValueError, match="without true changepoints"):
        nab_scores([(np.array([], np.int64), np.array([3]), None)])


def test_timestamps_set_the_window_not_the_row_count():
    # Rows 2 s apart: row 30 is 60 s after row 0 (window end), row 31 is past it.
    times = T0 + np.arange(0, 200, 2).astype("timedelta64[s]")
    assert nab_scores([(np.array([0]), np.array([30]), times)])["standard"] == 44.5
    assert nab_scores([(np.array([0]), np.array([31]), times)])["standard"] == -5.5
    # Changepoints may be given as timestamps instead of rows.
    assert nab_scores([(times[[0]], times[[30]], None)])["standard"] == 44.5


def test_overlapping_windows_cut_the_later_one():
    # Changepoints 40 s apart with 60 s windows: the second window starts where the first ends.
    windows = nab_windows(np.array([0, 40]) * 10**9, 60 * 10**9) // 10**9
    assert windows.tolist() == [[0, 60], [60, 100]]
    part = nab_file([0, 40], [45, 80], None)
    # 45 is the first window's TP (position 0.75); 80 the second's (position 0.5).
    assert part["tp_positions"] == [0.75, 0.5]
    assert part["fp"] == 0 and part["fn"] == 0


# --- delays ----------------------------------------------------------------------------------


def test_delays_in_seconds_and_rows_over_many_files():
    labels_a = np.array([0, 0, 1, 1, 1, 1, 0, 0, 1, 1, 0])
    flags_a = np.array([1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0])  # run 1 seen at row 4; run 2 missed
    times_a = seconds(0, 1, 2, 5, 9, 10, 11, 12, 13, 14, 15)  # row 4 is 7 s after row 2
    labels_b = np.array([1, 1, 1, 0, 0, 1, 1])
    flags_b = np.array([1, 1, 0, 0, 1, 0, 1])  # run 1 at once; run 2 one row (1 s) late
    out = detection_delays([(labels_a, flags_a, times_a), (labels_b, flags_b, None)])
    assert out == {"events": 4, "detected": 3, "mean_delay_s": pytest.approx(8 / 3), "median_delay_s": 1.0}


def test_a_flag_before_the_run_does_not_detect_it():
    out = detection_delays([(np.array([0, 0, 1, 1]), np.array([0, 1, 0, 0]), None)])
    assert out == {"events": 1, "detected": 0, "mean_delay_s": None, "median_delay_s": None}
