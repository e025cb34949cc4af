"""Training in rounds: a real federation on loopback, or one facility (or pooled rows) alone
in the same rounds, so their loss curves compare (bench; no Qt)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import UserError
from ..core.model import build_model, get_parameters
from ..core.runtime import seed_everything
from ..core.windows import Scaler
from ..fl import checkpoint
from ..fl.choices import STRATEGIES
from ..fl.events import Failed, RoundFinished
from ..fl.facility import Facility
from ..fl.loopback_federation import LoopbackFederation
from ..fl.protocol import FederationSettings


@dataclass
class FederationRun:
    """What a loopback federation leaves for scoring and for the record."""

    params: list  # the global model's parameters
    curve: list[float]  # the global evaluation loss per round
    per_facility: dict[str, list[float]]  # each facility's evaluation loss per round
    scaler: Scaler | None = None  # the agreed scaler (shared scaling)
    threshold: float | None = None  # the agreed threshold, after the last round (shared scaling)
    epsilons: list[float] = field(default_factory=list)  # epsilon spent after each round (DP)

    @property
    def epsilon(self) -> float | None:
        return self.epsilons[-1] if self.epsilons else None


def federate(
    settings: FederationSettings,
    csvs: Sequence[Path | Sequence[Path]],
    names: list[str],
    report: Callable[[str, float], None],
    lo: float,
    hi: float,
    train_rows: int | None = None,
    seed: int = 0,
) -> FederationRun:
    """A server and one facility per entry of ``csvs`` on loopback, run with ``settings``'
    strategy, differential privacy and shared scaling; ``seed`` for the starting model and every
    facility's training."""
    run = FederationRun([], [], {name: [] for name in names})

    def on_event(who: str, event) -> None:
        if who == "server" and isinstance(event, RoundFinished):
            run.curve.append(None if event.eval_loss is None else round(float(event.eval_loss), 6))
            for name, figures in event.per_client.items():
                if name in run.per_facility and figures.get("eval_loss") is not None:
                    run.per_facility[name].append(round(float(figures["eval_loss"]), 6))
            if event.epsilon is not None:
                run.epsilons.append(round(float(event.epsilon), 4))
            if event.agreed_threshold is not None:
                run.threshold = float(event.agreed_threshold)
            report(f"federated: round {event.round}/{event.rounds}", lo + (hi - lo) * event.round / event.rounds)

    report(f"federated: a server and {len(csvs)} facilities on loopback", lo)
    with tempfile.TemporaryDirectory(prefix="pumpfl-bench-") as tmp:
        result = LoopbackFederation(settings, csvs, Path(tmp), on_event, names=names, train_rows=train_rows, seed=seed).run()
        if isinstance(result, Failed):
            raise UserError(f"the federation failed: {result.message}")
        state = checkpoint.load(Path(tmp) / "server")
    run.params, run.scaler = state.parameters, state.scaler
    if settings.shared_scaling and (run.scaler is None or run.threshold is None):
        raise UserError("the federation used shared scaling but agreed no scaler or threshold")
    return run


def choice_record(settings: FederationSettings, run: FederationRun) -> dict:
    """The coordinator's choice and what it cost, for a benchmark's JSON: the strategy and its
    setting, differential privacy (None when off) with the epsilon spent, shared scaling."""
    strategy = STRATEGIES[settings.strategy]
    dp = None
    if settings.dp_noise_multiplier is not None:
        dp = {
            "noise_multiplier": settings.dp_noise_multiplier,
            "clipping_norm": settings.dp_clipping_norm,
            "delta": settings.dp_delta,
            "epsilon": run.epsilon,
            "epsilon_per_round": run.epsilons,
        }
    return {
        "strategy": strategy.name,
        "setting": {strategy.setting: getattr(settings, strategy.setting)} if strategy.setting else {},
        "dp": dp,
        "shared_scaling": settings.shared_scaling,
        "agreed_threshold": None if run.threshold is None else round(run.threshold, 6),
    }


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
