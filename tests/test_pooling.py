"""Shared scaling and threshold from aggregates; the privacy accountant; FedProx's proximal term."""

import math

import numpy as np
import pytest
import torch

from pumpfl_gui.core.model import build_model, get_parameters
from pumpfl_gui.core.model_spec import ModelSpec
from pumpfl_gui.core.pooling import (
    POOL_REACH,
    SKETCH_PROBS,
    THRESHOLD_REACH,
    check_sketch,
    check_stats,
    error_sketch,
    pool_scaler,
    pooled_quantile,
    pooled_threshold,
    scaling_stats,
)
from pumpfl_gui.core.training import TrainSettings, train_epochs
from pumpfl_gui.core.windows import Scaler, window_view
from pumpfl_gui.fl.privacy import epsilon
from pumpfl_gui.fl.protocol import FederationSettings


def _files(rng):
    """Three facilities' rows: a wandering sensor, a noisy one, a constant one; other
    levels each."""
    files = []
    for rows, level in ((500, 0.0), (1200, 3.0), (80, -2.0)):
        walk = np.cumsum(rng.normal(0, 0.1, rows)) + level
        files.append(np.column_stack([walk, rng.normal(level, 1.0, rows), np.full(rows, 5.0)]))
    return files


def test_the_pooled_scaler_is_the_one_fitted_on_all_rows_together():
    files = _files(np.random.default_rng(1))
    stats = [scaling_stats([f]) for f in files]
    for s in stats:
        check_stats(s, 3)
    pooled = pool_scaler(stats, wander_below=0.5)
    together = Scaler.fit(np.concatenate(files))
    np.testing.assert_allclose(pooled.mean, together.mean, rtol=1e-12)
    np.testing.assert_allclose(pooled.scale, together.scale, rtol=1e-12)
    assert pooled.scale[2] == 1.0  # constant sensor: scale 1, as StandardScaler
    # Wandering is judged as in one file: steps inside each file against the spread inside each
    # file, so the facilities' different levels do not make a noisy sensor look smooth.
    steps = np.concatenate([np.diff(f, axis=0) for f in files])
    within = np.sqrt(sum(len(f) * f.var(axis=0) for f in files) / sum(len(f) for f in files))
    np.testing.assert_array_equal(pooled.relative[:2], steps.std(axis=0)[:2] / within[:2] < 0.5)
    assert pooled.relative.tolist() == [True, False, False]
    levels_apart = [f + [0.0, 50.0 * i, 0.0] for i, f in enumerate(files)]  # the noisy sensor far apart per facility
    assert pool_scaler([scaling_stats([f]) for f in levels_apart], wander_below=0.5).relative.tolist() == [True, False, False]
    # A facility with several files summarises them together: same pooled result.
    assert pool_scaler([scaling_stats(files[:2]), stats[2]]).mean == pytest.approx(pooled.mean)


def test_malformed_summaries_are_refused():
    good = scaling_stats(_files(np.random.default_rng(2)))
    with pytest.raises(ValueError):
        check_stats(good, 4)
    with pytest.raises(ValueError):
        check_stats({**good, "var": [-1.0, 0.0, 0.0]}, 3)
    with pytest.raises(ValueError):
        check_stats({k: v for k, v in good.items() if k != "within_var"}, 3)
    with pytest.raises(ValueError):
        check_stats({**good, "mean": [float("nan"), 0, 0]}, 3)
    with pytest.raises(ValueError):
        check_sketch({"n": 3, "p": [0.5, 0.9], "v": [1.0, 2.0]})  # does not reach the maximum
    with pytest.raises(ValueError):
        check_sketch({"n": 3, "p": [0.5, 1.0], "v": [2.0, 1.0]})  # quantiles going down


def test_the_pooled_threshold_is_the_quantile_of_all_errors_together():
    rng = np.random.default_rng(3)
    one = rng.gamma(2.0, 0.1, 20_000)
    sketch = error_sketch(one)
    check_sketch(sketch)
    assert sketch["p"] == list(SKETCH_PROBS)
    assert pooled_quantile([sketch], 0.995) == pytest.approx(np.quantile(one, 0.995), rel=1e-6)
    other = rng.gamma(2.0, 0.2, 5_000)  # a facility with larger errors and fewer windows
    both = pooled_quantile([sketch, error_sketch(other)], 0.995)
    assert both == pytest.approx(np.quantile(np.concatenate([one, other]), 0.995), rel=0.05)
    assert np.quantile(one, 0.995) < both < np.quantile(other, 0.995)


def test_the_shared_threshold_follows_the_rule_of_the_facility_with_most_windows():
    rng = np.random.default_rng(4)
    long, short = rng.gamma(2.0, 0.1, 20_000), rng.gamma(2.0, 0.1, 300)
    sketches = [error_sketch(short, (1.0, 3.5)), error_sketch(long, (0.995, 1.0))]
    assert pooled_threshold(sketches) == pytest.approx(pooled_quantile(sketches, 0.995), rel=1e-9)
    assert pooled_threshold(sketches[:1]) == pytest.approx(3.5 * short.max(), rel=1e-4)


@pytest.mark.parametrize("rule", [None, [0.0, 1.0], [1.5, 1.0], [0.99, -1.0], [0.99, 1e9], "x"])
def test_a_sketch_without_a_sound_threshold_rule_is_refused(rule):
    sketch = error_sketch(np.arange(10.0))
    if rule is None:
        del sketch["rule"]
    else:
        sketch["rule"] = rule
    with pytest.raises(ValueError, match="rule"):
        check_sketch(sketch)


