"""Strategies beyond FedAvg, differential privacy and shared scaling, on real
loopback federations."""

import json

import numpy as np
import pytest
from flwr.common import ndarrays_to_parameters, parameters_to_ndarrays, serde
from flwr.proto.transport_pb2 import ClientMessage

from pumpfl_gui.core.data_fit import detection_for, spec_for
from pumpfl_gui.core.dataset import load_sensor_csv
from pumpfl_gui.core.detector import score_data
from pumpfl_gui.core.model import build_model, get_parameters
from pumpfl_gui.core.model_store import load_detector
from pumpfl_gui.core.runtime import seed_everything
from pumpfl_gui.core.simulator import generate
from pumpfl_gui.core.windows import Scaler
from pumpfl_gui.fl import checkpoint
from pumpfl_gui.fl.choices import STRATEGIES
from pumpfl_gui.fl.client_runner import ClientRunner
from pumpfl_gui.fl.facility import Facility
from pumpfl_gui.fl.protocol import FederationSettings

from loopback import Run

FAST = dict(local_epochs=2, batch_size=32, join_timeout=60, round_timeout=60)  # enough steps to learn on 4,000 rows
ROWS = 4000


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    """Three facilities: the first rows of three different default facilities."""
    full = tmp_path_factory.mktemp("full")
    generate(full)
    folder = tmp_path_factory.mktemp("sites")
    csvs = []
    for i in (0, 3, 4):
        lines = (full / f"client_{i}.csv").read_text().splitlines(keepends=True)
        csv = folder / f"site_{i}.csv"
        csv.write_text("".join(lines[: ROWS + 1]))
        csvs.append(csv)
    return csvs


class GarbageRunner(ClientRunner):
    """A facility that trains honestly, then sends its parameters multiplied by a million."""

    def _train(self, ins):
        res = serde.fit_res_from_proto(super()._train(ins).fit_res)
        res.parameters = ndarrays_to_parameters([a * 1e6 for a in parameters_to_ndarrays(res.parameters)])
        return ClientMessage(fit_res=serde.fit_res_to_proto(res))


def federate(tmp, settings, csvs, garbage=()):
    run = Run(tmp, settings)
    for csv in csvs:
        run.add(csv.stem, csv, GarbageRunner if csv.stem in garbage else ClientRunner)
    run.join()
    assert run.results["server"].kind == "Finished", run.results["server"]
    return run


def untrained_loss(csv, settings):
    """The held-out loss of the model every run starts from (the server's seed 0)."""
    data = load_sensor_csv(csv)
    facility = Facility(data, spec_for(data))  # the shape follows the data, as in the federation
    seed_everything(0)
    return facility.evaluate(get_parameters(build_model(facility.spec)))[0]


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_every_strategy_trains_three_facilities(sites, tmp_path, strategy):
    # FedAdam's first server steps are small (Adam's bias correction): give it a third round.
    n = 3 if strategy == "fedadam" else 2
    settings = FederationSettings(rounds=n, min_clients=3, strategy=strategy, proximal_mu=0.05, **FAST)
    run = federate(tmp_path, settings, sites)
    rounds = run.of("server", "RoundFinished")
    assert [r.round for r in rounds] == list(range(1, n + 1))
    assert all(set(r.per_client) == {c.stem for c in sites} for r in rounds)
    assert rounds[-1].eval_loss < rounds[0].eval_loss < 1.5 * untrained_loss(sites[0], settings)
    assert all(r.epsilon is None and r.agreed_threshold is None for r in rounds)
    history = json.loads((tmp_path / "server" / "history.json").read_text())["rounds"]
    assert {h["strategy"] for h in history} == {strategy}
    # The facilities learned the strategy (and FedProx's mu) from the server.
    for site in sites:
        fits = run.of(site.stem, "FitResult")
        assert [f.strategy for f in fits] == [strategy] * n
        assert [f.proximal_mu for f in fits] == [0.05 if strategy == "fedprox" else 0.0] * n


def test_a_facility_sending_garbage_is_dropped_and_no_strategy_is_wrecked(sites, tmp_path):
    # Before the server checked updates (fl/update_check.py), FedAvg's model was wrecked here:
    # its error orders of magnitude above the clean run's. Now the garbage is dropped by name.
    honest = [s.stem for s in sites[:2]]
    final = {}
    for strategy, garbage in (
        ("fedavg", ()),
        ("fedavg", (sites[2].stem,)),
        ("median", (sites[2].stem,)),
        ("trimmed", (sites[2].stem,)),
    ):
        settings = FederationSettings(rounds=2, min_clients=3, strategy=strategy, **FAST)
        run = federate(tmp_path / f"{strategy}-{len(garbage)}", settings, sites, garbage=garbage)
        final[strategy if garbage else "clean"] = run.of("server", "RoundFinished")[-1].per_client
        dropped = run.of("server", "FacilityDropped")
        assert [(d.round, d.name) for d in dropped] == [(r, g) for r in (1, 2) for g in garbage]
        assert all("times larger than the others'" in d.reason for d in dropped)
    for name in honest:
        clean = final["clean"][name]["eval_loss"]
        # Every strategy's model serves the honest facilities about as well as without the garbage.
        for strategy in ("fedavg", "median", "trimmed"):
            assert final[strategy][name]["eval_loss"] < 1.25 * clean, (strategy, final[strategy][name], clean)


