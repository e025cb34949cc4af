"""``pumpfl data generate | check | partition``: make, read and split sensor data (cli layer)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ..core.errors import UserError
from ..core.paths import DEFAULT_FACILITIES
from ..core.wording import counted
from .common import Console, Parser, positive_int, resolve_data


def cmd_data_generate(args: argparse.Namespace, console: Console) -> int:
    from ..core.paths import default_data_dir
    from ..core.simulator import generate

    out = Path(args.out) if args.out else default_data_dir()
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} is a file; --out needs a folder")
    t0 = time.perf_counter()
    kwargs = {} if args.seed is None else {"seed": args.seed}
    meta = generate(out, progress=console.progress, **kwargs)
    elapsed = time.perf_counter() - t0
    for client in meta["clients"]:
        console.line(f"{out / client['file']}: {client['rows']:,} rows, {counted(len(client['failures']), 'failure')}")
    print(f"wrote {len(meta['clients'])} files and metadata.json to {out} in {elapsed:.1f} s")
    return 0


def cmd_data_check(args: argparse.Namespace, console: Console) -> int:
    from ..core.data_fit import length_verdict
    from ..core.data_summary import describe
    from ..core.dataset import load_sensor_csv
    from ..core.task import TaskState

    data = load_sensor_csv(resolve_data(args.csv, console), state=TaskState(console.progress))
    print(describe(data))
    print(f"length: {length_verdict(data)[1]}")
    return 0


def cmd_data_partition(args: argparse.Namespace, console: Console) -> int:
    from ..core.partition import partition_public_csv

    meta = partition_public_csv(Path(args.sensor_csv), Path(args.out), clients=args.clients)
    print(f"wrote {args.clients} client files to {args.out}")
    print(json.dumps({k: v for k, v in meta.items() if k != "clients"}, indent=2, default=str))
    return 0


def add_parsers(sub) -> None:
    data = sub.add_parser("data", help="make, check or partition sensor data")
    data_sub = data.add_subparsers(dest="data_command", required=True, parser_class=Parser)
    gen = data_sub.add_parser("generate", help="write the default pump data (client_0..4.csv)")
    gen.add_argument("--out", help="folder (default: federated_data/hybrid)")
    gen.add_argument("--seed", type=int, default=None, help="simulator seed (default: the fixed one)")
    gen.set_defaults(func=cmd_data_generate)
    chk = data_sub.add_parser("check", help="read a CSV and summarise what PumpFL would use")
    chk.add_argument("csv", help="CSV file, or a default client number 0-4")
    chk.set_defaults(func=cmd_data_check)
    part = data_sub.add_parser("partition", help="split the public pump sensor.csv into client files")
    part.add_argument("sensor_csv")
    part.add_argument("--out", required=True)
    part.add_argument("--clients", type=positive_int, default=DEFAULT_FACILITIES)
    part.set_defaults(func=cmd_data_partition)
