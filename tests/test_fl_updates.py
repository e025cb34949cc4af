"""Every update checked before it counts; bounded settings; finite, atomic checkpoints (issue 14).

Attacking facilities are ClientRunner subclasses; a rogue coordinator is PumpFL's own server
with a tampering step in front of what it sends. Both run on loopback, bounded in count and time.
"""

import json
import shutil
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from flwr.common import (
    Code,
    EvaluateRes,
    FitIns,
    FitRes,
    Parameters,
    Status,
    ndarrays_to_parameters,
    parameters_to_ndarrays,
)
from flwr.server.client_manager import SimpleClientManager
from flwr.server.client_proxy import ClientProxy

from pumpfl_gui.core.dataset import load_sensor_csv
from pumpfl_gui.core.detector import score_data
from pumpfl_gui.core.errors import ModelError, UserError
from pumpfl_gui.core.model import build_model, get_parameters
from pumpfl_gui.core.model_spec import ModelSpec
from pumpfl_gui.core.model_store import load_detector
from pumpfl_gui.core.simulator import generate
from pumpfl_gui.core.windows import Scaler
from pumpfl_gui.fl import checkpoint
from pumpfl_gui.fl import protocol as P
from pumpfl_gui.fl.addresses import find_free_port
from pumpfl_gui.fl.choices import STRATEGIES
from pumpfl_gui.fl.client_runner import ClientRunner
from pumpfl_gui.fl.facility import Facility
from pumpfl_gui.fl.flower import client_codec
from pumpfl_gui.fl.flower import rounds as rounds_module
from pumpfl_gui.fl.flower.strategies import make_strategy
from pumpfl_gui.fl.protocol import FederationSettings, train_settings_from_config
from pumpfl_gui.fl.server_runner import ServerRunner
from pumpfl_gui.fl.update_check import NORM_FACTOR, check_evaluate, check_fit, outlying_norms

from loopback import Run

OK = Status(code=Code.OK, message="ok")
FAST = dict(local_epochs=1, join_timeout=60, round_timeout=60)


# -- one answer at a time -------------------------------------------------------------------


def _global():
    return get_parameters(build_model(ModelSpec(sensors=3)))


def test_a_sound_training_answer_passes_and_each_malformed_one_is_named():
    ref = _global()
    good = [a + 0.01 for a in ref]
    metrics = {"train_loss": 0.2, "epochs": 1, "seconds": 1.5}
    assert check_fit(good, ref, 100, metrics, registered=400) is None
    cases = {
        "non-finite": ([np.full_like(a, np.nan) for a in ref], 100, metrics),
        "infinity": ([a + np.inf for a in ref], 100, metrics),
        "shape": ([ref[0][:1]] + good[1:], 100, metrics),
        "arrays where": (good[:-1], 100, metrics),
        "floating-point": ([a.astype(np.int64) for a in good], 100, metrics),
        "train_loss is not": (good, 100, {**metrics, "train_loss": "low"}),
        "outside the protocol": (good, 100, {**metrics, "rows": 3.0}),
        "no training loss": (good, 100, {"epochs": 1}),
        "claimed 1000000000000": (good, 10**12, metrics),
        "claimed 0": (good, 0, metrics),
        "whole number": (good, 1.5, metrics),
    }
    for words, (arrays, n, m) in cases.items():
        reason = check_fit(arrays, ref, n, m, registered=400)
        assert reason is not None and words in reason, (words, reason)
    assert "registered no" in check_fit(good, ref, 100, metrics, registered=None)


def test_an_evaluation_answer_needs_a_finite_loss_a_bounded_count_and_a_sound_sketch():
    sketch = P.dumps({"n": 500, "p": [0.5, 1.0], "v": [1.0, 2.0], "rule": [0.99, 1.0]})
    assert check_evaluate(0.3, 50, {"eval_loss": 0.3, P.CFG_SKETCH: sketch}, registered=400) is None
    assert "loss" in check_evaluate(float("nan"), 50, {"eval_loss": 0.3}, registered=400)
    assert "loss" in check_evaluate(-1.0, 50, {}, registered=400)
    assert "claimed" in check_evaluate(0.3, 10**9, {}, registered=400)
    huge = P.dumps({"n": 10**8, "p": [0.5, 1.0], "v": [1.0, 2.0], "rule": [0.99, 1.0]})
    assert "more than the facility has" in check_evaluate(0.3, 50, {P.CFG_SKETCH: huge}, registered=400)
    assert "unusable" in check_evaluate(0.3, 50, {P.CFG_SKETCH: "{"}, registered=400)


