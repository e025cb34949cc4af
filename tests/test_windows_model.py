"""Windowing, scaling and the autoencoder's shapes and parameter exchange."""

import numpy as np
import pytest
import torch

from pumpfl_gui.core.model import build_model, get_parameters, set_parameters
from pumpfl_gui.core.model_spec import ModelSpec
from pumpfl_gui.core.windows import Scaler, clean_window_starts, gather, window_view


def test_window_view_matches_slices():
    x = np.arange(40, dtype=np.float32).reshape(10, 4)
    v = window_view(x, 3)
    assert v.shape == (8, 4, 3)
    for start in range(8):
        np.testing.assert_array_equal(v[start], x[start : start + 3].T)
    np.testing.assert_array_equal(gather(v, np.array([5, 0])), np.stack([x[5:8].T, x[0:3].T]))


def test_window_view_shorter_than_window_is_empty():
    assert window_view(np.zeros((3, 2), np.float32), 4).shape == (0, 2, 4)


@pytest.mark.parametrize("window,stride", [(1, 1), (5, 1), (8, 3), (30, 1)])
def test_clean_window_starts_against_naive(window, stride):
    rng = np.random.default_rng(window)
    ok = rng.random(500) > 0.03
    expected = [s for s in range(500 - window + 1) if ok[s : s + window].all()][::stride]
    assert clean_window_starts(ok, window, stride).tolist() == expected


def test_scaler_fits_training_rows_only_and_round_trips():
    rng = np.random.default_rng(1)
    train = rng.normal(5.0, 2.0, size=(1000, 3))
    scaler = Scaler.fit(train)
    z = scaler.transform(train)
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(axis=0), 1, atol=1e-4)
    later = np.full((2, 3), 1e6)
    assert scaler.transform(later).min() > 1e5  # unseen extremes are not clipped away
    again = Scaler.from_dict(scaler.to_dict())
    np.testing.assert_array_equal(again.transform(train), z)


def test_scaler_survives_a_constant_training_sensor():
    train = np.column_stack([np.ones(50), np.arange(50.0)])
    scaler = Scaler.fit(train)
    assert np.all(np.isfinite(scaler.transform(train)))


@pytest.mark.parametrize("window", [4, 32, 60, 128])
def test_autoencoder_reconstructs_its_input_shape(window):
    spec = ModelSpec(sensors=7, window=window)
    model = build_model(spec)
    x = torch.randn(3, 7, window)
    assert model(x).shape == x.shape


@pytest.mark.parametrize(
    "bad", [dict(window=30), dict(window=0), dict(kernel=4), dict(sensors=0), dict(architecture="conv1d-ae")]
)
def test_model_spec_rejects_unbuildable_shapes(bad):
    with pytest.raises(ValueError):
        ModelSpec(**{"sensors": 5, **bad})


@pytest.mark.parametrize(
    "sensors,interval_s,window,channels,kernel",
    [
        (8, 1.0, 60, (32, 16), 7),  # SKAB: a reading a second, a minute's window, the wide network
        (51, 60.0, 32, (16, 4), 3),  # the pump schema: a reading a minute, never fewer than 32 rows
        (16, 1.5, 40, (32, 16), 7),  # up to 16 sensors count as few
        (17, 1.5, 40, (16, 4), 3),
        (8, 0.9, 68, (32, 16), 7),  # about a minute, rounded to a multiple of 4
        (8, 0.1, 128, (32, 16), 7),  # never more than 128 rows
        (8, None, 32, (32, 16), 7),  # no time column: the smallest window
        (8, 0.0, 32, (32, 16), 7),
    ],
)
def test_the_model_shape_follows_the_data(sensors, interval_s, window, channels, kernel):
    spec = ModelSpec.for_data(sensors, interval_s)
    assert (spec.sensors, spec.window, spec.channels, spec.kernel) == (sensors, window, channels, kernel)
    assert spec.architecture == "conv1d-ae-v2"
    x = torch.randn(2, sensors, window)
    assert build_model(spec)(x).shape == x.shape


