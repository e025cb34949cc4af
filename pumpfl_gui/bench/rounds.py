"""Training in rounds: a real federation on loopback, or one facility (or pooled rows) alone
in the same rounds, so their loss curves compare (bench; no Qt)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from ..core.errors import UserError
from ..core.model import build_model, get_parameters
from ..core.runtime import seed_everything
from ..fl import checkpoint
from ..fl.events import RoundFinished
from ..fl.facility import Facility
from ..fl.local_demo import LocalFederation
from ..fl.protocol import FederationSettings


def federate(
    settings: FederationSettings,
    csvs: Sequence[Path | Sequence[Path]],
    names: list[str],
    report: Callable[[str, float], None],
    lo: float,
    hi: float,
    train_rows: int | None = None,
) -> tuple[list, list[float], dict[str, list[float]]]:
    """A server and one facility per entry of ``csvs`` on loopback; the global parameters, the
    global evaluation loss per round and each facility's own."""
    curve: list[float] = []
    per_facility: dict[str, list[float]] = {name: [] for name in names}

    def on_event(who: str, event) -> None:
        if who == "server" and isinstance(event, RoundFinished):
            curve.append(None if event.eval_loss is None else round(float(event.eval_loss), 6))
            for name, figures in event.per_client.items():
                if name in per_facility and figures.get("eval_loss") is not None:
                    per_facility[name].append(round(float(figures["eval_loss"]), 6))
            report(f"federated: round {event.round}/{event.rounds}", lo + (hi - lo) * event.round / event.rounds)

    report(f"federated: a server and {len(csvs)} facilities on loopback", lo)
    with tempfile.TemporaryDirectory(prefix="pumpfl-bench-") as tmp:
        result = LocalFederation(settings, csvs, Path(tmp), on_event, names=names, train_rows=train_rows).run()
        if result.kind == "Failed":
            raise UserError(f"the federation failed: {result.message}")
        params = checkpoint.load(Path(tmp) / "server").parameters
    return params, curve, per_facility


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