def test_only_an_update_far_beyond_the_others_is_an_outlier_and_only_among_three():
    assert outlying_norms({"a": 1.0, "b": 3.0, "c": 2.0}) == {}
    odd = outlying_norms({"a": 1.0, "b": 3.0, "c": 2.0, "x": 2.5 * NORM_FACTOR * 2.0})
    assert list(odd) == ["x"] and "times larger" in odd["x"]
    assert outlying_norms({"a": 1.0, "x": 1e6}) == {}  # two: nothing says which is odd


# -- every strategy behind the checks ----------------------------------------------------------


class _Proxy(ClientProxy):
    """Flower's handle on a facility, for feeding a strategy answers directly (nothing is sent)."""

    def get_properties(self, ins, timeout, group_id):
        raise NotImplementedError

    def get_parameters(self, ins, timeout, group_id):
        raise NotImplementedError

    def fit(self, ins, timeout, group_id):
        raise NotImplementedError

    def evaluate(self, ins, timeout, group_id):
        raise NotImplementedError

    def reconnect(self, ins, timeout, group_id):
        raise NotImplementedError


def _answers(ref, rng):
    """Three honest answers and six attackers'. Returns (results, honest arrays and counts)."""
    honest = {f"honest{i}": ([a + rng.normal(0, 0.01, a.shape).astype(a.dtype) for a in ref], 100 * (i + 1)) for i in range(3)}
    loss = {"train_loss": 0.2, "epochs": 1, "seconds": 1.0}
    bad = {
        "nan": ([np.full_like(a, np.nan) for a in ref], 100, loss),
        "claim": ([a + 0.5 for a in ref], 10**12, loss),
        "huge": ([a + 1e3 for a in ref], 100, loss),
        "missing": (ref[:-1], 100, loss),
        "shape": ([a.reshape(-1) for a in ref], 100, loss),
        "text": (ref, 100, {**loss, "train_loss": "abc"}),
    }
    answers = {name: (arrays, n, loss) for name, (arrays, n) in honest.items()} | bad
    results = [(_Proxy(name), FitRes(OK, ndarrays_to_parameters(arrays), n, m)) for name, (arrays, n, m) in answers.items()]
    return results, honest


@pytest.mark.parametrize("strategy, dp", [(s, None) for s in STRATEGIES] + [("fedavg", 0.1), ("fedprox", 0.1)])
def test_every_strategy_drops_the_bad_answers_by_name_and_stays_finite(strategy, dp):
    ref = _global()
    results, honest = _answers(ref, np.random.default_rng(0))
    settings = FederationSettings(min_clients=3, strategy=strategy, dp_noise_multiplier=dp)
    dropped = []
    registered = {name: 400 for name in [proxy.cid for proxy, _ in results]}
    chosen = make_strategy(
        settings,
        ndarrays_to_parameters(ref),
        settings.round_config,
        lambda _: {},
        registered.get,
        lambda rnd, cid, why: dropped.append((rnd, cid, why)),
    )
    manager = SimpleClientManager()
    for proxy, _ in results:
        manager.register(proxy)
    chosen.configure_fit(1, ndarrays_to_parameters(ref), manager)
    failures = []
    aggregated, _ = chosen.aggregate_fit(1, results, failures)
    assert sorted(cid for _, cid, _ in dropped) == sorted(["nan", "claim", "huge", "missing", "shape", "text"])
    assert {rnd for rnd, _, _ in dropped} == {1}
    assert [proxy.cid for proxy, _ in results] == list(honest) and len(failures) == 6  # the server's own lists agree
    model = parameters_to_ndarrays(aggregated)
    assert all(np.all(np.isfinite(a)) for a in model)
    moved = max(float(np.max(np.abs(a - r))) for a, r in zip(model, ref))
    assert moved < 0.2, moved  # near the honest updates (FedAdam: 3e38 with a NaN; FedAvg: the claimer's +0.5)
    # Round 2 starts from that model (FedAdam's is float64; facilities answer in float32): honest
    # answers all count.
    chosen.configure_fit(2, aggregated, manager)
    again = [
        (_Proxy(name), FitRes(OK, ndarrays_to_parameters([a.astype(np.float32) + 0.01 for a in model]), 100, {"train_loss": 0.1}))
        for name in honest
    ]
    before = len(dropped)
    assert chosen.aggregate_fit(2, again, [])[0] is not None and len(dropped) == before
    if strategy == "fedavg" and dp is None:
        total = sum(n for _, n in honest.values())
        expected = [sum(arrays[i] * n for arrays, n in honest.values()) / total for i in range(len(ref))]
        for a, e in zip(model, expected):
            np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-6)