def test_parameters_round_trip_and_shape_check():
    spec = ModelSpec(sensors=6, window=16)
    a, b = build_model(spec), build_model(spec)
    params = get_parameters(a)
    assert all(p.dtype == np.float32 for p in params)
    set_parameters(b, params)
    x = torch.randn(2, 6, 16)
    torch.testing.assert_close(a(x), b(x))
    with pytest.raises(ValueError, match="shape"):
        set_parameters(b, [np.zeros((1, 1), np.float32)] + params[1:])
    with pytest.raises(ValueError, match="expected"):
        set_parameters(b, params[:-1])
    assert ModelSpec.from_dict(spec.to_dict()) == spec


def test_a_wandering_sensor_is_judged_by_its_change_and_a_noisy_one_by_its_level():
    rng = np.random.default_rng(0)
    rows = 400
    drift = np.cumsum(rng.normal(0, 0.05, rows))  # a temperature warming slowly
    noise = rng.normal(5.0, 1.0, rows)  # a vibration reading around its level
    values = np.column_stack([drift, noise]).astype(np.float32)
    from pumpfl_gui.core.windows import step_ratio

    ratio = step_ratio(values)
    assert ratio[0] < 0.5 < 1.2 < ratio[1]
    scaler = Scaler.fit(values, wander_below=0.5, span=32)
    assert scaler.relative.tolist() == [True, False]
    # Later the temperature sits far above anything seen; by its change it is ordinary.
    later = values.copy()
    later[:, 0] += 50.0
    z = scaler.transform(later)
    assert abs(z[100:, 0]).max() < 3 and np.allclose(z[:, 1], Scaler.fit(values).transform(later)[:, 1])
    # Causal: a row's value never depends on rows after it.
    assert np.allclose(scaler.transform(later[:250]), z[:250], atol=1e-5)
    again = Scaler.from_dict(scaler.to_dict())
    assert again.relative.tolist() == [True, False] and again.span == 32
    assert Scaler.from_dict(Scaler.fit(values).to_dict()).relative is None


def test_training_rows_limit_keeps_later_rows_out_of_training(tmp_path):
    from dataclasses import replace

    from pumpfl_gui.core.dataset import load_sensor_csv

    path = tmp_path / "f.csv"
    path.write_text("a,b\n" + "".join(f"{i},{i % 7}\n" for i in range(100)))
    data = replace(load_sensor_csv(path), train_rows=40)
    mask = data.train_mask()
    assert mask[:40].all() and not mask[40:].any()


def test_a_facility_of_several_files_never_windows_across_them(tmp_path):
    from pumpfl_gui.core.dataset import load_sensor_csv
    from pumpfl_gui.fl.facility import Facility

    parts = []
    for name, rows in (("a", 300), ("b", 200)):
        path = tmp_path / f"{name}.csv"
        path.write_text("x,y\n" + "".join(f"{np.sin(i / 5):.4f},{np.cos(i / 7):.4f}\n" for i in range(rows)))
        parts.append(load_sensor_csv(path))
    fac = Facility(parts, ModelSpec(sensors=2, window=32), "site")
    assert fac.view.shape[0] == 500 - 32 + 1
    starts = np.concatenate([fac.train_pool, fac.held_out])
    crossing = (starts < 300) & (starts + 32 > 300)
    assert not crossing.any()
    # Both files give training and held-out windows; each has its own scaler.
    assert (fac.train_pool < 300).any() and (fac.train_pool >= 300).any()
    assert (fac.held_out < 300).any() and (fac.held_out >= 300).any()
    assert len(fac.scalers) == 2


