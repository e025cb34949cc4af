"""Training one facility (or pooled rows) in rounds, as a federation would (bench; no Qt)."""

from __future__ import annotations

from collections.abc import Callable

from ..core.model import build_model, get_parameters
from ..core.runtime import seed_everything
from ..fl.facility import Facility
from ..fl.protocol import FederationSettings


def train_rounds(
    facility: Facility,
    settings: FederationSettings,
    seed: int,
    name: str,
    lo: float,
    hi: float,
    report: Callable[[str, float], None],
) -> tuple[list, list[float]]:
    """``rounds`` blocks of ``local_epochs`` epochs with no one to average with; the held-out
    loss after each block, so the curve sits beside a federation's loss per round."""
    seed_everything(seed)
    params = get_parameters(build_model(facility.spec))
    curve = []
    for rnd in range(1, settings.rounds + 1):
        report(f"{name}: round {rnd}/{settings.rounds}", lo + (hi - lo) * (rnd - 1) / settings.rounds)
        params, _, _ = facility.fit(params, settings.round_config(rnd))
        curve.append(round(facility.evaluate(params)[0], 6))
    return params, curve
