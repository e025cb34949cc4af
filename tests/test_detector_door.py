"""The one detector door (core/detector.py): fit, calibrate, personalise, score, save and load,
on small SKAB-layout files made here (core/skab_simulator.py)."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from pumpfl_gui.core.alarm_rules import DetectionSettings, smooth_residuals, threshold_from_scores
from pumpfl_gui.core.data_fit import (
    SHORT_HISTORY,
    SHORT_HISTORY_SHARED_MODEL,
    detection_for,
    rows_needed,
    spec_for,
    trainable_problem,
)
from pumpfl_gui.core.dataset import load_sensor_csv
from pumpfl_gui.core.detector import (
    AGREED,
    LOCAL_TRAINING,
    PERSONALISING,
    Detector,
    calibration_windows,
    fit_scaler,
    prepare,
    score_data,
)
from pumpfl_gui.core.errors import ModelError
from pumpfl_gui.core.model import build_model
from pumpfl_gui.core.model_spec import ModelSpec
from pumpfl_gui.core.model_store import load_detector, save_detector
from pumpfl_gui.core.skab_simulator import write_anomaly_free_csv, write_skab_csv
from pumpfl_gui.core.training import TrainSettings, newest_residuals, split_held_back, train_epochs, window_errors
from pumpfl_gui.core.windows import ScaledWindows, clean_window_starts, window_view

pytestmark = pytest.mark.slow  # most tests share `fitted`, a detector trained to early stopping (6 s)

SKAB_TRAIN_ROWS = 400  # SKAB's benchmark trains on each file's first 400 rows
ANOMALY = slice(600, 900)  # the valve is closed in these rows (write_skab_csv's defaults)
NORMAL_AFTER_TRAINING = slice(SKAB_TRAIN_ROWS, 600)


def skab_file(folder, name="valve.csv", seed=0):
    return replace(load_sensor_csv(write_skab_csv(folder / name, seed=seed)), train_rows=SKAB_TRAIN_ROWS)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """One facility trained alone as users train it (LOCAL_TRAINING), with its epochs recorded."""
    data = skab_file(tmp_path_factory.mktemp("door"))
    epochs = []
    det = Detector.fit(data, on_epoch=epochs.append)
    return data, det, epochs


def _weights(det):
    return {k: v.detach().clone() for k, v in det.model.state_dict().items()}


def _as_global(det, model="federated"):
    """What a federation hands a facility: weights only, no scaler, spread or threshold."""
    return Detector(det.spec, det.model, None, det.sensors, None, det.detection, {"model": model})


# -- (1) fitting on a SKAB-like file ------------------------------------------------------------


def test_the_shape_follows_the_file_and_training_stops_early(fitted):
    data, det, epochs = fitted
    assert data.interval_s == 1.0
    assert spec_for(data) == det.spec
    assert (det.spec.sensors, det.spec.window, det.spec.channels, det.spec.kernel) == (8, 60, (32, 16), 7)
    assert det.info["model"] == "trained alone" and det.calibrated
    assert det.info["epochs_run"] == len(epochs) < LOCAL_TRAINING.epochs
    # It stopped because the held-back loss had not improved for `patience` epochs.
    held = [e.held_back_loss for e in epochs]
    assert all(h is not None for h in held)
    assert min(held[-LOCAL_TRAINING.patience :]) >= min(held[: -LOCAL_TRAINING.patience])
    # Only the 400 training rows train: every window inside them, less the newest tenth held back.
    windows = SKAB_TRAIN_ROWS - det.spec.window + 1
    assert det.info["train_windows"] == windows
    assert epochs[0].windows == len(split_held_back(np.arange(windows), LOCAL_TRAINING.held_back)[0])


def test_the_valve_closing_is_flagged_and_normal_rows_are_not(fitted):
    data, det, _ = fitted
    flags = det.predict(data)
    assert flags[ANOMALY].mean() > 0.8
    assert flags[ANOMALY].mean() > flags[NORMAL_AFTER_TRAINING].mean() + 0.5
    # Nothing the threshold rests on alarms: the training rows whose smoothing span is full.
    settled = det.spec.window - 1 + det.detection.span(det.spec.window) - 1
    assert not flags[settled:SKAB_TRAIN_ROWS].any()
    result = score_data(det, data)
    assert result.metrics["label_events"]["detected"] == 1
    np.testing.assert_array_equal(result.flags, flags)


def test_the_first_scored_rows_of_a_file_do_not_alarm(fitted):
    # Rows whose smoothing span is not yet full are not judged (they would average fewer residuals).
    data, det, _ = fitted
    assert not det.predict(data)[:SKAB_TRAIN_ROWS].any()


def test_scores_are_per_row_and_nan_until_the_first_full_smoothing_span(fitted):
    data, det, _ = fitted
    scores = det.decision_function(data)
    first = det.spec.window + det.detection.span(det.spec.window) - 2  # the first row judged
    assert scores.shape == (data.rows,)
    assert np.isnan(scores[:first]).all() and np.isfinite(scores[first:]).all()
    np.testing.assert_array_equal(det.predict(data), np.nan_to_num(scores, nan=-np.inf) > det.threshold)  # persistence 1


def test_the_threshold_follows_the_rule_on_the_training_windows(fitted):
    data, det, _ = fitted
    train_scores = det.training_scores(data)
    assert det.threshold == threshold_from_scores(train_scores, det.detection)
    # The calibration windows: every training window whose smoothing span is full.
    prep = prepare(data, det.spec.window, det.scaler)
    span = det.detection.span(det.spec.window)
    expected = calibration_windows(prep.clean_starts, len(prep.view), span)
    assert len(train_scores) == det.info["calibration_windows"] == len(expected)
    assert expected[0] == span - 1 and expected[-1] == SKAB_TRAIN_ROWS - det.spec.window
    # ... and the scores there are the slow look's per-row scores of those windows' last rows
    # (the fast look, weighted, can only raise a row's score).
    slow_only = replace(det, detection=replace(det.detection, fast=None))
    np.testing.assert_allclose(slow_only.decision_function(data)[expected + det.spec.window - 1], train_scores, rtol=1e-12)
    assert np.all(det.decision_function(data)[expected + det.spec.window - 1] >= train_scores)


def test_a_row_alarms_when_either_look_is_over_its_own_threshold(fitted):
    """The rule in core/alarm_rules.py, recomputed here from the network's newest residuals: the
    slow look (one window's smoothing, every sensor) against factor x its highest training score,
    the fast look (0.4 of it, the sensors judged by their level) against fast_factor x its own;
    one score and one threshold carry both."""
    data, det, _ = fitted
    w, rule = det.spec.window, det.detection
    slow_span, fast_span = rule.spans(w)
    assert (slow_span, fast_span) == (60, 24) and rule.factor == 5.0 and rule.fast_factor == 2.75
    level = ~det.scaler.relative
    assert [s for s, r in zip(data.sensors, det.scaler.relative) if r] == ["Temperature", "Thermocouple"]
    residuals = newest_residuals(det.model, ScaledWindows([(data.values, det.scaler)], w)).astype(np.float64)
    calib = calibration_windows(prepare(data, w, det.scaler).clean_starts, len(residuals), slow_span)
    looks = []
    for span, spread, factor, reads in (
        (slow_span, det.spread, rule.factor, slice(None)),
        (fast_span, det.fast_spread, rule.fast_factor, level),
    ):
        smoothed = smooth_residuals(residuals, span)
        scores = (np.abs(smoothed) / spread)[:, reads].max(axis=1)
        np.testing.assert_allclose(spread, np.sqrt(np.mean(smoothed[calib] ** 2, axis=0)), rtol=1e-9)
        looks.append((scores, factor * scores[calib].max()))
    (slow, slow_threshold), (fast, fast_threshold) = looks
    assert det.threshold == pytest.approx(slow_threshold, rel=1e-9)
    judged = slice(slow_span - 1, None)  # rows whose slow smoothing is full
    either = (slow > slow_threshold) | (fast > fast_threshold)
    np.testing.assert_array_equal(det.predict(data)[w - 1 :][judged], either[judged])
    # On the simulated valve closing the fast look raises the alarm first.
    start = ANOMALY.start - (w - 1)
    first_slow = start + np.argmax(slow[start:] > slow_threshold)
    first_either = start + np.argmax(either[start:])
    assert either[first_either] and first_either < first_slow


def test_a_long_file_is_scored_a_block_at_a_time_exactly_as_whole(fitted, monkeypatch):
    import pumpfl_gui.core.detector as door

    data, det, _ = fitted
    whole_scores, whole_ratios = det.scores_and_ratios(data)
    whole_train = det.training_scores(data)
    monkeypatch.setattr(door, "BLOCK_WINDOWS", 37)  # blocks shorter than the smoothing span
    scores, ratios = det.scores_and_ratios(data)
    np.testing.assert_allclose(scores, whole_scores, rtol=1e-9, equal_nan=True)
    np.testing.assert_allclose(ratios, whole_ratios, rtol=1e-9, equal_nan=True)
    np.testing.assert_allclose(det.training_scores(data), whole_train, rtol=1e-9)
    # A threshold resting on a sample: every k-th calibration window, the spread still from all.
    monkeypatch.setattr(door, "CALIBRATION_WINDOWS", 50)
    sampled = det.calibrate(data)
    assert 25 < sampled.info["calibration_windows"] <= 50
    np.testing.assert_allclose(sampled.spread, det.spread, rtol=1e-9)
    np.testing.assert_allclose(det.training_scores(data), whole_train[:: -(-len(whole_train) // 50)], rtol=1e-9)


# -- (2) causality ---------------------------------------------------------------------------------


@pytest.mark.parametrize("t", [120, 450, 700])
def test_later_readings_never_change_earlier_scores(fitted, t):
    data, det, _ = fitted
    before = det.decision_function(data)
    values = data.values.copy()
    values[t + 1 :] += np.random.default_rng(t).normal(0, 50, values[t + 1 :].shape).astype(np.float32)
    after = det.decision_function(replace(data, values=values))
    np.testing.assert_array_equal(after[: t + 1], before[: t + 1])
    assert not np.allclose(after[t + 1 :], before[t + 1 :])  # the change itself is seen


# -- (3) personalising -----------------------------------------------------------------------------


def test_personalise_returns_a_calibrated_copy_and_leaves_the_original(fitted, tmp_path):
    data, det, _ = fitted
    other = skab_file(tmp_path, "other.csv", seed=5)
    original = _weights(det)
    before = det.decision_function(data)
    mine = det.personalise(other, replace(PERSONALISING, epochs=3))
    assert mine is not det and mine.model is not det.model
    assert mine.info["model"] == "personalised" and mine.info["data_file"] == "other.csv"
    assert mine.calibrated and mine.info["calibrated_on"] == "other.csv"
    assert 1 <= mine.info["epochs_run"] <= 3
    # Its own scaler (the federation agreed none), spread and threshold.
    np.testing.assert_array_equal(
        mine.scaler.mean, fit_scaler(other, det.spec.window, detection_for(other, det.spec.window)).mean
    )
    assert mine.threshold == threshold_from_scores(mine.training_scores(other), mine.detection)
    # The original is untouched: weights, calibration, scores.
    for name, tensor in det.model.state_dict().items():
        torch.testing.assert_close(tensor, original[name], rtol=0, atol=0)
    assert any(not torch.equal(mine.model.state_dict()[k], original[k]) for k in original)
    assert det.info["model"] == "trained alone"
    np.testing.assert_array_equal(det.decision_function(data), before)


def test_personalise_keeps_a_scaler_the_federation_agreed(fitted, tmp_path):
    data, det, _ = fitted
    agreed = replace(det, info={**det.info, "scaler": AGREED})
    mine = agreed.personalise(skab_file(tmp_path, "other.csv", seed=5), replace(PERSONALISING, epochs=1))
    assert mine.scaler is det.scaler


def test_a_model_that_learned_from_the_federation_keeps_less_margin_on_its_fast_look(fitted, tmp_path):
    """Personalised or calibrated as it is, a federation's model judges its fast look against
    SHORT_HISTORY_SHARED_MODEL's factor (2.0), one trained alone against 2.75; the slow look and
    the threshold are the same rule."""
    data, det, _ = fitted
    other = skab_file(tmp_path, "other.csv", seed=5)
    assert det.detection == SHORT_HISTORY and det.detection.fast_factor == 2.75
    mine = det.personalise(other, replace(PERSONALISING, epochs=1))
    calibrated = _as_global(det, "global").calibrate(other)
    for shared in (mine, calibrated):
        assert shared.detection == SHORT_HISTORY_SHARED_MODEL and shared.detection.fast_factor == 2.0
        cal = shared._calibration(other, None)
        assert shared.threshold == pytest.approx(5.0 * cal.slow_scores.max(), rel=1e-12)
        assert shared.fast_weight == pytest.approx(shared.threshold / (2.0 * cal.fast_scores.max()), rel=1e-12)
    alone = det.calibrate(other)  # a model trained alone keeps its own rules wherever it is calibrated
    assert alone.detection == SHORT_HISTORY
    assert alone.fast_weight == pytest.approx(alone.threshold / (2.75 * alone._calibration(other, None).fast_scores.max()))
    # Less margin: the same model's fast look alarms on more rows, the slow look is unchanged.
    as_alone = replace(calibrated, detection=SHORT_HISTORY, info={"model": "trained alone"}).calibrate(other)
    assert as_alone.threshold == pytest.approx(calibrated.threshold, rel=1e-12)
    assert calibrated.predict(other).sum() > as_alone.predict(other).sum()


# -- (4) calibrating a global model ---------------------------------------------------------------


def test_calibrating_a_global_model_fits_the_files_own_scaler(fitted, tmp_path):
    data, det, _ = fitted
    glob = _as_global(det)
    assert not glob.calibrated
    with pytest.raises(ValueError, match="not calibrated"):
        glob.decision_function(data)
    other = skab_file(tmp_path, "other.csv", seed=7)
    mine = glob.calibrate(other)
    assert mine.calibrated and not glob.calibrated and mine.model is glob.model
    own = fit_scaler(other, det.spec.window, detection_for(other, det.spec.window))
    np.testing.assert_array_equal(mine.scaler.mean, own.mean)
    np.testing.assert_array_equal(mine.scaler.scale, own.scale)
    assert not np.array_equal(mine.scaler.mean, det.scaler.mean)
    assert mine.info["calibrated_on"] == "other.csv"
    # score_data calibrates a global model the same way on the file it scores.
    np.testing.assert_array_equal(score_data(glob, other).scores, mine.decision_function(other))


def test_an_agreed_threshold_and_scaler_are_kept(fitted, tmp_path):
    data, det, _ = fitted
    agreed = replace(det, threshold=123.0, info={**det.info, "scaler": AGREED, "threshold": AGREED})
    mine = agreed.calibrate(skab_file(tmp_path, "other.csv", seed=7))
    assert mine.threshold == 123.0 and mine.scaler is det.scaler
    assert not np.array_equal(mine.spread, det.spread)  # the spread is always the facility's own


# -- (5) the model folder ------------------------------------------------------------------------


def test_a_saved_detector_scores_exactly_as_before(fitted, tmp_path):
    data, det, _ = fitted
    again = load_detector(save_detector(det, tmp_path / "m"))
    assert again.spec == det.spec and again.sensors == det.sensors and again.detection == det.detection
    assert again.threshold == det.threshold and again.fast_weight == det.fast_weight
    np.testing.assert_array_equal(again.spread, det.spread)
    np.testing.assert_array_equal(again.fast_spread, det.fast_spread)
    np.testing.assert_array_equal(again.decision_function(data), det.decision_function(data))
    np.testing.assert_array_equal(again.predict(data), det.predict(data))


def test_the_fast_look_reads_only_the_sensors_judged_by_their_level(fitted):
    """A sensor judged by its change over the last window is already a look at the last minute:
    its ratio is the slow look's alone, and the fast look's threshold rests on the others."""
    data, det, _ = fitted
    relative = det.scaler.relative
    assert relative.any() and not det.detection.fast_reads_changes
    _, ratios = det.scores_and_ratios(data)
    slow = replace(det, detection=replace(det.detection, fast=None))
    _, slow_ratios = slow.scores_and_ratios(data)
    np.testing.assert_array_equal(ratios[:, relative], slow_ratios[:, relative])
    assert np.nanmax(ratios[:, ~relative] - slow_ratios[:, ~relative]) > 0  # the fast look is there for the others
    # Reading every sensor (the rule before) changes the scores; calibration and scoring follow it.
    every = replace(det, detection=replace(det.detection, fast_reads_changes=True)).calibrate(data)
    _, every_ratios = every.scores_and_ratios(data)
    assert np.nanmax(every_ratios[:, relative] - slow_ratios[:, relative]) > 0
    cal, every_cal = det._calibration(data, None), every._calibration(data, None)
    assert det.fast_weight == pytest.approx(det.threshold / (2.75 * cal.fast_scores.max()), rel=1e-12)
    assert every.fast_weight == pytest.approx(every.threshold / (2.75 * every_cal.fast_scores.max()), rel=1e-12)
    assert every_cal.fast_scores.max() >= cal.fast_scores.max()


def test_a_model_whose_sensors_are_all_judged_by_change_has_no_fast_look(fitted):
    data, det, _ = fitted
    everything_wanders = replace(det.scaler, relative=np.ones(len(det.sensors), dtype=bool))
    mine = replace(det, scaler=everything_wanders).calibrate(data)
    assert mine.detection.fast is None and mine.fast_spread is None and mine.fast_weight is None
    slow_only = replace(det, scaler=everything_wanders, detection=replace(det.detection, fast=None)).calibrate(data)
    np.testing.assert_array_equal(mine.decision_function(data), slow_only.decision_function(data))
    assert mine.threshold == slow_only.threshold and np.isfinite(mine.threshold)


def test_a_model_saved_while_the_fast_look_read_every_sensor_scores_as_it_was_calibrated(fitted, tmp_path):
    data, det, _ = fitted
    every = replace(det, detection=replace(det.detection, fast_reads_changes=True)).calibrate(data)
    folder = save_detector(every, tmp_path / "every")
    meta = json.loads((folder / "model.json").read_text())
    del meta["detection"]["fast_reads_changes"]  # as saved before the setting existed
    (folder / "model.json").write_text(json.dumps(meta))
    again = load_detector(folder)
    assert again.detection.fast_reads_changes
    np.testing.assert_array_equal(again.decision_function(data), every.decision_function(data))
    assert not np.array_equal(again.decision_function(data), det.decision_function(data))
    # Saved with the rule now, it loads with it.
    now = load_detector(save_detector(det, tmp_path / "now"))
    assert not now.detection.fast_reads_changes
    np.testing.assert_array_equal(now.decision_function(data), det.decision_function(data))


def test_a_model_saved_before_the_fast_look_scores_as_it_was_calibrated(fitted, tmp_path):
    data, det, _ = fitted
    folder = save_detector(det, tmp_path / "before")
    meta = json.loads((folder / "model.json").read_text())
    for key in ("fast_spread", "fast_weight"):
        del meta[key]
    for key in ("fast", "fast_factor"):
        del meta["detection"][key]
    (folder / "model.json").write_text(json.dumps(meta))
    again = load_detector(folder)
    assert again.detection.fast is None and again.fast_spread is None
    slow_only = replace(det, detection=replace(det.detection, fast=None))
    np.testing.assert_array_equal(again.decision_function(data), slow_only.decision_function(data))


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: m.update(fast_spread=None, fast_weight=None), "no spread or weight"),
        (lambda m: m.update(fast_weight=None), "come together"),
        (lambda m: m["detection"].update(fast=None), "come together"),
        (lambda m: m.update(fast_spread=[1.0, 2.0]), "one positive number per sensor"),
        (lambda m: m.update(fast_spread=[1.0] * 7 + [-1.0]), "one positive number per sensor"),
        (lambda m: m.update(fast_weight=0.0), "not a positive number"),
        (lambda m: m.update(fast_weight="NaN"), "not a positive number"),
        (lambda m: m.update(fast_weight="heavy"), "incomplete or malformed"),
        (lambda m: m["detection"].update(fast=1.5), "incomplete or malformed"),
    ],
)
def test_a_damaged_fast_look_is_refused_clearly(fitted, tmp_path, edit, message):
    folder = save_detector(fitted[1], tmp_path / "damaged")
    meta = json.loads((folder / "model.json").read_text())
    edit(meta)
    (folder / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match=message):
        load_detector(folder)


def test_a_global_model_saves_without_calibration(fitted, tmp_path):
    data, det, _ = fitted
    again = load_detector(save_detector(_as_global(det), tmp_path / "g"))
    assert again.scaler is None and again.threshold is None and again.spread is None
    assert not again.calibrated


def test_a_model_of_the_old_format_must_be_trained_again(fitted, tmp_path):
    folder = save_detector(fitted[1], tmp_path / "old")
    meta = json.loads((folder / "model.json").read_text())
    meta["format_version"] = 1
    (folder / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="train it again"):
        load_detector(folder)


# -- (6) too short to train --------------------------------------------------------------------


def test_a_file_shorter_than_needed_is_explained(tmp_path):
    detection = DetectionSettings()
    need = rows_needed(60, detection)
    assert need == 60 + 2 * detection.span(60) - 1
    short = load_sensor_csv(write_anomaly_free_csv(tmp_path / "short.csv", rows=need - 1))
    problem = trainable_problem(short, 60, detection)
    assert problem is not None
    assert "short.csv" in problem and f"{need - 1:,} rows" in problem and f"at least {need:,}" in problem
    with pytest.raises(ValueError, match="at least"):
        Detector.fit(short, settings=TrainSettings(epochs=1))
    enough = load_sensor_csv(write_anomaly_free_csv(tmp_path / "enough.csv", rows=need))
    assert trainable_problem(enough, 60, detection) is None
    # Long enough, but too few rows it may train on.
    few = replace(enough, train_rows=need - 1)
    assert "no stretch of" in trainable_problem(few, 60, detection)
    # Less smoothing needs fewer rows.
    assert trainable_problem(short, 60, DetectionSettings(smooth=10)) is None


# -- (7) early stopping keeps the best epoch ------------------------------------------------------


def test_early_stopping_keeps_the_best_held_back_epoch(fitted):
    data, det, epochs = fitted
    held = [e.held_back_loss for e in epochs]
    best = int(np.argmin(held))
    assert best < len(held) - 1  # the last epoch was not the best: its weights were not kept
    prep = prepare(data, det.spec.window, det.scaler)
    _, held_back = split_held_back(prep.clean_starts, LOCAL_TRAINING.held_back)
    assert window_errors(det.model, prep.view, held_back).mean() == pytest.approx(held[best], rel=1e-6)


def test_early_stopping_on_a_small_loop():
    rng = np.random.default_rng(0)
    t = np.arange(600)
    values = np.column_stack([np.sin(t / 9), np.cos(t / 13)]) + rng.normal(0, 0.3, (600, 2))
    view = window_view(values.astype(np.float32), 16)
    starts = clean_window_starts(np.ones(600, bool), 16)
    spec = ModelSpec(sensors=2, window=16)
    torch.manual_seed(0)
    model = build_model(spec)
    settings = TrainSettings(epochs=200, lr=3e-2, batch_size=16, stride=1, patience=2, held_back=0.2)
    results = train_epochs(model, view, starts, settings)
    held = [r.held_back_loss for r in results]
    assert len(results) < settings.epochs  # stopped early
    best = int(np.argmin(held))
    assert len(held) - 1 - best == settings.patience  # exactly `patience` epochs without improvement
    _, held_back = split_held_back(starts, settings.held_back)
    assert results[0].windows == len(starts) - len(held_back)
    assert window_errors(model, view, held_back).mean() == pytest.approx(held[best], rel=1e-6)
    # Without patience nothing is held back and every epoch runs.
    plain = train_epochs(build_model(spec), view, starts, replace(settings, epochs=3, patience=None))
    assert len(plain) == 3 and all(r.held_back_loss is None and r.windows == len(starts) for r in plain)


# -- the pieces underneath -------------------------------------------------------------------------


def test_newest_residuals_are_the_newest_reading_minus_its_reconstruction():
    view = window_view(np.arange(40, dtype=np.float32).reshape(20, 2), 4)

    class Zeros(torch.nn.Module):
        def forward(self, x):
            return torch.zeros_like(x)

    class Same(torch.nn.Module):
        def forward(self, x):
            return x

    np.testing.assert_array_equal(newest_residuals(Zeros(), view), view[:, :, -1])
    np.testing.assert_array_equal(newest_residuals(Same(), view), np.zeros((17, 2)))


def test_held_back_windows_are_the_newest():
    starts = np.array([9, 3, 0, 7, 1, 5, 2, 8, 4, 6])
    train, held = split_held_back(starts, 0.2)
    assert train.tolist() == list(range(8)) and held.tolist() == [8, 9]
    train, held = split_held_back(np.arange(3), 0.01)
    assert len(train) == 2 and len(held) == 1  # at least one window on each side


def test_a_big_facility_visits_at_most_max_windows_an_epoch():
    settings = TrainSettings(stride=1, max_windows=4000)
    assert settings.stride_for(3000) == 1
    assert settings.stride_for(4001) == 2
    assert settings.stride_for(77_000) == 20
    assert TrainSettings(stride=3).stride_for(10**6) == 3
