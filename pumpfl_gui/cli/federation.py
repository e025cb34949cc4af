"""What ``pumpfl server``, ``client`` and ``demo`` share: the coordinator's choices as options,
and the runners' events as console lines (cli layer).

The words of each event come from ``fl/narration.py``; here is only what the console shows
(``who: sentence``) and how often.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core.errors import UserError
from ..core.wording import counted
from ..fl import narration
from ..fl.events import EvaluateResult, Event, Failed, ServerListening, Waiting
from .common import Console, Parser, Throttle, non_negative_float, number, positive_float

WAITING_LINE_EVERY_S = 10.0  # a paused run's countdown: one console line this often at most


def console_line(who: str, e: Event) -> str | None:
    """``who: sentence`` for an event, or None where the console does not show it as a line."""
    match e:
        case ServerListening() | EvaluateResult():
            # The server command prints where it listens beside its invite; a facility's
            # evaluation is in the server's round line.
            return None
    text = narration.sentence(e)
    return None if text is None else f"{who}: {text}"


class EventPrinter:
    """Prints the events of ``pumpfl server`` / ``client``. A failure is left to main(), which
    prints it once as ``error: …``; a countdown is printed at most every ~10 s."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.throttle = Throttle(WAITING_LINE_EVERY_S)

    def __call__(self, who: str, e: Event) -> None:
        match e:
            case Failed():
                return
            case Waiting() if not self.throttle(who):
                return
        line = console_line(who, e)
        if line:
            self.console.line(line)


def settings_from(args: argparse.Namespace, **fields):
    """FederationSettings from the options: ``fields`` plus the strategy, DP and scaling choices."""
    from ..fl.choices import STRATEGIES
    from ..fl.run_check import make_settings

    own = {"mu": "fedprox", "server_lr": "fedadam", "trim": "trimmed"}
    for option, strategy in own.items():
        if getattr(args, option) is not None and args.strategy != strategy:
            flag = "--" + option.replace("_", "-")
            raise UserError(f"{flag} is {STRATEGIES[strategy].title}'s setting; add --strategy {strategy}, or leave {flag} out")
    if args.dp_noise is None and (args.dp_clip is not None or args.dp_delta is not None):
        raise UserError("--dp-clip and --dp-delta set differential privacy; turn it on with --dp-noise Z")
    choices = dict(strategy=args.strategy, dp_noise_multiplier=args.dp_noise, shared_scaling=args.shared_scaling)
    for option, field in (
        ("mu", "proximal_mu"),
        ("server_lr", "server_lr"),
        ("trim", "trim_fraction"),
        ("dp_clip", "dp_clipping_norm"),
        ("dp_delta", "dp_delta"),
    ):
        if getattr(args, option) is not None:
            choices[field] = getattr(args, option)
    return make_settings(**fields, **choices)


def federation_choices() -> argparse.ArgumentParser:
    """The coordinator's choices beyond FedAvg (server and demo); facilities learn them from it."""
    from ..fl.choices import DP_LINE, SHARED_SCALING_LINE, STRATEGIES

    parent = Parser(add_help=False)
    how = parent.add_argument_group("how updates are combined (facilities learn it from the server)")
    how.add_argument(
        "--strategy",
        choices=list(STRATEGIES),
        default="fedavg",
        help="; ".join(f"{s.name}: {s.line}" for s in STRATEGIES.values()) + " (default fedavg)",
    )
    how.add_argument("--mu", type=non_negative_float, help="fedprox: proximal term mu (default 0.01)")
    how.add_argument("--server-lr", type=positive_float, help="fedadam: the server's learning rate (default 0.03)")
    how.add_argument(
        "--trim", type=number, help="trimmed: fraction cut from each end, below 0.5 (default 0.2; at least one facility)"
    )
    dp = parent.add_argument_group("differential privacy", DP_LINE)
    dp.add_argument(
        "--dp-noise",
        type=positive_float,
        metavar="Z",
        help="turn it on with noise multiplier Z (about 2 or more keeps epsilon single-digit over 10 rounds)",
    )
    dp.add_argument("--dp-clip", type=positive_float, metavar="C", help="clipping norm of each facility's change (default 1.0)")
    dp.add_argument("--dp-delta", type=positive_float, metavar="DELTA", help="the delta epsilon is stated for (default 1e-5)")
    parent.add_argument("--shared-scaling", action="store_true", help=SHARED_SCALING_LINE)
    return parent


def print_comparison(comparison: dict, who: str = "") -> None:
    """Alone vs federated on the facility's own file, as a small table, then the model kept."""
    from ..fl.alone import COMPARISON_FILE, comparison_rows, kept_sentence

    rows = [("", "alone", "federated"), *comparison_rows(comparison)]
    width = max(len(r[0]) for r in rows)
    head = f"{who}: " if who else ""
    print(f"{head}alone vs federated on {comparison['data_file']} ({counted(comparison['rounds'], 'round')} each):")
    for what, alone, federated in rows:
        print(f"  {what:<{width}}  {alone:>10}  {federated:>10}")
    print(f"  {kept_sentence(comparison)}")
    print(f"  kept model: {comparison['kept_model']}; the figures: {Path(comparison['models']['federated']) / COMPARISON_FILE}")
