"""The coordinator's choices side by side: the pump and SKAB benchmarks' federated mode once per
strategy, differential-privacy level and shared scaling (bench; no Qt).

Every row keeps everything else of its benchmark (data, rounds, epochs, seed, scoring rules);
only the choice differs, so a row against FedAvg's shows what that choice costs or gains.
Each row's one-line explanation comes from ``fl/choices.py``, where the choice is made.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from ..core.errors import UserError
from ..fl.choices import DP_LINE, SHARED_SCALING_LINE, STRATEGIES
from ..fl.protocol import FederationSettings
from .machine import machine
from .pump import facility_csvs, run_pump
from .skab import SkabSettings, run_skab

Progress = Callable[[str, float], None]

_DEFAULT = FederationSettings()
# FedAvg with neither privacy nor shared scaling; each variant changes only its own fields.
PLAIN = {"strategy": "fedavg", "dp_noise_multiplier": None, "shared_scaling": False}
DP = {"dp_clipping_norm": 1.0, "dp_delta": 1e-5}


@dataclass(frozen=True)
class Variant:
    key: str
    choice: dict  # FederationSettings fields beyond PLAIN's

    @property
    def fields(self) -> dict:
        return {**PLAIN, **self.choice}

    @property
    def label(self) -> str:
        strategy = STRATEGIES[self.fields["strategy"]]
        text = strategy.title
        if strategy.setting in self.choice:
            text += f" ({strategy.setting_label} {self.choice[strategy.setting]:g})"
        if self.fields["dp_noise_multiplier"] is not None:
            text += f" + DP, noise multiplier {self.fields['dp_noise_multiplier']:g}"
        if self.fields["shared_scaling"]:
            text += " + shared scaling and threshold"
        return text

    @property
    def line(self) -> str:
        if self.fields["dp_noise_multiplier"] is not None:
            return DP_LINE
        if self.fields["shared_scaling"]:
            return SHARED_SCALING_LINE
        return STRATEGIES[self.fields["strategy"]].line


VARIANTS = {
    v.key: v
    for v in (
        Variant("fedavg", {}),
        # Each strategy with its default setting, as a user who only picks the strategy gets it.
        Variant("fedprox", {"strategy": "fedprox", "proximal_mu": _DEFAULT.proximal_mu}),
        Variant("fedadam", {"strategy": "fedadam", "server_lr": _DEFAULT.server_lr}),
        Variant("median", {"strategy": "median"}),
        Variant("trimmed", {"strategy": "trimmed", "trim_fraction": _DEFAULT.trim_fraction}),
        *(Variant(f"dp-{z:g}", {"dp_noise_multiplier": z, **DP}) for z in (0.1, 0.5, 1.0, 2.0)),
        Variant("shared", {"shared_scaling": True}),
    )
}


def _chosen(keys: Sequence[str] | None) -> list[Variant]:
    unknown = [k for k in keys or () if k not in VARIANTS]
    if unknown:
        raise UserError(f"unknown variant {', '.join(unknown)}; choose among {', '.join(VARIANTS)}")
    return [VARIANTS[k] for k in keys] if keys else list(VARIANTS.values())


def _part(report: Progress, v: Variant, i: int, n: int) -> Progress:
    return lambda message, fraction: report(f"{v.label}: {message}", (i + fraction) / n)


def run_pump_variants(
    data_dir: Path,
    settings: FederationSettings = FederationSettings(),
    seed: int = 0,
    on_progress: Progress | None = None,
    keys: Sequence[str] | None = None,
    fedavg: dict | None = None,
) -> dict:
    """The pump benchmark's federated mode once per variant (``keys``, default all);
    ``fedavg``: a :func:`run_pump` result with ``settings`` whose federation gives FedAvg's row."""
    facilities = len(facility_csvs(data_dir))

    def run(v: Variant, progress: Progress) -> dict:
        try:
            chosen = replace(settings, **{**v.fields, "min_clients": facilities})
        except ValueError as exc:  # e.g. a median with fewer than 3 facilities
            raise UserError(f"{v.label}: {exc}") from None
        return run_pump(data_dir, chosen, seed, progress, modes=("federated",))

    rows = _rows(_chosen(keys), run, pump_row, fedavg, on_progress)
    return {
        "benchmark": "pump_variants",
        "data_dir": str(data_dir),
        "settings": settings.to_dict(),
        "seed": seed,
        "rows": rows,
        "machine": machine(),
    }


