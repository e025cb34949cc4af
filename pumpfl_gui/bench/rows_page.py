"""Scale against rows on docs/BENCHMARKS.md: long files' table and plot (bench; no Qt)."""

from __future__ import annotations

from pathlib import Path

STEPS = (
    ("check_cold", "`data check`, first read"),
    ("check_warm", "`data check`, from the cache"),
    ("train", "`train --epochs 1`"),
    ("score", "`score`"),
)


def rows_section(runs: list[dict]) -> list[str]:
    """The "Scale: long files" section's lines, from `pumpfl bench rows` results."""
    out = [
        "## Scale: long files",
        "",
        "`pumpfl bench rows --rows N`: default facility 1 repeated to N rows, one reading a second (52 sensor "
        "columns and the machine status, 330 bytes a row), and the CLI run on it as users run it, each command "
        "its own process with an empty rows cache at first. A long file is read a batch of rows at a time by "
        "polars straight into float32 and kept in the rows cache, which the next read maps from disk; "
        "scaling, training, calibration and scoring go through the rows a block at a time and give each block "
        "back to the operating system's file cache when done, so a process holds the runtime and its working "
        "blocks rather than the file. Seconds are wall time of the whole command, Python's start-up included; "
        "memory is the process's peak resident set. `score` reads the file with the model's sensor list, "
        "which the cache keeps as an entry of its own, so it reads the file afresh.",
        "",
        "| rows | file MB | " + " | ".join(f"{label}: s / MB" for _, label in STEPS) + " | rows a second, first read / cached |",
        "|---|---|" + "---|" * len(STEPS) + "---|",
    ]
    for r in runs:
        cells = " | ".join(f"{r[k]['seconds']:.1f} / {r[k]['peak_mb']:.0f}" for k, _ in STEPS)
        out.append(
            f"| {r['rows']:,} | {r['file_mb']:,.0f} | {cells} | "
            f"{r['check_cold']['rows_per_s']:,} / {r['check_warm']['rows_per_s']:,} |"
        )
    out += ["", "![Scale against rows](bench/rows.png)", ""]
    return out


def rows_plot(plt, runs: list[dict], path: Path) -> None:
    """Seconds and peak memory of each command against rows (log scales)."""
    n = [r["rows"] for r in runs]
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 2.8))
    for (key, label), colour in zip(STEPS, ("#4C72B0", "#55A868", "#DD8452", "#8172B3")):
        plain = label.replace("`", "")
        left.plot(n, [r[key]["seconds"] for r in runs], "o-", color=colour, label=plain)
        right.plot(n, [r[key]["peak_mb"] for r in runs], "o-", color=colour, label=plain)
    left.set_ylabel("seconds")
    left.set_title("Time")
    right.set_ylabel("peak MB")
    right.set_title("Memory of the process")
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("rows")
    right.legend(frameon=False, fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