def test_an_unchanged_model_under_differential_privacy_does_not_crash():
    ref = _global()
    settings = FederationSettings(min_clients=2, dp_noise_multiplier=0.5)
    chosen = make_strategy(
        settings,
        ndarrays_to_parameters(ref),
        settings.round_config,
        lambda _: {},
        lambda cid: 400,
        lambda *a: pytest.fail(f"dropped {a}"),
    )
    proxies = [_Proxy("same"), _Proxy("moved")]
    manager = SimpleClientManager()
    for proxy in proxies:
        manager.register(proxy)
    chosen.configure_fit(1, ndarrays_to_parameters(ref), manager)
    loss = {"train_loss": 0.2}
    results = [
        (proxies[0], FitRes(OK, ndarrays_to_parameters(ref), 100, loss)),
        (proxies[1], FitRes(OK, ndarrays_to_parameters([a + 1.0 for a in ref]), 100, loss)),
    ]
    aggregated, _ = chosen.aggregate_fit(1, results, [])
    model = parameters_to_ndarrays(aggregated)
    assert all(np.all(np.isfinite(a)) for a in model)
    # The moved facility's change was clipped to norm 1, then averaged with the unchanged one.
    change = np.sqrt(sum(float(np.sum((a - r) ** 2)) for a, r in zip(model, ref)))
    weights = sum(a.size for a in ref)
    assert change < 0.5 + 4 * np.sqrt(weights) * 0.5 * 1.0 / 2


def test_evaluation_answers_are_checked_too():
    ref = _global()
    settings = FederationSettings(min_clients=2)
    dropped = []
    chosen = make_strategy(
        settings,
        ndarrays_to_parameters(ref),
        settings.round_config,
        lambda _: {},
        lambda cid: 400,
        lambda rnd, cid, why: dropped.append(cid),
    )
    results = [
        (_Proxy("a"), EvaluateRes(OK, 0.3, 40, {"eval_loss": 0.3})),
        (_Proxy("nan"), EvaluateRes(OK, float("nan"), 40, {"eval_loss": float("nan")})),
        (_Proxy("claim"), EvaluateRes(OK, 0.1, 10**9, {"eval_loss": 0.1})),
    ]
    loss, _ = chosen.aggregate_evaluate(1, results, [])
    assert dropped == ["nan", "claim"] and loss == pytest.approx(0.3)


# -- bounded settings --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings, words",
    [
        (dict(local_epochs=10**9), "local epochs"),
        (dict(lr=1e30), "learning rate"),
        (dict(lr=float("nan")), "learning rate"),
        (dict(batch_size=1), "batch size"),
        (dict(stride=10**6), "stride"),
        (dict(rounds=10**9), "rounds"),
        (dict(strategy="fedprox", proximal_mu=1e9), "mu"),
        (dict(window=32, channels=(100_000, 4)), "channel count 100000"),
        (dict(window=32, kernel=4), "kernel"),
        (dict(window=4096), "window"),
    ],
)
def test_the_coordinator_refuses_settings_out_of_bounds(settings, words):
    with pytest.raises(ValueError, match=words):
        FederationSettings(**settings)