def test_epsilon_grows_with_rounds_shrinks_with_noise_and_keeps_the_classic_bound():
    delta = 1e-5
    assert epsilon([], delta) == 0.0
    e = [epsilon([1.0] * t, delta) for t in (1, 5, 10)]
    assert 0 < e[0] < e[1] < e[2]
    assert epsilon([2.0] * 10, delta) < e[2]
    # RDP of the Gaussian mechanism (Mironov 2017): eps <= T*a/(2 z^2) + log(1/delta)/(a - 1) for
    # every order a > 1; the accountant's conversion is at least as tight.
    for z, t in ((1.0, 10), (2.0, 10), (0.5, 3)):
        bound = min(t * a / (2 * z * z) + math.log(1 / delta) / (a - 1) for a in np.linspace(1.01, 200, 20_000))
        assert epsilon([z] * t, delta) <= bound + 1e-6


def test_the_proximal_term_keeps_training_near_the_starting_weights():
    rng = np.random.default_rng(4)
    spec = ModelSpec(sensors=3, window=16)
    view = window_view(rng.normal(size=(600, 3)).astype(np.float32), 16)
    starts = np.arange(0, 580, 2)
    distance = {}
    for mu in (0.0, 10.0):
        torch.manual_seed(0)
        model = build_model(spec)
        before = get_parameters(model)
        train_epochs(model, view, starts, TrainSettings(epochs=3, batch_size=16, lr=1e-2, proximal_mu=mu))
        distance[mu] = np.sqrt(sum(((a - b) ** 2).sum() for a, b in zip(get_parameters(model), before)))
    assert distance[10.0] < 0.7 * distance[0.0]
    with pytest.raises(ValueError):
        TrainSettings(proximal_mu=-1)


@pytest.mark.parametrize(
    "settings, words",
    [
        (dict(strategy="median", min_clients=2), "at least 3 facilities"),
        (dict(strategy="trimmed", min_clients=2), "at least 3 facilities"),
        (dict(strategy="fedadam", dp_noise_multiplier=1.0), "FedAvg or FedProx"),
        (dict(strategy="median", min_clients=3, dp_noise_multiplier=1.0), "FedAvg or FedProx"),
        (dict(strategy="krum"), "unknown strategy"),
        (dict(strategy="trimmed", min_clients=3, trim_fraction=0.5), "below 0.5"),
        (dict(dp_noise_multiplier=0.0), "noise multiplier must be positive"),
        (dict(dp_noise_multiplier=1.0, dp_delta=1.0), "delta"),
        (dict(strategy="fedprox", proximal_mu=-0.1), "mu cannot be negative"),
    ],
)
def test_unsound_choices_are_refused_in_words(settings, words):
    with pytest.raises(ValueError, match=words):
        FederationSettings(**settings)


def test_summaries_beyond_the_bounds_are_refused():
    good = scaling_stats(_files(np.random.default_rng(5)))
    check_stats(good, 3, max_rows=good["rows"])
    with pytest.raises(ValueError, match="more than the facility has"):
        check_stats(good, 3, max_rows=good["rows"] - 1)
    with pytest.raises(ValueError, match="beyond"):
        check_stats({**good, "mean": [1e30, 0.0, 0.0]}, 3)
    with pytest.raises(ValueError, match="malformed"):
        check_stats({**good, "var": [float("inf"), 0.0, 0.0]}, 3)
    sketch = error_sketch(np.arange(1.0, 11.0))
    check_sketch(sketch, max_n=10)
    with pytest.raises(ValueError, match="more than the facility has"):
        check_sketch(sketch, max_n=9)
    with pytest.raises(ValueError, match="outside"):
        check_sketch({**sketch, "v": [1.0] * 8 + [1e30]})


def test_one_facility_cannot_move_the_shared_scaler_without_bound():
    files = _files(np.random.default_rng(6))
    stats = [scaling_stats([f]) for f in files]
    honest = pool_scaler(stats)
    liar = {**stats[0], "mean": [1e11, 1e11, 1e11], "var": [1e20, 1e20, 1e20], "rows": 10**8}
    pooled = pool_scaler([liar] + stats[1:])
    assert np.all(np.isfinite(pooled.mean)) and np.all(np.isfinite(pooled.scale))
    # Clipped to within reach of the others: the scaler moves (here 1e11 without the clip), but
    # by a bounded amount — a few hundred typical spreads at most, whatever the facility claims.
    typical = np.median([np.sqrt(s["var"]) for s in stats], axis=0)
    bound = 2 * POOL_REACH * np.maximum(np.maximum(typical, np.abs(honest.mean)), 1.0)
    assert np.all(np.abs(pooled.mean - honest.mean) < bound) and np.all(pooled.scale < bound)


def test_one_facility_cannot_raise_the_agreed_threshold_without_bound():
    rng = np.random.default_rng(7)
    honest = [error_sketch(rng.gamma(2.0, 0.1, 5_000), (0.995, 1.0)) for _ in range(2)]
    own = max(pooled_threshold([h]) for h in honest)
    liar = error_sketch(np.full(100_000, 1e9), (0.995, 1.0))  # many windows, enormous errors
    for facilities in ([honest[0], liar], honest + [liar]):
        assert pooled_threshold(facilities) <= THRESHOLD_REACH * own
    # With three or more, one facility claiming tiny errors cannot drag it down without
    # bound either.
    tiny = error_sketch(np.full(100_000, 1e-9), (0.995, 1.0))
    assert pooled_threshold(honest + [tiny]) >= min(pooled_threshold([h]) for h in honest) / THRESHOLD_REACH
    # Honest facilities' sketches pool exactly as before (the clip is far from them).
    assert pooled_threshold(honest) == pytest.approx(pooled_quantile(honest, 0.995), rel=1e-9)
