"""Training a detector on real-shaped data, scoring it, and the model folder format."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from pumpfl_gui.core.alarm_rules import DetectionSettings, threshold_from_scores
from pumpfl_gui.core.data_fit import rows_needed
from pumpfl_gui.core.dataset import SensorData
from pumpfl_gui.core.detector import Detector, score_data
from pumpfl_gui.core.errors import ModelError
from pumpfl_gui.core.model_spec import ModelSpec
from pumpfl_gui.core.model_store import load_detector, save_detector
from pumpfl_gui.core.task import Cancelled, TaskState
from pumpfl_gui.core.training import TrainSettings
from pumpfl_gui.core.windows import clean_window_starts


def plant(rows=6000, sensors=6, seed=0, fault_at=None):
    """Correlated sinusoidal sensors; optionally a drifting fault before a BROKEN row. Their
    slow swing makes their row-to-row steps small against their spread (step ratio about 0.5),
    so a short history's rules would judge them by their change: the tests judge them by their
    level, as the rules for a long history (the pump schema's) do."""
    rng = np.random.default_rng(seed)
    t = np.arange(rows)
    load = np.sin(2 * np.pi * t / 240) + 0.3 * np.sin(2 * np.pi * t / 1440)
    gains = rng.uniform(0.5, 2.0, sensors)
    values = 10 + (load[:, None] + rng.normal(0, 0.3, (rows, sensors))) * gains
    status = np.array(["NORMAL"] * rows, dtype=object)
    if fault_at is not None:
        ramp = np.clip((t - (fault_at - 300)) / 300, 0, None)
        values[:, 0] += 9 * ramp * (t < fault_at)  # a few times each sensor's normal range
        values[:, 1] -= 6 * ramp * (t < fault_at)
        status[fault_at] = "BROKEN"
        status[fault_at + 1 : fault_at + 200] = "RECOVERING"
        values[fault_at : fault_at + 200] = 0.5
    ts = np.datetime64("2018-04-01T00:00") + t.astype("timedelta64[m]")
    return SensorData(
        path=Path(f"plant{seed}.csv"),
        schema="pump",
        separator=",",
        sensors=[f"sensor_{i:02d}" for i in range(sensors)],
        values=values.astype(np.float32),
        timestamps=ts,
        status=status,
        labels=(status != "NORMAL").astype(np.int8),
    )


FAST = TrainSettings(epochs=4, batch_size=128, stride=2, seed=1)
DRIFT_STARTS, BROKEN_AT = 4700, 5000


@pytest.fixture(scope="module")
def trained():
    # The drift before the failure is labelled NORMAL, as in the pump schema; the detector
    # learns from the rows before it (train_rows), so its threshold, the highest training
    # score, is set by normal operation only.
    data = replace(plant(fault_at=BROKEN_AT), train_rows=4500)
    losses = []
    by_level = DetectionSettings(horizon_hours=12, wander=False)
    det = Detector.fit(data, ModelSpec(sensors=6, window=16), FAST, by_level, on_epoch=losses.append)
    return data, det, losses


def test_training_lowers_the_loss_and_sets_the_threshold_from_the_training_scores(trained):
    data, det, losses = trained
    assert [r.epoch for r in losses] == [1, 2, 3, 4]
    assert losses[-1].loss < losses[0].loss * 0.7
    assert det.info["epochs_run"] == 4 and det.info["model"] == "trained alone"
    assert det.calibrated and det.threshold > 0
    assert det.spread.shape == (6,) and np.all(det.spread > 0)
    # The rule's threshold: factor x the quantile of the training windows' scores (quantile 1:
    # the highest), whatever the defaults are tuned to.
    train_scores = det.training_scores(data)
    assert det.threshold == pytest.approx(np.quantile(train_scores, det.detection.quantile) * det.detection.factor)
    assert det.threshold == threshold_from_scores(train_scores, det.detection)


def test_only_normal_rows_train():
    data = plant(rows=2000, fault_at=1500)  # rows 1500..1699 are BROKEN / RECOVERING
    det = Detector.fit(data, ModelSpec(sensors=6, window=16), replace(FAST, epochs=1))
    clean = clean_window_starts(data.train_mask(), 16)
    assert not ((clean + 16 > 1500) & (clean < 1700)).any()
    assert det.info["train_windows"] == len(clean[::2]) < (data.rows - 15) / 2


def test_the_degradation_is_caught_before_the_broken_minute(trained):
    data, det, _ = trained
    result = score_data(det, data)
    f = result.metrics["failures"]
    assert f["caught"] == 1, result.events
    assert 0 < f["median_lead_hours"] <= 5.0  # the drift starts 300 minutes before
    assert not result.flags[:DRIFT_STARTS].any()  # nothing before the drift rises above the training maximum
    assert np.nanmean(result.scores[4800:BROKEN_AT]) > 3 * np.nanmedian(result.scores[:4000])
    assert result.metrics["pointwise"]["roc_auc"] > 0.9


def test_saved_model_scores_identically_after_loading(trained, tmp_path):
    data, det, _ = trained
    save_detector(det, tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["model.json", "weights.npz"]
    again = load_detector(tmp_path / "m")
    assert again.sensors == det.sensors and again.spec == det.spec and again.threshold == det.threshold
    assert again.detection == det.detection and again.calibrated
    np.testing.assert_array_equal(again.spread, det.spread)
    np.testing.assert_allclose(score_data(again, data).scores, score_data(det, data).scores, rtol=1e-6, equal_nan=True)


def test_same_seed_same_model():
    data = plant(rows=2000, seed=4)
    a = Detector.fit(data, ModelSpec(sensors=6, window=8), TrainSettings(epochs=1, seed=7))
    b = Detector.fit(data, ModelSpec(sensors=6, window=8), TrainSettings(epochs=1, seed=7))
    assert a.threshold == b.threshold
    np.testing.assert_array_equal(a.spread, b.spread)


def test_training_stops_when_cancelled():
    state = TaskState()
    state.cancel()
    with pytest.raises(Cancelled):
        Detector.fit(plant(rows=2000), ModelSpec(sensors=6, window=8), TrainSettings(epochs=50), state=state)


def test_too_little_normal_data_is_a_clear_error():
    data = plant(rows=300)
    data.status[::10] = "RECOVERING"
    need = rows_needed(32, DetectionSettings())  # a window and two smoothing spans: 95 rows
    with pytest.raises(ValueError, match=f"no stretch of {need} normal rows"):
        Detector.fit(data, ModelSpec(sensors=6, window=32), FAST)


@pytest.fixture()
def model_dir(trained, tmp_path):
    return save_detector(trained[1], tmp_path / "model")


def _edit_meta(folder, change):
    meta = json.loads((folder / "model.json").read_text())
    change(meta)
    (folder / "model.json").write_text(json.dumps(meta))


@pytest.mark.parametrize(
    "damage,message",
    [
        (lambda d: (d / "weights.npz").unlink(), "not a PumpFL model folder"),
        (lambda d: (d / "model.json").write_text("{not json"), "not valid JSON"),
        (lambda d: (d / "model.json").write_text("[1, 2]"), "not a PumpFL model description"),
        (lambda d: _edit_meta(d, lambda m: m.pop("scaler")), "incomplete or malformed"),
        (lambda d: _edit_meta(d, lambda m: m.update(sensors=["a"])), "inconsistent"),
        (lambda d: _edit_meta(d, lambda m: m.update(format_version=99)), "newer PumpFL"),
        (lambda d: _edit_meta(d, lambda m: m.update(format_version=1)), "train it again"),
        (lambda d: _edit_meta(d, lambda m: m.pop("format_version")), "train it again"),
        (lambda d: _edit_meta(d, lambda m: m["spec"].update(architecture="evil")), "unknown architecture"),
        (lambda d: _edit_meta(d, lambda m: m["spec"].update(architecture="conv1d-ae")), "unknown architecture"),
        (lambda d: _edit_meta(d, lambda m: m.update(threshold=0)), "unusable threshold"),
        (lambda d: _edit_meta(d, lambda m: m.update(threshold=-1.5)), "unusable threshold"),
        (lambda d: _edit_meta(d, lambda m: m.update(threshold="NaN")), "unusable threshold"),
        (lambda d: _edit_meta(d, lambda m: m.update(threshold="inf")), "unusable threshold"),
        (lambda d: _edit_meta(d, lambda m: m.update(spread=[1.0, 2.0])), "residual spread"),
        (lambda d: _edit_meta(d, lambda m: m.update(spread=[1.0, 0.0, 1.0, 1.0, 1.0, 1.0])), "residual spread"),
        (lambda d: _edit_meta(d, lambda m: m.update(spread=[1.0, "NaN", 1.0, 1.0, 1.0, 1.0])), "residual spread"),
        (lambda d: _edit_meta(d, lambda m: m.update(spread=[[1.0] * 6])), "residual spread"),
        (lambda d: _edit_meta(d, lambda m: m.update(spread="wide")), "incomplete or malformed"),
        (lambda d: (d / "weights.npz").write_bytes(b"PK\x03\x04garbage"), "cannot be read"),
        (lambda d: np.savez(d / "weights.npz", x=np.zeros(3)), "does not hold this architecture"),
    ],
)
def test_damaged_model_folders_are_refused_clearly(model_dir, damage, message):
    damage(model_dir)
    with pytest.raises(ModelError, match=message):
        load_detector(model_dir)


def test_a_pickled_weights_file_is_never_unpickled(model_dir):
    # An object array inside the npz would need pickle to load: it must be refused, not run.
    class Boom:
        def __reduce__(self):
            return (Path("/nonexistent/should-not-run").touch, ())

    np.savez(model_dir / "weights.npz", **{"encoder.0.weight": np.array([Boom()], dtype=object)})
    with pytest.raises(ModelError, match="cannot be read as plain arrays"):
        load_detector(model_dir)


def test_missing_model_folder(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        load_detector(tmp_path / "nope")
