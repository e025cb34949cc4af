"""What federating gave a facility: its rows trained alone beside the federation (fl/alone.py)."""

import json

import numpy as np
import pytest

from pumpfl_gui.bench.rounds import train_rounds
from pumpfl_gui.core.data_fit import spec_for
from pumpfl_gui.core.dataset import load_sensor_csv
from pumpfl_gui.core.detector import score_data
from pumpfl_gui.core.metrics import headline_figures
from pumpfl_gui.core.model_store import load_detector
from pumpfl_gui.fl.alone import comparison_rows, keep_which, kept_sentence
from pumpfl_gui.fl.facility import Facility
from pumpfl_gui.fl.protocol import FederationSettings

from loopback import Run

FAST = dict(local_epochs=1, join_timeout=60, round_timeout=60)


def test_a_facility_compares_the_federated_model_with_its_rows_trained_alone_in_the_same_rounds(plant, tmp_path):
    settings = FederationSettings(rounds=2, min_clients=2, **FAST)
    run = Run(tmp_path, settings)
    run.add("a", plant / "client_0.csv", compare=True)
    run.add("b", plant / "client_1.csv")  # without the comparison: nothing more is trained or written
    run.join()
    assert run.results["a"].kind == "Finished" and run.results["a"].complete
    comparison = json.loads((tmp_path / "a" / "comparison.json").read_text())
    assert not (tmp_path / "b" / "comparison.json").exists() and not (tmp_path / "b" / "alone").exists()
    assert comparison["rounds"] == 2 and comparison["data_file"] == "client_0.csv"
    assert run.clients["a"].comparison == comparison

    # The model trained alone is what one facility gets from the same rounds with no one to
    # average with (the benchmarks' "alone" mode), weight for weight.
    data = load_sensor_csv(plant / "client_0.csv")
    alone = load_detector(tmp_path / "a" / "alone")
    expected, _ = train_rounds(Facility(data, spec_for(data), "a"), settings, 0, "alone", 0, 1, lambda *_: None)
    for got, want in zip(alone.model.state_dict().values(), expected):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-6)
    federated = load_detector(tmp_path / "a")
    assert alone.info["model"] == "trained alone" and federated.info["model"] == "global"
    assert not all(np.array_equal(x, y) for x, y in zip(alone.model.state_dict().values(), federated.model.state_dict().values()))

    # The figures are those of the two saved models, each scored on the facility's file.
    for name, folder in (("alone", tmp_path / "a" / "alone"), ("federated", tmp_path / "a")):
        scored = headline_figures(score_data(load_detector(folder), data).metrics)
        assert {k: comparison[name][k] for k in scored} == scored
    assert comparison["alone"]["failures"] == 1 and comparison["keep"] in ("alone", "federated")
    assert comparison["kept_model"] == comparison["models"][comparison["keep"]]
    finishing = [e.detail for e in run.of("a", "ConnectionState") if e.state == "finishing"]
    assert finishing[-1].startswith("comparing the federated model with the one trained alone")


def test_a_facility_stopped_mid_run_compares_at_once_with_the_rounds_trained_alone_so_far(plant, tmp_path):
    run = Run(tmp_path, FederationSettings(rounds=20, min_clients=2, **FAST))
    run.add("a", plant / "client_0.csv", compare=True)
    run.add("b", plant / "client_0.csv")
    run.stop_after("a", evaluated=2)
    assert run.results["a"].message == "stopped"
    comparison = json.loads((tmp_path / "a" / "comparison.json").read_text())
    assert 1 <= comparison["rounds"] <= run.results["a"].rounds_completed + 1
    assert load_detector(tmp_path / "a" / "alone").info["model"] == "trained alone"


def _figures(**given):
    base = dict(
        failures=2, caught=2, median_lead_hours=3.0, false_alarms=1, false_alarms_per_day=0.2, labelled_events=2,
        labelled_caught=2, false_alarm_pct=1.0, roc_auc=0.95,
    )  # fmt: skip
    return {**base, **given}


@pytest.mark.parametrize(
    ("alone", "federated", "keep", "words"),
    [
        (
            _figures(caught=1),
            _figures(),
            "federated",
            "the federated model catches 2 failures on your file, the model trained alone 1",
        ),
        (_figures(), _figures(caught=1), "alone", "the model trained alone catches 2 failures"),
        (_figures(false_alarms=0), _figures(), "alone", "raises fewer false alarms (0 against 1 for the federated model)"),
        (_figures(median_lead_hours=2.0), _figures(), "federated", "warns earlier (3.0 h against 2.0 h)"),
        (_figures(roc_auc=0.955), _figures(), "federated", "about the same"),  # 0.005 of ROC-AUC decides nothing
        (_figures(roc_auc=0.97), _figures(), "alone", "ranks readings better (ROC-AUC 0.970 against 0.950)"),
        # SKAB-like files: labelled anomalies, no machine status
        (
            _figures(failures=None, caught=None, false_alarms=None, false_alarms_per_day=None, labelled_caught=1),
            _figures(failures=None, caught=None, false_alarms=None, false_alarms_per_day=None, false_alarm_pct=9.0),
            "federated",
            "catches 2 labelled anomalies",
        ),
        (_figures(failures=0, labelled_events=0), _figures(failures=0, labelled_events=0), "federated", "nothing to judge"),
    ],
)
def test_the_model_kept_for_monitor_is_the_better_one_on_the_facility_s_own_file(alone, federated, keep, words):
    chosen, why = keep_which(alone, federated)
    if words == "nothing to judge":
        words = "no failures or labelled anomalies to judge by"
    assert chosen == keep and words in why, why
    comparison = {"alone": alone, "federated": federated, "keep": chosen, "why": why}
    assert kept_sentence(comparison).startswith(
        f"Kept for Monitor: the {'model trained alone' if keep == 'alone' else 'federated model'}. "
    )
    assert all(len(row) == 3 for row in comparison_rows(comparison))
