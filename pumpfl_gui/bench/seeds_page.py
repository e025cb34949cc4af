"""SKAB's figures over several seeds, for docs/BENCHMARKS.md (bench; no Qt).

One training of a 400-row file is noisy: a seed moves a mode's F1 by about 0.01 and a group's
by up to 0.03, as much as most settings differ. So ``pumpfl bench report`` runs every mode with
seeds 1 and 2 as well (``pumpfl bench skab --seed N``), keeps each run's JSON beside seed 0's as
``skab_<mode>_seed<N>.json``, and judges the goal on the three runs' counts added up as well.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..core.metrics import rates, sum_counts
from .report_plots import SKAB_MODES

EXTRA_SEEDS = (1, 2)  # seed 0 is the run the rest of the page shows


def seed_run(mode: str, seed: int | str) -> str:
    """The name a mode's run with ``seed`` is kept under, as ``<name>.json`` (``"*"``: any seed)."""
    return f"skab_{mode}_seed{seed}"


def load_seed_runs(folder: Path) -> dict[str, list[dict]]:
    """Each mode's extra-seed runs found in ``folder``, by seed."""
    found: dict[str, list[dict]] = {}
    for mode in SKAB_MODES:
        runs = [json.loads(p.read_text()) for p in folder.glob(f"{seed_run(mode, '*')}.json")]
        found[mode] = sorted(runs, key=lambda r: r["settings"]["seed"])
    return found


def pooled(runs: list[dict]) -> dict:
    """F1 / FAR / MAR of several runs' test rows taken together (counts added up)."""
    counts = sum_counts(r["counts"] for r in runs)
    return {**rates(counts), "counts": counts}


def _cell(r: dict) -> str:
    return f"{r['f1']:.3f} / {r['far_pct']:.2f} / {r['mar_pct']:.2f}"


def seeds_section(first: dict[str, dict], extra: dict[str, list[dict]], goal_f1: float) -> list[str]:
    """The table of each mode's seeds and their pooled figures, and the verdict on those;
    ``first``: each mode's seed-0 run."""
    runs = {mode: [first[mode], *extra.get(mode, [])] for mode in SKAB_MODES}
    seeds = sorted({r["settings"]["seed"] for rs in runs.values() for r in rs})
    if len(seeds) == 1:
        return []
    head = " | ".join(f"seed {s}" for s in seeds)
    out = [
        "One training of a 400-row file is noisy, so every mode ran with other seeds too",
        "(`pumpfl bench skab --seed N`; F1 / FAR % / MAR %, the last column over all runs' test rows together):",
        "",
        f"| Mode | {head} | seeds together |",
        "|---|" + "---|" * (len(seeds) + 1),
    ]
    for mode in SKAB_MODES:
        by_seed = {r["settings"]["seed"]: r for r in runs[mode]}
        cells = " | ".join(_cell(by_seed[s]) if s in by_seed else "-" for s in seeds)
        out.append(f"| {mode} | {cells} | **{_cell(pooled(runs[mode]))}** |")
    loc, fed = pooled(runs["local"]), pooled(runs["federated"])
    out += ["", "Over the seeds together:", ""]
    for mode, p in (("local", loc), ("federated", fed)):
        out.append(f"- {mode}: F1 {p['f1']:.3f} vs {goal_f1} ({p['f1'] - goal_f1:+.3f});")
    out += [
        f"- federated vs local: F1 {fed['f1']:.4f} vs {loc['f1']:.4f} — "
        + ("federated is at least as good on F1" if fed["f1"] >= loc["f1"] else "federated is below local on F1")
        + f"; FAR {fed['far_pct']:.2f} vs {loc['far_pct']:.2f} %, MAR {fed['mar_pct']:.2f} vs {loc['mar_pct']:.2f} %.",
        "",
    ]
    return out