def test_the_largest_network_allowed_fits_in_one_message_with_room_to_spare():
    from pumpfl_gui.fl import limits
    from pumpfl_gui.fl.flower.wire import MAX_MESSAGE

    assert limits.MAX_PARAMETERS * 4 <= MAX_MESSAGE / 2  # float32 weights, half a message at most


def test_a_facility_refuses_out_of_bounds_settings_before_allocating_anything(plant):
    data = load_sensor_csv(plant / "client_0.csv")
    with pytest.raises(ValueError, match="channel count 100000 is outside the bounds"):
        Facility(data, ModelSpec(sensors=len(data.sensors), window=32, channels=(100_000, 4), kernel=3))
    with pytest.raises(ValueError, match="weights"):  # each bound alone is fine; together too big
        Facility(data, ModelSpec(sensors=len(data.sensors), window=64, channels=(1024, 1024), kernel=63))
    good = FederationSettings().round_config(1)
    assert train_settings_from_config(good).batch_size == 256
    for key, value, words in (
        (P.CFG_EPOCHS, 10**9, "epochs"),
        (P.CFG_LR, 1e30, "learning rate"),
        (P.CFG_BATCH, 1, "batch"),
        (P.CFG_LR, "fast", "malformed"),
        (P.CFG_MU, float("inf"), "mu"),
    ):
        with pytest.raises(ValueError, match=words):
            train_settings_from_config({**good, key: value})


# -- checkpoints -------------------------------------------------------------------------------


def _save_rounds(out, settings, rounds=2):
    spec = ModelSpec(sensors=3)
    params = _global()
    history = []
    for rnd in range(1, rounds + 1):
        history.append({"round": rnd})
        checkpoint.save(out, rnd, [a + rnd for a in params], spec, ["a", "b", "c"], history, settings)
    return params


def test_a_checkpoint_is_one_private_round_folder_behind_a_pointer(tmp_path):
    settings = FederationSettings(rounds=5)
    params = _save_rounds(tmp_path, settings, rounds=3)
    pointer = json.loads((tmp_path / "state.json").read_text())
    assert pointer["round"] == 3 and pointer["folder"] == "rounds/round-0003"
    assert sorted(p.name for p in (tmp_path / "rounds").iterdir()) == ["round-0002", "round-0003"]
    folder = tmp_path / "rounds" / "round-0003"
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    assert all(oct(f.stat().st_mode & 0o777) == "0o600" for f in folder.rglob("*") if f.is_file())
    state = checkpoint.load(tmp_path, settings)
    assert state.round == 3 and state.sensors == ["a", "b", "c"]
    for a, b in zip(state.parameters, params):
        np.testing.assert_array_equal(a, b + 3)


def test_non_finite_values_are_never_saved(tmp_path):
    settings = FederationSettings(rounds=5)
    spec = ModelSpec(sensors=3)
    bad = [np.full_like(a, np.nan) for a in _global()]
    with pytest.raises(ModelError, match="non-finite"):
        checkpoint.save(tmp_path, 1, bad, spec, ["a", "b", "c"], [{"round": 1}], settings)
    with pytest.raises(ModelError, match="threshold"):
        checkpoint.save(tmp_path, 1, _global(), spec, ["a", "b", "c"], [{"round": 1}], settings, threshold=float("nan"))
    nan_scaler = Scaler(np.array([np.nan, 0.0, 0.0]), np.ones(3))
    with pytest.raises(ModelError, match="scaler"):
        checkpoint.save(tmp_path, 1, _global(), spec, ["a", "b", "c"], [{"round": 1}], settings, scaler=nan_scaler)
    assert not (tmp_path / "state.json").exists()


