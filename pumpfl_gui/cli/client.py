"""``pumpfl client`` and ``pumpfl forget``: take part as one facility; stop trusting a server
(cli layer)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..core.errors import UserError
from ..fl.events import Finished
from .common import Console, fail, resolve_data, run_in_thread
from .federation import EventPrinter, print_comparison


def cmd_client(args: argparse.Namespace, console: Console) -> int:
    from ..core.model_store import META_FILE
    from ..core.paths import user_data_dir
    from ..fl.choices import INSECURE_CLIENT_LINE
    from ..fl.client_runner import ClientOptions, ClientRunner
    from ..fl.resolve import JoinCodeNeeded, resolve_target
    from ..fl.security import KnownServers

    try:
        target = resolve_target(args.server, args.join_code or "", args.insecure)
    except JoinCodeNeeded:
        raise UserError(
            "this server needs a join code: paste the whole invite, or add --join-code CODE (or --insecure for a plain server)"
        ) from None
    if target.insecure:
        console.line(f"WARNING: insecure connection to {target.address}: {INSECURE_CLIENT_LINE}")
    csv = resolve_data(args.data, console)
    invited = target.invited_name
    name = args.name or invited or csv.stem
    if invited and name != invited:
        console.line(f"note: this is {invited}'s invite; the coordinator shows this facility as {invited}")
    out = Path(args.out) if args.out else user_data_dir() / "models" / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    options = ClientOptions(
        insecure=target.insecure,
        join_code=target.join_code,
        fingerprint=target.fingerprint,
        known_servers=None if target.insecure else KnownServers(),
        name=name,
        out_dir=out,
        personalise=not args.no_personalise,
        compare=not args.no_compare,
    )
    printer = EventPrinter(console)
    runner = ClientRunner(csv, target.address, options, lambda e: printer(runner.name, e))
    result = run_in_thread(runner, console)
    if not isinstance(result, Finished):
        return fail(result.message)
    if result.rounds_completed and result.complete:
        print(f"final global model with this facility's own threshold saved to {out}")
    elif result.rounds_completed and (out / META_FILE).exists():
        print(f"model from an incomplete run ({result.rounds_completed} of {result.rounds_planned or '?'} rounds) saved to {out}")
    if runner.comparison is not None:
        print_comparison(runner.comparison)
    return 0


def cmd_forget(args: argparse.Namespace, console: Console) -> int:
    from ..fl.resolve import server_address
    from ..fl.security import KnownServers, short_fingerprint

    store = KnownServers()
    if args.list and args.server:
        raise UserError("give a server to forget, or --list, not both")
    if args.list:
        pinned = store.servers()
        if not pinned:
            print("this computer trusts no server yet (a facility remembers a server after joining it)")
        for target, fp in sorted(pinned.items()):
            print(f"{target}  certificate {short_fingerprint(fp)}...")
        return 0
    if not args.server:
        raise UserError("name the server to forget (HOST[:PORT], as the facility joined it), or see them with --list")
    address = server_address(args.server)
    fp = store.get(address)
    if fp is None:
        print(f"{address} is not among the servers this computer trusts; nothing to forget (see them with: pumpfl forget --list)")
        return 0
    store.forget(address)
    print(
        f"forgot {address} (certificate {short_fingerprint(fp)}...); "
        "the next join checks its certificate afresh, against the invite if there is one"
    )
    return 0


def add_client_parser(sub) -> None:
    client = sub.add_parser("client", help="take part in a federation as one facility")
    client.add_argument("data", help="CSV file, or a default client number 0-4")
    client.add_argument(
        "server",
        help="the invite, @FILE holding it (keeps the join code out of the process list), or HOST[:PORT] (default port 8080)",
    )
    client.add_argument("--join-code", help="the session's join code (already in an invite)")
    client.add_argument("--insecure", action="store_true", help="plain connection to an --insecure server")
    client.add_argument("--name", help="how this facility is shown to the coordinator")
    client.add_argument("--out", help="where to keep the final model with this facility's threshold")
    client.add_argument(
        "--no-compare",
        action="store_true",
        help="do not also train alone on the same rows (default: --out gets comparison.json, alone vs federated)",
    )
    client.add_argument(
        "--no-personalise",
        action="store_true",
        help="keep the federation's model as it is (default: fine-tune it on this facility's rows after the last round)",
    )
    client.set_defaults(func=cmd_client)


def add_forget_parser(sub) -> None:
    forget = sub.add_parser("forget", help="forget a server's certificate this computer trusted (pinned)")
    forget.add_argument(
        "server", nargs="?", metavar="HOST[:PORT]", help="the server's address, as a facility joined it (or its invite)"
    )
    forget.add_argument("--list", action="store_true", help="show the servers this computer trusts")
    forget.set_defaults(func=cmd_forget)