def run_skab_variants(
    data_dir: Path,
    settings: SkabSettings = SkabSettings(),
    on_progress: Progress | None = None,
    keys: Sequence[str] | None = None,
    fedavg: dict | None = None,
) -> dict:
    """SKAB's federated mode once per variant (``keys``, default all); ``fedavg``: a federated
    :func:`run_skab` result with ``settings`` that gives FedAvg's row."""

    def run(v: Variant, progress: Progress) -> dict:
        return run_skab(data_dir, "federated", settings, progress, choice=v.fields)

    rows = _rows(_chosen(keys), run, skab_row, fedavg, on_progress)
    return {
        "benchmark": "skab_variants",
        "data_dir": str(data_dir),
        "settings": asdict(settings),
        "rows": rows,
        "machine": machine(),
    }


def _rows(
    variants: list[Variant],
    run: Callable[[Variant, Progress], dict],
    row: Callable[[Variant, dict], dict],
    fedavg: dict | None,
    on_progress: Progress | None,
) -> list[dict]:
    """One row per variant; FedAvg's from ``fedavg`` when given (the benchmark's own run)."""
    report = on_progress or (lambda message, fraction: None)
    rows = []
    for i, v in enumerate(variants):
        result = fedavg if v.key == "fedavg" and fedavg is not None else run(v, _part(report, v, i, len(variants)))
        rows.append(row(v, result))
    report("done", 1.0)
    return rows


# -- one row per variant ----------------------------------------------------------------


def _common(v: Variant, result: dict) -> dict:
    choice = result["choice"]
    row = {"key": v.key, "label": v.label, "line": v.line, "choice": choice}
    if choice["dp"] is not None:
        row["epsilon"] = choice["dp"]["epsilon"]
        row["delta"] = choice["dp"]["delta"]
    return row


def pump_row(v: Variant, result: dict) -> dict:
    """The pump benchmark's headline figures for the federated model, over every facility."""
    fed = [{"facility": row["facility"], **row["federated"]} for row in result["facilities"]]
    per_day = [f["false_alarms_per_day"] for f in fed if f["false_alarms_per_day"] is not None]
    aucs = [f["roc_auc"] for f in fed if f["roc_auc"] is not None]
    curve = result["loss_per_round"]["federated"]["global model"]
    return {
        **_common(v, result),
        "caught": sum(f["caught"] for f in fed),
        "failures": sum(f["failures"] for f in fed),
        "false_alarms": sum(f["false_alarms"] for f in fed),
        "false_alarms_per_day_total": round(float(sum(per_day)), 3) if per_day else None,
        "false_alarms_per_day_mean": round(float(sum(per_day)) / len(per_day), 3) if per_day else None,
        "roc_auc_mean": round(float(sum(aucs)) / len(aucs), 4) if aucs else None,
        "final_eval_loss": curve[-1] if curve else None,
        "train_s": result["train_seconds"]["federated"],
        "loss_per_round": curve,
        "facilities": fed,
    }


def skab_row(v: Variant, result: dict) -> dict:
    """SKAB's headline figures (all labelled files' test rows together) for the federated model."""
    curve = result["loss_per_round"]["federated (global model)"]
    return {
        **_common(v, result),
        "f1": result["f1"],
        "far_pct": result["far_pct"],
        "mar_pct": result["mar_pct"],
        "counts": result["counts"],
        "final_eval_loss": curve[-1] if curve else None,
        "wall_s": result["wall_s"],
        "loss_per_round": curve,
        "files": [
            {k: f[k] for k in ("facility", "file", "threshold", "relative_sensors", "f1", "far_pct", "mar_pct")}
            for f in result["files"]
        ],
    }