def test_a_nan_checkpoint_is_refused_on_resume(tmp_path):
    settings = FederationSettings(rounds=5)
    _save_rounds(tmp_path, settings)
    weights = tmp_path / "rounds" / "round-0002" / "global_model" / "weights.npz"
    with np.load(weights) as npz:
        arrays = {k: npz[k] for k in npz.files}
    first = sorted(arrays)[0]
    arrays[first] = np.full_like(arrays[first], np.nan)  # as a NaN round would have left it before the fix
    np.savez(weights, **arrays)
    with pytest.raises(UserError, match="non-finite"):
        checkpoint.load(tmp_path, settings)


def test_a_half_written_round_is_never_resumed(tmp_path):
    settings = FederationSettings(rounds=5)
    _save_rounds(tmp_path, settings)
    # A crash while round 3 was being written: its staging folder exists, the pointer still says 2.
    staging = tmp_path / "rounds" / ".round-0003.x.tmp"
    shutil.copytree(tmp_path / "rounds" / "round-0002", staging)
    (staging / "state.json").unlink()
    assert checkpoint.load(tmp_path, settings).round == 2
    # The pointer names a round whose folder is gone or incomplete: refused in words.
    shutil.rmtree(tmp_path / "rounds" / "round-0002")
    with pytest.raises(UserError, match="round-0002.*missing"):
        checkpoint.load(tmp_path, settings)
    shutil.copytree(staging, tmp_path / "rounds" / "round-0002")
    with pytest.raises(UserError, match="incomplete"):
        checkpoint.load(tmp_path, settings)


@pytest.mark.parametrize(
    "changed, words",
    [
        (dict(window=64), "window"),
        (dict(shared_scaling=True), "shared_scaling"),
        (dict(dp_noise_multiplier=1.0), "differential privacy"),
        (dict(rounds=2), "already done 2 rounds"),
    ],
)
def test_resume_checks_the_saved_settings_against_the_run(tmp_path, changed, words):
    _save_rounds(tmp_path, FederationSettings(rounds=5))
    with pytest.raises(UserError, match=words):
        checkpoint.load(tmp_path, FederationSettings(**{"rounds": 5, **changed}))
    assert checkpoint.load(tmp_path, FederationSettings(rounds=9, min_clients=3, lr=0.01)).round == 2  # other settings may change


def test_the_cli_refuses_a_nan_checkpoint_with_one_line(tmp_path):
    _save_rounds(tmp_path, FederationSettings(rounds=5))
    state = tmp_path / "rounds" / "round-0002" / "state.json"
    saved = json.loads(state.read_text())
    saved["shared_scaler"] = {"mean": [float("nan")] * 3, "scale": [1.0] * 3}
    state.write_text(json.dumps(saved))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pumpfl_gui.cli",
            "server",
            "5",
            "1",
            "--host",
            "127.0.0.1",
            "--port",
            str(find_free_port(28000, "127.0.0.1")),
            "--out",
            str(tmp_path / "new"),
            "--resume",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "error: cannot resume" in proc.stderr + proc.stdout and "non-finite" in proc.stderr + proc.stdout


# -- on loopback: attacking facilities -----------------------------------------------------------