def test_a_facility_with_many_held_out_windows_evaluates_an_even_spread_of_them(tmp_path, monkeypatch):
    """Every 4th held-out window gives the evaluation loss, and at most MAX_EVAL_WINDOWS of them,
    spread over all (a facility with months of readings a second has millions)."""
    from pumpfl_gui.core.dataset import load_sensor_csv
    from pumpfl_gui.core.model import get_parameters
    from pumpfl_gui.fl import facility as facility_module

    path = tmp_path / "f.csv"
    path.write_text("x,y\n" + "".join(f"{np.sin(i / 5):.4f},{np.cos(i / 7):.4f}\n" for i in range(2000)))
    fac = facility_module.Facility(load_sensor_csv(path), ModelSpec(sensors=2, window=32), "site")
    held = fac.held_out
    np.testing.assert_array_equal(fac.eval_starts, held[::4])  # few: every 4th
    monkeypatch.setattr(facility_module, "MAX_EVAL_WINDOWS", 25)
    chosen = fac.eval_starts
    assert 20 <= len(chosen) <= 25 and set(chosen) <= set(held)
    assert chosen[0] == held[0] and held[-1] - chosen[-1] < len(held) / 25  # spread over all of them
    loss, n = fac.evaluate(get_parameters(fac.model))
    assert n == len(chosen) and np.isfinite(loss)


def _scaled_whole(scaler, values):
    """The rows scaled all at once, as one array (what a view of scaled rows indexes)."""
    from pumpfl_gui.core.windows import trailing_mean

    z = (values - scaler.mean) / scaler.scale
    if scaler.relative is not None:
        z[:, scaler.relative] -= trailing_mean(z[:, scaler.relative], scaler.span)
    return z.astype(np.float32)


@pytest.mark.parametrize("chunk", [7, 1 << 18])
def test_scaled_windows_index_like_a_view_of_the_scaled_rows(monkeypatch, chunk):
    import pumpfl_gui.core.windows as windows

    monkeypatch.setattr(windows, "CHUNK_ROWS", chunk)
    rng = np.random.default_rng(3)
    wandering = np.cumsum(rng.normal(size=(900, 3)), axis=0)
    first = np.column_stack([wandering, rng.normal(size=900)]).astype(np.float32)
    second = (rng.normal(size=(300, 4)) + 5).astype(np.float32)
    scalers = [Scaler.fit(first, 0.5, 20), Scaler.fit(second, 0.5, 20)]
    assert scalers[0].relative.tolist() == [True, True, True, False]  # the wandering ones
    whole = window_view(np.concatenate([_scaled_whole(s, v) for s, v in zip(scalers, (first, second))]), 16)
    view = windows.ScaledWindows([(first, scalers[0]), (second, scalers[1])], 16)
    assert view.shape == whole.shape and len(view) == 900 + 300 - 15
    for starts in (np.arange(0, 50), np.arange(880, 910), rng.integers(0, len(view), 200), np.array([3, 0, 899, 5])):
        np.testing.assert_allclose(gather(view, starts), whole[starts], atol=1e-5)
    np.testing.assert_allclose(view[10:20], whole[10:20], atol=1e-5)
    np.testing.assert_allclose(scalers[0].transform(first), _scaled_whole(scalers[0], first), atol=1e-5)


def test_a_scaler_fitted_on_chosen_rows_a_chunk_at_a_time_equals_one_fitted_on_their_copy(monkeypatch):
    import pumpfl_gui.core.windows as windows

    rng = np.random.default_rng(4)
    values = np.column_stack([np.cumsum(rng.normal(size=1000)), rng.normal(5, 2, size=1000)]).astype(np.float32)
    chosen = rng.random(1000) > 0.3
    whole = Scaler.fit(values[chosen], 0.5, 20)
    monkeypatch.setattr(windows, "CHUNK_ROWS", 64)
    chunked = Scaler.fit(values, 0.5, 20, rows=chosen)
    np.testing.assert_allclose(chunked.mean, whole.mean, rtol=1e-10)
    np.testing.assert_allclose(chunked.scale, whole.scale, rtol=1e-10)
    assert chunked.relative.tolist() == whole.relative.tolist() == [True, False]
