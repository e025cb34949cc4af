"""What the coordinator says against a choice (fl/choices.caution) follows what was measured:
every federated option that lost more than 0.02 F1 against each file alone on SKAB is cautioned
with its figures, and none that kept within 0.02 is (docs/bench, from `pumpfl bench report`)."""

import json
from pathlib import Path

import pytest

from pumpfl_gui.fl.choices import DP_NOISE_PER_FACILITY, SKAB_DP_F1, SKAB_LOCAL_F1, SKAB_SHARED_F1, caution
from pumpfl_gui.fl.protocol import FederationSettings

BENCH = Path(__file__).resolve().parents[1] / "docs" / "bench"
FACILITIES = 3  # SKAB's development set: valve1, valve2 and the anomaly-free run


def _measured():
    variants = json.loads((BENCH / "skab_variants.json").read_text())
    local = json.loads((BENCH / "skab_local.json").read_text())
    return variants["rows"], local["f1"]


def _settings(choice: dict) -> FederationSettings:
    dp = choice.get("dp") or {}
    return FederationSettings(
        min_clients=FACILITIES,
        strategy=choice["strategy"],
        dp_noise_multiplier=dp.get("noise_multiplier"),
        shared_scaling=choice["shared_scaling"],
        **choice.get("setting", {}),
    )


def test_the_figures_quoted_are_the_measured_ones():
    rows, local_f1 = _measured()
    assert round(local_f1, 3) == SKAB_LOCAL_F1
    dp = {r["choice"]["dp"]["noise_multiplier"]: r["f1"] for r in rows if r["choice"].get("dp")}
    assert {z: round(f, 3) for z, f in dp.items()} == SKAB_DP_F1
    (shared,) = [r["f1"] for r in rows if r["choice"]["shared_scaling"]]
    assert round(shared, 3) == SKAB_SHARED_F1


def test_every_option_that_lost_more_than_002_is_cautioned_and_no_other():
    rows, local_f1 = _measured()
    assert len(rows) >= 10
    for row in rows:
        words = caution(_settings(row["choice"]))
        lost = row["f1"] < local_f1 - 0.02
        assert (words is not None) == lost, (row["label"], row["f1"], local_f1, words)
        if lost:
            assert f"each file alone: {SKAB_LOCAL_F1:.3f}" in words  # with the measured figures, not just a warning


@pytest.mark.parametrize("facilities", [3, 10])
def test_privacy_is_cautioned_above_the_measured_noise_per_facility(facilities):
    at_bound = FederationSettings(min_clients=facilities, dp_noise_multiplier=DP_NOISE_PER_FACILITY * facilities)
    assert caution(at_bound) is None
    above = FederationSettings(min_clients=facilities, dp_noise_multiplier=DP_NOISE_PER_FACILITY * facilities * 1.5)
    words = caution(above)
    assert words.startswith("differential privacy at noise") and f"{SKAB_DP_F1[0.1]:.3f} at noise 0.1" in words
    assert f"at most {DP_NOISE_PER_FACILITY:g} x the facilities" in words
