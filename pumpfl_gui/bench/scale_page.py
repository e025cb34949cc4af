"""Scale on docs/BENCHMARKS.md: many facilities on one coordinator, table, plot (bench; no Qt)."""

from __future__ import annotations

from pathlib import Path

FACILITY_COUNTS = (10, 50, 100)  # what `pumpfl bench report` runs `pumpfl bench scale` with


def _steady(run: dict) -> list[dict]:
    """The rounds after the first (which also waits for the joins)."""
    return run["per_round"][1:] or run["per_round"]


def _mean(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def scale_section(runs: list[dict]) -> list[str]:
    """The "Scale" section's lines, from `pumpfl bench scale` results (one a facility count)."""
    out = [
        "## Scale: many facilities on one coordinator",
        "",
        "`pumpfl bench scale --facilities N`: a real coordinator (`pumpfl server`, its own process) and N light "
        "facilities (600 readings of 8 sensors each; N client runners in one process), TLS and join codes on "
        "loopback, 3 rounds of one local epoch. Round time and bytes: rounds 2 and 3 (round 1 also waits for "
        "the joins). Memory: the coordinator's resident memory at its peak, and what each facility adds "
        "to the listening server's.",
        "",
        "| facilities | rounds done | s a round | coordinator MB: listening / peak | MB a facility | threads | open files "
        "| bytes a facility a round, down / up (x model) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        steady = _steady(r)
        seconds = _mean([p["seconds"] for p in steady])
        down = _mean([p.get("per_facility", {}).get("sent_x_model") for p in steady])
        up = _mean([p.get("per_facility", {}).get("received_x_model") for p in steady])
        threads = max((p["coordinator_threads"] or 0 for p in r["per_round"]), default=0)
        files = max((p["coordinator_open_files"] or 0 for p in r["per_round"]), default=0)
        out.append(
            f"| {r['facilities']} | {r['rounds_completed']} of {r['rounds']} | {seconds:.2f} | "
            f"{r['coordinator_idle_rss_mb']:.0f} / {r['coordinator_peak_rss_mb']:.0f} | "
            f"{r['coordinator_rss_per_facility_mb']:.2f} | {threads} | {files} | "
            f"{down:.2f} / {up:.2f} |"
        )
    out += [
        "",
        "What broke first: the coordinator held 64 facilities (a worker thread and a stream each, sized once "
        "for a handful of sites); the 65th was told the federation was full and the run waited for facilities "
        "that could never join. It now admits up to 256, and refuses a run that asks for more up front.",
        "",
        "![Scale](bench/scale.png)",
        "",
    ]
    return out


def scale_plot(plt, runs: list[dict], path: Path) -> None:
    """Round time and coordinator memory against the number of facilities."""
    n = [r["facilities"] for r in runs]
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 2.8))
    left.plot(n, [_mean([p["seconds"] for p in _steady(r)]) for r in runs], "o-", color="#4C72B0")
    left.set_xlabel("facilities")
    left.set_ylabel("seconds a round")
    left.set_title("Round time")
    right.plot(n, [r["coordinator_peak_rss_mb"] for r in runs], "o-", color="#DD8452", label="peak")
    right.plot(n, [r["coordinator_idle_rss_mb"] for r in runs], "o--", color="#8C8C8C", label="listening")
    right.set_xlabel("facilities")
    right.set_ylabel("MB")
    right.set_title("Coordinator memory")
    right.legend(frameon=False)
    for ax in (left, right):
        ax.set_ylim(bottom=0)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
