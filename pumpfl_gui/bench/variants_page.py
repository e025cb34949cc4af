"""The coordinator's choices on docs/BENCHMARKS.md: a table per benchmark and one plot, all
from the variants' JSON (``variants.py``) (bench; no Qt)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from ..core.detector import WANDER_BELOW
from ..fl.choices import DP_NOISE_PER_FACILITY


def choices_plot(plt, pump: dict, skab: dict, path: Path) -> None:
    """Global loss per round for every variant on both benchmarks, and epsilon per round."""
    from matplotlib.ticker import MaxNLocator

    keys = list(dict.fromkeys(row["key"] for row in pump["rows"] + skab["rows"]))
    colour = {key: f"C{i % 10}" for i, key in enumerate(keys)}
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.6))
    panels = ((pump, "Default facilities: global eval loss"), (skab, "SKAB: global held-out loss"))
    for ax, (r, title) in zip(axes, panels):
        for row in r["rows"]:
            curve = [float("nan") if v is None else v for v in row["loss_per_round"]]
            style = "--" if row["choice"]["shared_scaling"] else "-"  # its loss is in the shared scale
            ax.plot(range(1, len(curve) + 1), curve, style, marker="o", ms=3, color=colour[row["key"]], label=row["label"])
        _log_axis(ax)
        ax.set_title(title)
        ax.set_ylabel("mean squared error")
    dp = [row for row in pump["rows"] if row["choice"]["dp"] is not None]
    for row in dp:
        eps = row["choice"]["dp"]["epsilon_per_round"]
        axes[2].plot(range(1, len(eps) + 1), eps, marker="o", ms=3, color=colour[row["key"]], label=row["label"])
    if dp:
        _log_axis(axes[2])
    axes[2].set_title(f"privacy spent (delta {dp[0]['delta']:g})" if dp else "privacy spent (no DP row)")
    axes[2].set_ylabel("epsilon (lower is more private)")
    legend = {}
    for ax in axes:
        ax.set_xlabel("round")
        ax.set_xlim(0.5, max([1, *(len(line.get_xdata()) for line in ax.get_lines())]) + 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        legend.update(zip(*reversed(ax.get_legend_handles_labels())))
    fig.legend(list(legend.values()), list(legend), frameon=False, fontsize=7, ncol=3, loc="lower center")
    fig.tight_layout(rect=(0, 0.2, 1, 1))
    fig.savefig(path)
    plt.close(fig)


def _log_axis(ax) -> None:
    """Log scale (DP's noise can lift a loss by orders of magnitude), labelled in plain numbers."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax.set_yscale("log")
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    ax.yaxis.set_major_formatter(plain)
    lo, hi = ax.get_ylim()
    # Label the minor ticks too where few decades show: all within one, 2s and 5s within two.
    twos_fives = FuncFormatter(lambda v, _: f"{v:g}" if f"{v:.0e}"[0] in "25" else "")
    ax.yaxis.set_minor_formatter(plain if hi < 10 * lo else twos_fives if hi < 100 * lo else NullFormatter())


def choices_section(pump: dict, skab: dict) -> list[str]:
    """The page's section on the coordinator's choices."""
    ps, ss = pump["settings"], skab["settings"]
    out = [
        "## The coordinator's choices: what each strategy, privacy level and shared scaling costs or gains",
        "",
        "The federated mode of both benchmarks once per choice the coordinator can make",
        "(`fl/choices.py`); everything else as in the sections above — data, rounds "
        f"({ps['rounds']} x {ps['local_epochs']} local epochs on the default facilities, "
        f"{ss['rounds']} x {ss['local_epochs']} on SKAB),",
        "seed and scoring rules. FedAvg's row is the federated run above. Epsilon bounds, for the",
        "stated delta, what the released models reveal about any one facility (central DP: the",
        "coordinator sees the clipped changes before it adds the noise); it depends only on the noise",
        "multiplier, the rounds and delta. With DP the average is unweighted (`fl/flower/strategies.py`), so",
        "those rows also differ from FedAvg in weighting.",
        "",
        "### Default facilities",
        "",
        (
            "| Choice | caught | false alarms/day, total (mean) | mean ROC-AUC | final global eval loss | "
            "train s | epsilon | what it does |"
        ),
        "|---|---|---|---|---|---|---|---|",
    ]
    for row, line in zip(pump["rows"], _lines(pump["rows"])):
        fad = (
            "-"
            if row["false_alarms_per_day_total"] is None
            else f"{row['false_alarms_per_day_total']:.2f} ({row['false_alarms_per_day_mean']:.2f})"
        )
        out.append(
            f"| {row['label']} | {row['caught']}/{row['failures']} | {fad} | {_num(row['roc_auc_mean'], '.4f')} | "
            f"{_num(row['final_eval_loss'], '.4f')} | {row['train_s']:.1f} | {_epsilon(row)} | {line} |"
        )
    out += [
        *_against_fedavg(pump["rows"], _pump_change),
        "",
        "### SKAB",
        "",
        "| Choice | F1 | FAR % | MAR % | final global held-out loss | wall s | epsilon | what it does |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row, line in zip(skab["rows"], _lines(skab["rows"])):
        out.append(
            f"| {row['label']} | {row['f1']:.3f} | {row['far_pct']:.2f} | {row['mar_pct']:.2f} | "
            f"{_num(row['final_eval_loss'], '.4f')} | {row['wall_s']:.1f} | {_epsilon(row)} | {line} |"
        )
    out += [
        *_against_fedavg(skab["rows"], _skab_change),
        "",
        SHARED_NOTE,
        *_judged_by_change(skab),
        "",
        "![The coordinator's choices](bench/choices.png)",
        "",
    ]
    return out


SHARED_NOTE = f"""Shared scaling and threshold: every facility scales its readings with the scaler pooled from
all facilities' per-sensor counts, means and variances, and after the last round the facilities
agree one threshold — their detection rule (the quantile and factor their amount of history calls
for, `core/data_fit.detection_for`) applied to every facility's training scores taken together,
pooled from each facility's score quantiles (`core/pooling.py`, `fl/server_runner.py`); each
facility keeps its own residual spread. That rule was chosen from the code — it is what a
federation with shared scaling agrees — not from SKAB's test rows. With SKAB's three facilities
the trimmed mean drops one value each side of three, which leaves the median. What the
measured losses mean for the app: every strategy kept SKAB's F1 within 0.02 of each file alone;
differential privacy with more noise than {DP_NOISE_PER_FACILITY:g} x the facilities and shared scaling did not, and
the Server page and `pumpfl server` say so, with these figures, when they are chosen
(`fl/choices.caution`)."""


def _judged_by_change(skab: dict) -> list[str]:
    """Which sensors SKAB's files judge by their change, with the agreed scaler and with
    their own."""
    rows = {row["key"]: row for row in skab["rows"]}
    if "shared" not in rows or "fedavg" not in rows:
        return []
    shared = sorted({s for f in rows["shared"]["files"] for s in f["relative_sensors"]})
    own = Counter(s for f in rows["fedavg"]["files"] for s in f["relative_sensors"])
    files = len(rows["fedavg"]["files"])
    return [
        "",
        f"Judged by their change rather than their level (step ratio below {WANDER_BELOW}): with the agreed "
        f"scaler {', '.join(shared) or 'none'}; with each file's own scaler "
        + (", ".join(f"{s} ({n} of {files} files)" for s, n in own.most_common()) or "none")
        + ". Wandering is judged against each sensor's spread within a run, in both cases. What the "
        "agreed scaler changes is the scale itself: it divides by the spread across all runs, which "
        "includes the differences between their operating levels; where those dwarf the spread within "
        "one run, an anomaly's shift is small in the shared scale.",
    ]


def _lines(rows: list[dict]) -> list[str]:
    """Each row's explanation; a repeat of the row above's says so instead."""
    lines, last = [], None
    for row in rows:
        lines.append("as above" if row["line"] == last else row["line"])
        last = row["line"]
    return lines


def _num(value, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _epsilon(row: dict) -> str:
    return f"{row['epsilon']:.3g} (delta {row['delta']:g})" if "epsilon" in row else "-"


def _against_fedavg(rows: list[dict], change) -> list[str]:
    base = next((row for row in rows if row["key"] == "fedavg"), None)
    if base is None:
        return []
    return ["", "Against FedAvg:", "", *(f"- {row['label']}: {change(row, base)}." for row in rows if row is not base)]


def _pump_change(row: dict, base: dict) -> str:
    bits = [f"caught {row['caught'] - base['caught']:+d}"]
    if row["false_alarms_per_day_mean"] is not None and base["false_alarms_per_day_mean"] is not None:
        bits.append(f"mean false alarms/day {row['false_alarms_per_day_mean'] - base['false_alarms_per_day_mean']:+.2f}")
    if row["roc_auc_mean"] is not None and base["roc_auc_mean"] is not None:
        bits.append(f"mean ROC-AUC {row['roc_auc_mean'] - base['roc_auc_mean']:+.4f}")
    if base["train_s"]:
        bits.append(f"training time x{row['train_s'] / base['train_s']:.2f}")
    return ", ".join(bits)


def _skab_change(row: dict, base: dict) -> str:
    bits = [
        f"F1 {row['f1'] - base['f1']:+.3f}",
        f"FAR {row['far_pct'] - base['far_pct']:+.2f} points",
        f"MAR {row['mar_pct'] - base['mar_pct']:+.2f} points",
    ]
    if base["wall_s"]:
        bits.append(f"wall time x{row['wall_s'] / base['wall_s']:.2f}")
    return ", ".join(bits)
