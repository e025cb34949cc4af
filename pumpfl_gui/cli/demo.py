"""``pumpfl demo``: a server and K default facilities on this computer (cli layer)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ..core.errors import UserError
from ..core.paths import DEFAULT_FACILITIES, default_client_csvs
from ..fl import narration
from ..fl.events import ConnectionState, EpochLoss, Event, Failed, Finished, RoundFinished
from .common import Console, fail, positive_int, run_in_thread
from .federation import console_line, federation_choices, print_comparison, settings_from


def cmd_demo(args: argparse.Namespace, console: Console) -> int:
    import tempfile

    from ..core.simulator import ensure_default_data
    from ..fl.choices import caution, describe
    from ..fl.loopback_federation import LoopbackFederation

    if args.clients > DEFAULT_FACILITIES:
        raise UserError(f"the default data has {DEFAULT_FACILITIES} facilities; use --clients 1 to {DEFAULT_FACILITIES}")
    folder = ensure_default_data(progress=console.progress)
    csvs = default_client_csvs(args.clients, folder)
    settings = settings_from(args, rounds=args.rounds, min_clients=args.clients, local_epochs=args.local_epochs)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="pumpfl-demo-"))
    console.line(f"demo: a server and {args.clients} facilities on this computer, {args.rounds} rounds; results in {out}")
    console.line(f"demo: {describe(settings)}")
    if caution(settings):
        console.line(f"caution: {caution(settings)}")
    t0 = time.perf_counter()
    rounds: list[RoundFinished] = []

    def on_event(who: str, e: Event) -> None:
        # The server's lines in full; of the facilities, only their connection and failures.
        match e:
            case RoundFinished():
                rounds.append(e)
            case EpochLoss():
                console.progress(f"{who}: {narration.epoch_progress(e)}", -1)
                return
        line = console_line(who, e)
        if line and (who == "server" or isinstance(e, (Failed, ConnectionState))):
            console.line(line)

    result = run_in_thread(LoopbackFederation(settings, csvs, out, on_event, compare=not args.no_compare), console)
    if not isinstance(result, Finished):
        return fail(result.message)
    seconds, model = time.perf_counter() - t0, out / "server" / "global_model"
    print(f"demo finished: {result.rounds_completed} rounds in {seconds:.1f} s; global model in {model}")
    for r in rounds:
        print(narration.round_summary(r))
    last = rounds[-1] if rounds else None
    if last is not None and last.epsilon is not None:
        print(f"privacy: epsilon {last.epsilon:.2f} for delta {settings.dp_delta:g} after {len(rounds)} rounds (per facility)")
    if last is not None and last.agreed_threshold is not None:
        print(f"agreed threshold {last.agreed_threshold:.5f}; each facility's model keeps it with the agreed scaler")
    from ..fl.alone import COMPARISON_FILE

    for csv in csvs:  # what federating gave each facility, as its own client would say
        saved = out / csv.stem / COMPARISON_FILE
        if saved.is_file():
            print_comparison(json.loads(saved.read_text()), csv.stem)
    return 0


def add_parsers(sub) -> None:
    demo = sub.add_parser("demo", parents=[federation_choices()], help="a server and K default facilities on this computer")
    demo.add_argument("--rounds", type=positive_int, default=3)
    demo.add_argument("--clients", type=positive_int, default=2)
    demo.add_argument("--local-epochs", type=positive_int, default=3)
    demo.add_argument("--out", help="folder for the run (default: a new temporary folder)")
    demo.add_argument(
        "--no-compare", action="store_true", help="facilities do not also train alone (default: each writes comparison.json)"
    )
    demo.set_defaults(func=cmd_demo)
