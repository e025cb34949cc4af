"""``pumpfl bench skab | pump | speed | scale | rows | report``: quality, speed, scale (cli)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import Console, Parser, positive_int, resolve_data, write_json


def cmd_bench_skab(args: argparse.Namespace, console: Console) -> int:
    from ..bench.skab import SkabSettings, run_skab

    settings = SkabSettings(rounds=args.rounds, local_epochs=args.local_epochs, seed=args.seed)
    r = run_skab(Path(args.data), args.mode, settings, console.progress)
    write_json(r, args.out)
    conv = r["published"]["Conv-AE"]
    console.line(f"SKAB, {args.mode}: {len(r['files'])} labelled files, {r['wall_s']:.1f} s")
    print(
        f"F1 {r['f1']:.3f}  FAR {r['far_pct']:.2f} %  MAR {r['mar_pct']:.2f} %   "
        f"(published Conv-AE: F1 {conv['f1']}, FAR {conv['far_pct']} %, MAR {conv['mar_pct']} %)"
    )
    nab, delay = r["nab"], r["delay"]
    if nab is not None:
        print(f"NAB standard {nab['standard']:.2f}  low FP {nab['low_fp']:.2f}  low FN {nab['low_fn']:.2f}")
    mean = "-" if delay["mean_delay_s"] is None else f"{delay['mean_delay_s']:.1f} s"
    print(f"anomalies detected {delay['detected']} of {delay['events']}, mean detection delay {mean}")
    for site, f in r["per_facility"].items():
        print(f"  {site}: F1 {f['f1']:.3f}  FAR {f['far_pct']:.2f} %  MAR {f['mar_pct']:.2f} %")
    return 0


def cmd_bench_pump(args: argparse.Namespace, console: Console) -> int:
    from ..bench.pump import MODES, run_pump
    from ..core.simulator import ensure_default_data
    from ..fl.protocol import FederationSettings

    folder = Path(args.data) if args.data else ensure_default_data(progress=console.progress)
    r = run_pump(folder, FederationSettings(rounds=args.rounds, local_epochs=args.local_epochs), args.seed, console.progress)
    write_json(r, args.out)
    print(f"{'facility':<10} {'mode':<12} {'caught':>7} {'lead h':>7} {'false/day':>9} {'ROC-AUC':>8}")
    for row in r["facilities"]:
        for mode in MODES:
            f = row[mode]
            lead = "-" if f["median_lead_hours"] is None else f"{f['median_lead_hours']:.1f}"
            fad = "-" if f["false_alarms_per_day"] is None else f"{f['false_alarms_per_day']:.2f}"
            auc = "-" if f["roc_auc"] is None else f"{f['roc_auc']:.3f}"
            print(f"{row['facility']:<10} {mode:<12} {f['caught']:>3}/{f['failures']:<3} {lead:>7} {fad:>9} {auc:>8}")
    return 0


def cmd_bench_speed(args: argparse.Namespace, console: Console) -> int:
    from ..bench.speed import run_speed

    r = run_speed(resolve_data(args.data, console), args.max_rows, console.progress)
    write_json(r, args.out)
    ours, naive, ratios = r["pumpfl"], r["naive"], r["ratios"]
    print(f"rows {r['data']['rows']:,}, {r['data']['sensors']} sensors")
    print(f"PumpFL: prep {ours['prep_s']:.3f} s, {ours['windows_per_s']:,.0f} windows/s, round {ours['round_s']:.2f} s")
    print(f"naive:  prep {naive['prep_s']:.3f} s, {naive['windows_per_s']:,.0f} windows/s, round {naive['round_s']:.2f} s")
    detection = r["detection"]
    print(f"round {ratios['round_speedup']:.2f}x faster; ROC-AUC {detection['pumpfl_roc_auc']} vs {detection['naive_roc_auc']}")
    return 0


def cmd_bench_rows(args: argparse.Namespace, console: Console) -> int:
    from ..bench.rows import STEPS_SAID, run_rows

    source = resolve_data(args.data, console)
    runs = [run_rows(n, console.progress, source=source) for n in args.rows]
    write_json(runs, args.out)
    console.line("")
    print(f"{'rows':>12} {'MB':>6}  " + "  ".join(f"{label:>22}" for label in STEPS_SAID.values()))
    for r in runs:
        cells = "  ".join(f"{r[k]['seconds']:>9.1f} s {r[k]['peak_mb']:>7.0f} MB" for k in STEPS_SAID)
        print(f"{r['rows']:>12,} {r['file_mb']:>6,.0f}  {cells}")
    for r in runs:
        cold, warm = r["check_cold"]["rows_per_s"], r["check_warm"]["rows_per_s"]
        print(f"{r['rows']:,} rows: data check reads {cold:,} rows/s the first time, {warm:,} from the cache")
    return 0


def cmd_bench_scale(args: argparse.Namespace, console: Console) -> int:
    from ..bench.scale import run_scale

    r = run_scale(args.facilities, args.rounds, on_progress=console.progress)
    write_json(r, args.out)
    console.line("")
    print(
        f"{r['facilities']} facilities, {r['rounds_completed']} of {r['rounds']} rounds in {r['wall_s']:.1f} s "
        f"(all joined after {r['join_s']} s); coordinator {r['coordinator_idle_rss_mb']:.0f} MB listening, "
        f"{r['coordinator_peak_rss_mb']:.0f} MB at its peak ({r['coordinator_rss_per_facility_mb']:.2f} MB a facility)"
    )
    print(f"{'round':>5} {'s':>7} {'answered':>8} {'RSS MB':>7} {'threads':>7} {'files':>6} {'down x':>7} {'up x':>6}")
    for p in r["per_round"]:
        f = p.get("per_facility", {})
        print(
            f"{p['round']:>5} {p['seconds']:>7.2f} {p['answered']:>8} {p['coordinator_rss_mb'] or 0:>7.0f} "
            f"{p['coordinator_threads'] or 0:>7} {p['coordinator_open_files'] or 0:>6} "
            f"{f.get('sent_x_model', 0):>7.2f} {f.get('received_x_model', 0):>6.2f}"
        )
    for name, why in sorted(r["failed"].items()):
        print(f"  {name} did not finish: {why}")
    return 0 if r["rounds_completed"] == r["rounds"] and not r["failed"] else 1


def cmd_bench_report(args: argparse.Namespace, console: Console) -> int:
    from ..bench.report import make_report

    readme = Path(args.readme) if args.readme else None
    page = make_report(Path(args.skab), Path(args.out), readme, args.reuse, console.progress, console.line)
    print(f"wrote {page}")
    return 0


def add_parsers(sub) -> None:
    bench = sub.add_parser("bench", help="measure detection quality and speed (benchmarks)")
    bench_sub = bench.add_subparsers(dest="bench_command", required=True, parser_class=Parser)
    training = Parser(add_help=False)  # what both detection benchmarks share
    training.add_argument("--rounds", type=positive_int, default=10, help="rounds (alone and pooled: blocks of local epochs)")
    training.add_argument("--local-epochs", type=positive_int, default=3)
    training.add_argument("--seed", type=int, default=0)
    training.add_argument("--out", help="write the figures to this JSON file")
    skab = bench_sub.add_parser("skab", parents=[training], help="SKAB's real pump test bed under its published protocol")
    skab.add_argument("--data", required=True, help="folder of SKAB-format CSVs, one subfolder per facility")
    skab.add_argument("--mode", choices=("local", "federated", "centralized"), default="federated")
    skab.set_defaults(func=cmd_bench_skab)
    pump = bench_sub.add_parser("pump", parents=[training], help="default facilities: federated vs alone vs centralized")
    pump.add_argument("--data", help="folder of client_*.csv (default: the default data, made on first use)")
    pump.set_defaults(func=cmd_bench_pump)
    speed = bench_sub.add_parser("speed", help="the default model's speed beside the original trial's pipeline")
    speed.add_argument("--data", default="1", help="CSV file, or a default client number 0-4 (default 1)")
    speed.add_argument("--max-rows", type=positive_int, help="use only the first rows")
    speed.add_argument("--out", help="write the figures to this JSON file")
    speed.set_defaults(func=cmd_bench_speed)
    scale = bench_sub.add_parser("scale", help="a coordinator and N light facilities: time, memory and bytes per round")
    scale.add_argument("--facilities", type=positive_int, default=10)
    scale.add_argument("--rounds", type=positive_int, default=3)
    scale.add_argument("--out", help="write the figures to this JSON file")
    scale.set_defaults(func=cmd_bench_scale)
    rows = bench_sub.add_parser("rows", help="a CSV of N rows through data check, train and score: time and memory")
    rows.add_argument("--rows", type=positive_int, nargs="+", default=[2_000_000], help="rows (several: one run each)")
    rows.add_argument("--data", default="1", help="pump-schema CSV repeated, or a default client number 0-4 (default 1)")
    rows.add_argument("--out", help="write the figures to this JSON file (a list, one run a row count)")
    rows.set_defaults(func=cmd_bench_rows)
    rep = bench_sub.add_parser("report", help="run every benchmark and write docs/BENCHMARKS.md with its plots")
    rep.add_argument("--skab", required=True, help="the SKAB folder (e.g. ../shared/data/skab)")
    rep.add_argument("--out", default="docs", help="folder for BENCHMARKS.md and bench/ (default docs)")
    rep.add_argument("--readme", help="also refresh the summary table in this README")
    rep.add_argument("--reuse", action="store_true", help="redraw from the JSON files of the last run instead of measuring")
    rep.set_defaults(func=cmd_bench_report)
