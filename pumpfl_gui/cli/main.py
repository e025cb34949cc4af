"""The ``pumpfl`` parser, assembled from each command family's module, and the entry point
(cli layer).

User mistakes (bad file, bad folder, bad number) print one ``error: …`` line and exit 2;
nothing a user types produces a traceback. Long work prints progress on stderr.
"""

from __future__ import annotations

import argparse
import logging

from .. import __version__
from ..core import redaction
from ..core.errors import UserError
from . import bench, client, data, demo, server, train, watch
from .common import EXIT_USAGE, Console, Parser


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="pumpfl", description="PumpFL: federated pump-sensor anomaly detection.")
    parser.add_argument("--version", action="version", version=f"pumpfl {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    data.add_parsers(sub)
    train.add_parsers(sub)
    watch.add_parsers(sub)
    server.add_parsers(sub)
    client.add_client_parser(sub)
    demo.add_parsers(sub)
    client.add_forget_parser(sub)
    bench.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        redaction.install(handler)  # a join code never reaches a log line
    console = Console()
    try:
        return int(args.func(args, console) or 0)
    except UserError as exc:
        console.line(f"error: {exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        console.line("interrupted")
        return 130
    except OSError as exc:
        # Disk full, permission denied, a folder where a file should be: the user's to fix.
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        console.line(f"error: {exc.strerror or exc}{where}")
        return EXIT_USAGE