def test_differential_privacy_adds_the_stated_noise_and_counts_epsilon(sites, tmp_path):
    from dp_accounting import dp_event
    from dp_accounting.rdp import RdpAccountant

    z, clip = 1.0, 1.0
    settings = FederationSettings(rounds=2, min_clients=2, dp_noise_multiplier=z, dp_clipping_norm=clip, dp_delta=1e-5, **FAST)
    run = federate(tmp_path, settings, sites[:2])
    rounds = run.of("server", "RoundFinished")
    for r in rounds:
        accountant = RdpAccountant()
        accountant.compose(dp_event.SelfComposedDpEvent(dp_event.GaussianDpEvent(z), r.round))
        assert r.epsilon == pytest.approx(accountant.get_epsilon(1e-5))
    assert 0 < rounds[0].epsilon < rounds[1].epsilon
    history = json.loads((tmp_path / "server" / "history.json").read_text())["rounds"]
    assert [h["epsilon"] for h in history] == [r.epsilon for r in rounds] and history[-1]["delta"] == 1e-5
    # Each round adds Gaussian noise of sd z * clip / n to every weight, while the facilities'
    # clipped changes move the model by at most clip per round: after two rounds the model sits
    # about sqrt(2 * weights) * sd from where it started.
    data = load_sensor_csv(sites[0])
    seed_everything(0)
    start = get_parameters(build_model(spec_for(data)))
    final = checkpoint.load(tmp_path / "server").parameters
    moved = np.sqrt(sum(((a - b) ** 2).sum() for a, b in zip(final, start)))
    weights = sum(a.size for a in start)
    expected = np.sqrt(2 * weights) * z * clip / 2
    assert expected - 2 * clip - 0.1 * expected < moved < expected + 2 * clip + 0.1 * expected


def test_shared_scaling_agrees_one_scaler_and_one_threshold(sites, tmp_path):
    settings = FederationSettings(rounds=2, min_clients=2, shared_scaling=True, **FAST)
    run = federate(tmp_path, settings, sites[:2])
    last = run.of("server", "RoundFinished")[-1]
    # The scaler pooled from aggregates is the one fitted on both facilities' rows together.
    parts = [load_sensor_csv(csv) for csv in sites[:2]]
    together = Scaler.fit(np.concatenate([p.values[p.train_mask()] for p in parts]))
    models = [load_detector(tmp_path / csv.stem) for csv in sites[:2]]
    glob = load_detector(tmp_path / "server" / "global_model")
    for model in models + [glob]:
        np.testing.assert_allclose(model.scaler.mean, together.mean, rtol=1e-9)
        np.testing.assert_allclose(model.scaler.scale, together.scale, rtol=1e-9)
        assert model.threshold == pytest.approx(last.agreed_threshold)
    # The agreed threshold is the facilities' rule (the quantile and factor their history calls
    # for) applied to all their training scores together, each in its own spreads.
    scores = np.concatenate([glob.training_scores(p) for p in parts])
    rule = detection_for(parts[0], glob.spec.window)
    assert last.agreed_threshold == pytest.approx(np.quantile(scores, rule.quantile) * rule.factor, rel=0.05)
    # The global model now scores a facility's file as it stands: no recalibration.
    result = score_data(glob, load_sensor_csv(sites[0], sensors=glob.sensors))
    assert result.threshold == pytest.approx(last.agreed_threshold)
    assert [e.detail for e in run.of(sites[0].stem, "ConnectionState") if e.state == "agreed"][-1].startswith(
        "the facilities agreed"
    )


def test_a_resumed_run_keeps_its_shared_scaler(sites, tmp_path):
    first = FederationSettings(rounds=1, min_clients=2, shared_scaling=True, **FAST)
    federate(tmp_path, first, sites[:2])
    kept = checkpoint.load(tmp_path / "server").scaler
    run = Run(
        tmp_path / "again", FederationSettings(rounds=2, min_clients=1, shared_scaling=True, **FAST), resume=tmp_path / "server"
    )
    run.add(sites[2].stem, sites[2])  # another facility alone: its own rows would give another scaler
    run.join()
    assert run.results["server"].kind == "Finished" and [r.round for r in run.of("server", "RoundFinished")] == [2]
    mine = load_detector(tmp_path / "again" / sites[2].stem)
    np.testing.assert_array_equal(mine.scaler.mean, kept.mean)
    np.testing.assert_array_equal(mine.scaler.scale, kept.scale)