@pytest.fixture(scope="module")
def plant(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plant")
    generate(folder)
    small = folder / "small.csv"
    lines = (folder / "client_0.csv").read_text().splitlines(keepends=True)
    small.write_text("".join(lines[:3001]))
    return folder


class Attacker(ClientRunner):
    """A facility that answers each round's training with a forged update instead of training.

    ``attack``: nan | shape | missing | text | claim | huge."""

    attack = ""

    def _train(self, ins):
        arrays = list(self._global_parameters(ins))  # as sent, or the one it holds (P.CFG_HELD)
        n, metrics = self.facility.samples, {"train_loss": 0.1, "epochs": 1, "seconds": 0.1}
        if self.attack == "nan":
            arrays = [np.full_like(a, np.nan) for a in arrays]
        elif self.attack == "shape":
            arrays = [a.reshape(-1) for a in arrays]
        elif self.attack == "missing":
            arrays = arrays[:-1]
        elif self.attack == "text":
            metrics["train_loss"] = "very low"
        elif self.attack == "claim":
            n = 10**12
        elif self.attack == "huge":
            arrays = [a + np.float32(1e3) for a in arrays]
        return client_codec.reply_trained(arrays, n, metrics)  # what the wire carries, forged


ATTACKS = ("nan", "shape", "missing", "text", "claim", "huge")


def test_attackers_are_dropped_by_name_and_the_honest_models_still_catch_failures(plant, tmp_path):
    honest = {"small": plant / "client_0.csv", "large": plant / "client_2.csv"}
    # Two local epochs: after one, "small"'s model scores its failure 1 % under its threshold
    # even with no attacker in the run (the initial weights no longer depend on thread timing).
    settings = FederationSettings(rounds=2, min_clients=len(honest) + len(ATTACKS), **{**FAST, "local_epochs": 2})
    run = Run(tmp_path, settings)
    for name, csv in honest.items():
        run.add(name, csv, personalise=True)  # the models people would use
    for attack in ATTACKS:
        run.add(attack, plant / "small.csv", type(f"Attacker_{attack}", (Attacker,), {"attack": attack}))
    run.join()
    assert run.results["server"].kind == "Finished" and run.results["server"].rounds_completed == 2
    dropped = run.of("server", "FacilityDropped")
    assert sorted((d.round, d.name) for d in dropped) == sorted((r, a) for r in (1, 2) for a in ATTACKS)
    reasons = {d.name: d.reason for d in dropped}
    assert "non-finite" in reasons["nan"] and "shape" in reasons["shape"] and "arrays" in reasons["missing"]
    assert "train_loss" in reasons["text"] and "1000000000000" in reasons["claim"] and "times larger" in reasons["huge"]
    history = json.loads((tmp_path / "server" / "history.json").read_text())["rounds"]
    for record in history:
        assert set(record["dropped"]) == set(ATTACKS)
        trained = {name for name, c in record["per_client"].items() if "train_loss" in c}
        assert trained == set(honest)  # a dropped update counts nowhere, not even in the mean loss
        assert np.isfinite(record["train_loss"])
    glob = load_detector(tmp_path / "server" / "global_model")
    assert all(np.all(np.isfinite(p.detach().numpy())) for p in glob.model.parameters())
    for name, csv in honest.items():
        assert run.results[name].kind == "Finished"
        mine = load_detector(tmp_path / name)
        assert np.isfinite(mine.threshold) and mine.threshold > 0
        result = score_data(mine, load_sensor_csv(csv, sensors=mine.sensors))
        failures = result.metrics["failures"]
        assert failures["failures"] >= 1 and failures["caught"] == failures["failures"], failures


# -- on loopback: a rogue coordinator ----------------------------------------------------------


class _Tampering:
    """A strategy that hands each named facility something a coordinator must never send."""

    def __init__(self, inner, names):
        self.inner, self.names = inner, names

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def configure_fit(self, server_round, parameters, client_manager):
        forged = []
        for proxy, ins in self.inner.configure_fit(server_round, parameters, client_manager):
            config, params = dict(ins.config), ins.parameters
            who = self.names.get(proxy.cid, "")
            if who == "nanparams":
                params = ndarrays_to_parameters([np.full_like(a, np.nan) for a in parameters_to_ndarrays(params)])
            elif who in ("nanscaler", "infscale"):
                scaler = json.loads(config[P.CFG_SCALER])
                scaler["mean" if who == "nanscaler" else "scale"][0] = float("nan" if who == "nanscaler" else "inf")
                config[P.CFG_SCALER] = json.dumps(scaler)
            elif who == "hotlr":
                config[P.CFG_LR] = 1e30
            elif who == "heldlie":  # "train from the model you hold" when it holds none (or another)
                params, config[P.CFG_HELD] = Parameters(tensors=[], tensor_type="numpy.ndarray"), "0" * 32
            forged.append((proxy, FitIns(params, config)))
        return forged


def test_facilities_refuse_what_a_rogue_coordinator_sends_and_save_nothing(plant, tmp_path, monkeypatch):
    real = rounds_module.make_strategy
    run_box = {}
    monkeypatch.setattr(
        rounds_module, "make_strategy", lambda *a, **k: _Tampering(real(*a, **k), run_box["run"].server.manager.names)
    )
    victims = ("nanparams", "nanscaler", "infscale", "hotlr", "heldlie")
    run = Run(
        tmp_path,
        FederationSettings(
            rounds=1, min_clients=len(victims), shared_scaling=True, local_epochs=1, join_timeout=60, round_timeout=60
        ),
    )
    run_box["run"] = run
    for name in victims:
        run.add(name, plant / "small.csv")
    deadline = time.monotonic() + 120
    while not all(name in run.results for name in victims) and time.monotonic() < deadline:
        time.sleep(0.1)
    run.server.stop()
    run.join()
    messages = {name: run.results[name] for name in victims}
    assert all(m.kind == "Failed" and "this facility stopped rather than use it" in m.message for m in messages.values()), (
        messages
    )
    assert "non-finite" in messages["nanparams"].message
    assert "shared scaler" in messages["nanscaler"].message and "shared scaler" in messages["infscale"].message
    assert "learning rate 1e+30" in messages["hotlr"].message
    assert "a round without its model, naming one this facility does not hold" in messages["heldlie"].message
    assert not any(run.of(name, "FitResult") for name in victims)  # nothing was trained on it
    assert not any((tmp_path / name).exists() for name in victims)  # and no model saved


class _NanThreshold(ServerRunner):
    """A coordinator that agrees a NaN threshold (which would never alarm)."""

    def _tell_threshold(self, threshold):
        super()._tell_threshold(float("nan"))


def test_a_facility_keeps_its_own_threshold_when_the_agreed_one_is_nan(plant, tmp_path):
    run = Run(tmp_path, FederationSettings(rounds=1, min_clients=1, shared_scaling=True, **FAST))
    run.server.__class__ = _NanThreshold  # the same server, now lying about the threshold
    run.add("a", plant / "client_0.csv")
    run.join()
    assert run.results["a"].kind == "Finished"
    said = [e.detail for e in run.of("a", "ConnectionState") if e.state == "agreed"]
    assert any("unusable anomaly threshold (nan)" in d and "keeps its own" in d for d in said), said
    mine = load_detector(tmp_path / "a")
    assert np.isfinite(mine.threshold) and mine.threshold > 0 and mine.info.get("threshold") != "agreed"
    result = score_data(mine, load_sensor_csv(plant / "client_0.csv", sensors=mine.sensors))
    assert result.threshold == mine.threshold and 0 < result.flags.mean() < 0.2  # it alarms, and not everywhere


def test_a_facility_refuses_a_network_of_100000_channels_in_words(plant, tmp_path):
    settings = FederationSettings(rounds=1, min_clients=1, window=32, **FAST)
    object.__setattr__(settings, "channels", (100_000, 4))  # a rogue coordinator skips its own checks
    run = Run(tmp_path, settings)
    run.add("a", plant / "small.csv")
    deadline = time.monotonic() + 60
    while "a" not in run.results and time.monotonic() < deadline:
        time.sleep(0.1)
    run.server.stop()
    run.join()
    assert run.results["a"].kind == "Failed"
    assert "channel count 100000 is outside the bounds 1-1,024" in run.results["a"].message


def test_a_resumed_run_keeps_its_join_code_unless_asked_for_a_new_one(tmp_path):
    from pumpfl_gui.fl.server_runner import ServerOptions

    def start(out, **options):
        server = ServerRunner(
            FederationSettings(rounds=5, min_clients=1, join_timeout=1),
            ServerOptions(
                host="127.0.0.1", port=find_free_port(29000, "127.0.0.1"), out_dir=out, identity_dir=tmp_path / "id", **options
            ),
        )
        t = threading.Thread(target=server.run)
        t.start()
        assert server.ready.wait(20)
        code = server.invite.join_code
        server.stop()
        t.join(30)
        return code

    first = start(tmp_path / "run")
    _save_rounds(tmp_path / "run", FederationSettings(rounds=5))
    assert start(tmp_path / "again", resume=tmp_path / "run") == first
    fresh = start(tmp_path / "fresh", resume=tmp_path / "run", new_code=True)
    assert fresh and fresh != first
