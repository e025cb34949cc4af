"""The plots of docs/BENCHMARKS.md, drawn with matplotlib from the benchmarks' JSON (bench;
no Qt)."""

from __future__ import annotations

from pathlib import Path

from .rows_page import rows_plot
from .scale_page import scale_plot
from .variants_page import choices_plot

SKAB_MODES = ("local", "federated", "centralized")
COLOURS = {
    "local": "#4C72B0",
    "alone": "#4C72B0",
    "federated": "#DD8452",
    "centralized": "#55A868",
    "Conv-AE": "#8C8C8C",
    "naive": "#8C8C8C",
}


def draw_plots(r: dict, folder: Path) -> None:
    """Every plot of docs/BENCHMARKS.md from the benchmarks' results, as PNGs in ``folder``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.dpi": 110, "axes.spines.top": False, "axes.spines.right": False, "font.size": 9})
    _skab_bars(plt, r, folder / "skab_modes.png")
    _loss(plt, r, folder / "loss_per_round.png")
    _pump_facilities(plt, r["pump"], folder / "pump_facilities.png")
    _timeline(plt, r["skab_federated"]["example"], folder / "skab_timeline.png")
    _speed(plt, r["speed"], folder / "speed.png")
    choices_plot(plt, r["pump_variants"], r["skab_variants"], folder / "choices.png")
    scale_plot(plt, r["scale"], folder / "scale.png")
    rows_plot(plt, r["rows"], folder / "rows.png")


def _skab_bars(plt, r: dict, path: Path) -> None:
    rows = {m: r[f"skab_{m}"] for m in SKAB_MODES}
    rows["Conv-AE"] = r["skab_local"]["published"]["Conv-AE"]
    fig, axes = plt.subplots(1, 3, figsize=(9, 2.8))
    for ax, key, title in zip(
        axes, ("f1", "far_pct", "mar_pct"), ("F1 (higher is better)", "FAR % (lower is better)", "MAR % (lower is better)")
    ):
        names = list(rows)
        values = [rows[n][key] for n in names]
        bars = ax.bar(names, values, color=[COLOURS[n] for n in names])
        ax.bar_label(bars, fmt="%.3g", fontsize=8)
        ax.set_title(title)
        ax.tick_params(axis="x", labelrotation=20)
    fig.suptitle("SKAB, all labelled files' test rows (Conv-AE: SKAB's published figures)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _loss(plt, r: dict, path: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(9, 3))
    fed = r["skab_federated"]["loss_per_round"]
    for name, curve in fed.items():
        axes[0].plot(
            range(1, len(curve) + 1),
            curve,
            marker="o",
            ms=3,
            label=name,
            color=COLOURS["federated"] if name.startswith("federated") else None,
            lw=2 if name.startswith("federated") else 1,
        )
    axes[0].set_title("SKAB, federated: held-out loss per round")
    pump = r["pump"]["loss_per_round"]
    alone = pump["alone"]
    mean_alone = [sum(v) / len(v) for v in zip(*alone.values())]
    for name, curve, colour in (
        ("alone (mean of facilities)", mean_alone, "alone"),
        ("federated (global model)", pump["federated"]["global model"], "federated"),
        ("centralized", pump["centralized"]["pooled"], "centralized"),
    ):
        axes[1].plot(range(1, len(curve) + 1), curve, marker="o", ms=3, label=name, color=COLOURS[colour])
    axes[1].set_title("Default facilities: held-out loss per round")
    for ax in axes:
        ax.set_xlabel("round")
        ax.set_ylabel("mean squared error")
        ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _pump_facilities(plt, pump: dict, path: Path) -> None:
    from .pump import MODES

    rows = pump["facilities"]
    names = [row["facility"] for row in rows]
    fig, axes = plt.subplots(1, 3, figsize=(10, 3))
    width = 0.27
    panels = (
        ("failures caught", lambda f: f["caught"]),
        ("false alarms per day", lambda f: f["false_alarms_per_day"] or 0.0),
        ("ROC-AUC", lambda f: f["roc_auc"] or 0.0),
    )
    for ax, (title, get) in zip(axes, panels):
        for k, mode in enumerate(MODES):
            xs = [i + (k - 1) * width for i in range(len(rows))]
            ax.bar(xs, [get(row[mode]) for row in rows], width, label=mode, color=COLOURS[mode])
        if title == "failures caught":
            ax.scatter(
                range(len(rows)),
                [row["alone"]["failures"] for row in rows],
                marker="_",
                s=300,
                color="black",
                label="failures",
                zorder=3,
            )
        if title == "ROC-AUC":
            low = min(get(row[m]) for row in rows for m in MODES)
            ax.set_ylim(max(0.0, low - 0.02), 1.0)
        ax.set_xticks(range(len(rows)), names, rotation=20)
        ax.set_title(title)
    axes[0].legend(frameon=False, fontsize=8)
    fig.suptitle("Default facilities: each scored with its own scaler and threshold")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _timeline(plt, ex: dict, path: Path) -> None:
    import numpy as np

    scores = np.array([np.nan if v is None else v for v in ex["scores"]], dtype=float)
    labels = np.array(ex["labels"], dtype=bool)
    flags = np.zeros(len(scores), dtype=bool)
    flags[ex["train_rows"] :] = np.array(ex["flags"], dtype=bool)
    rows = np.arange(len(scores))
    fig, ax = plt.subplots(figsize=(9, 3.2))
    ax.fill_between(
        rows, 0, 1, where=labels, transform=ax.get_xaxis_transform(), color="#F2B8B5", alpha=0.6, label="labelled anomaly"
    )
    ax.fill_between(rows, 0, 0.06, where=flags, transform=ax.get_xaxis_transform(), color="#C44E52", label="flagged")
    ax.plot(rows, scores, lw=0.8, color="#333333", label="score (furthest sensor in its own spreads, slow or fast look)")
    ax.axhline(ex["threshold"], color="#DD8452", lw=1, ls="--", label="threshold")
    ax.axvline(ex["train_rows"], color="#4C72B0", lw=1, ls=":", label="end of training rows")
    ax.set_yscale("log")
    ax.set_xlabel("row (seconds)")
    ax.set_ylabel("score")
    ax.set_title(f"SKAB {ex['facility']}/{ex['file']} (a file whose F1 is closest to the whole), federated, personalised")
    ax.legend(frameon=False, fontsize=7, ncol=5, loc="upper center", bbox_to_anchor=(0.5, -0.25))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _speed(plt, speed: dict, path: Path) -> None:
    ours, naive = speed["pumpfl"], speed["naive"]
    fig, axes = plt.subplots(1, 2, figsize=(8, 2.6))
    parts = (("prep_s", "data preparation"), ("round_s", "one local round"))
    names = ["PumpFL", "naive trial"]
    for ax, (key, title) in zip(axes, parts):
        bars = ax.barh(names, [ours[key], naive[key]], color=[COLOURS["federated"], COLOURS["naive"]])
        ax.bar_label(bars, fmt="%.2f s", fontsize=8, padding=2)
        ax.margins(x=0.15)
        ax.set_title(f"{title} (s)")
        ax.invert_yaxis()
    fig.suptitle(f"{speed['data']['file']}: {speed['data']['rows']:,} rows, {speed['data']['sensors']} sensors")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# -- text -------------------------------------------------------------------------------
