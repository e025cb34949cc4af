"""``pumpfl server``: coordinate a federation, with its invites (cli layer)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core.errors import UserError
from ..fl import narration
from ..fl.events import Finished, ServerListening
from .common import Console, fail, port, positive_float, positive_int, run_in_thread
from .federation import EventPrinter, federation_choices, settings_from


def read_invite_names(path: Path) -> list[str]:
    """Facility names from an invites file: one a line; blank lines and # comments are skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"the invites file {path} does not exist") from None
    except UnicodeDecodeError:
        raise UserError(f"the invites file {path} is not plain text; write one facility name a line") from None
    except OSError as exc:
        raise UserError(f"cannot read the invites file {path} ({exc.strerror or exc})") from None
    names = [line.strip() for line in text.splitlines()]
    names = [name for name in names if name and not name.startswith("#")]
    if not names:
        raise UserError(f"the invites file {path} names no facility; write one facility name a line")
    return names


def invite_names(args: argparse.Namespace) -> list[str]:
    """Facilities to invite by name: --invite, then --invites FILE (fl/run_check checks them)."""
    from ..fl.protocol import clean_name

    names = [name.strip() for name in args.invite]
    if any(not clean_name(name) for name in names):
        raise UserError('--invite needs the facility\'s name, e.g. --invite "Plant A"')
    if args.invites:
        names += read_invite_names(Path(args.invites))
    return names


def print_named_invites(invites: dict, out_dir: str, console: Console) -> None:
    """Each facility's own invite, once, on stdout; where the files are, on stderr."""
    for name, invite in invites.items():
        print(f"invite for {name}: {invite.to_text()}", flush=True)
    if invites:
        folder = Path(out_dir) / "invites"
        console.line(
            f"server: send each facility only its own invite (also in {folder}, readable by you only); "
            "the shared invite lets anyone who holds it join, under any name"
        )


def print_addresses(console: Console) -> None:
    """Listening on all networks without --advertise: which addresses the invite could carry."""
    from ..fl.addresses import local_addresses

    shown = ", ".join(f"{a.ip} ({a.interface}, {a.kind})" for a in local_addresses() if a.kind != "loopback")
    console.line(f"server: this computer's addresses: {shown or 'none but loopback'}")
    console.line(
        "server: sites on other networks need a VPN (Tailscale, ZeroTier) or tunnel address: "
        "restart with --advertise THAT_ADDRESS so the invite carries it"
    )


def cmd_server(args: argparse.Namespace, console: Console) -> int:
    from ..fl.addresses import PortInUseError
    from ..fl.choices import INSECURE_SERVER_LINE, caution, describe
    from ..fl.run_check import InsecureWithInvites, check_server_run
    from ..fl.security import normalise_join_code
    from ..fl.server_runner import ServerOptions, ServerRunner

    settings = settings_from(
        args,
        rounds=args.rounds,
        min_clients=args.min_clients,
        local_epochs=args.local_epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        round_timeout=args.round_timeout,
        join_timeout=args.join_timeout,
    )
    if args.new_code and not args.resume:
        raise UserError("--new-code only applies with --resume DIR: a new run always gets a new join code")
    try:
        invites = check_server_run(args.port, args.host, args.advertise, invite_names(args), args.insecure)
    except PortInUseError as exc:  # the words suit the app; here the way out is an option
        raise UserError(f"{exc}" + (f" (pumpfl server --port {exc.free_port})" if exc.free_port else "")) from None
    except InsecureWithInvites:
        raise UserError(
            "named invites carry their own join codes, which an --insecure server does not use; "
            "leave out --insecure, or the invites"
        ) from None
    if args.insecure:
        console.line(f"WARNING: --insecure: {INSECURE_SERVER_LINE} (port {args.port})")
    code = normalise_join_code(args.join_code) if args.join_code else None
    out = Path(args.out) if args.out else None
    printer = EventPrinter(console)

    def on_event(e):
        match e:
            case ServerListening():
                print(f"invite: {e.invite}", flush=True)
                print_named_invites(runner.invites(), e.out_dir, console)
                console.line(f"server: {narration.sentence(e)}")
                console.line(f"server: give facilities the invite above; waiting for {settings.min_clients} to join")
                console.line(f"server: {describe(settings)}")
                if caution(settings):
                    console.line(f"caution: {caution(settings)}")
                if not args.advertise and args.host in ("0.0.0.0", "::"):
                    print_addresses(console)
        printer("server", e)

    runner = ServerRunner(
        settings,
        ServerOptions(
            host=args.host,
            port=args.port,
            advertise=args.advertise,
            out_dir=out,
            insecure=args.insecure,
            join_code=code,
            invites=invites,
            resume=Path(args.resume) if args.resume else None,
            new_code=args.new_code,
        ),
        on_event,
    )
    result = run_in_thread(runner, console)
    return 0 if isinstance(result, Finished) else fail(result.message)


def add_parsers(sub) -> None:
    server = sub.add_parser(
        "server", parents=[federation_choices()], help="coordinate a federation (waits for facilities, runs rounds)"
    )
    server.add_argument("rounds", nargs="?", type=positive_int, default=10, help="rounds (default 10)")
    server.add_argument("min_clients", nargs="?", type=positive_int, default=2, help="facilities to wait for (default 2)")
    server.add_argument("--port", type=port, default=8080)
    server.add_argument("--host", default="0.0.0.0", help="address to listen on (default: all)")
    server.add_argument(
        "--advertise",
        metavar="HOST[:PORT]",
        help="the address facilities use to reach this server (a VPN or tunnel address), for the invite",
    )
    server.add_argument("--local-epochs", type=positive_int, default=3)
    server.add_argument("--lr", type=positive_float, default=1e-3)
    server.add_argument("--batch-size", type=positive_int, default=256)
    server.add_argument("--round-timeout", type=positive_float, default=600.0, help="seconds to wait for a facility's answer")
    server.add_argument(
        "--join-timeout",
        type=positive_float,
        default=3600.0,
        help="seconds to wait for the minimum of facilities, at the start and whenever too few are left "
        "(the run pauses meanwhile, then ends resumable)",
    )
    server.add_argument("--join-code", help="use this join code instead of a new random one")
    server.add_argument("--insecure", action="store_true", help="no TLS, no join code (trusted networks only)")
    server.add_argument(
        "--invite",
        action="append",
        default=[],
        metavar="NAME",
        help="make a named invite, with its own join code, for this facility (repeat for each)",
    )
    server.add_argument(
        "--invites", metavar="FILE", help="make a named invite for each facility named in FILE (one a line; # comments)"
    )
    server.add_argument("--out", help="folder for history.json and the global model")
    server.add_argument("--resume", help="continue the run saved in this folder")
    server.add_argument("--new-code", action="store_true", help="with --resume: a new join code instead of the saved run's")
    server.set_defaults(func=cmd_server)
