"""``pumpfl``: the headless commands (see ../shared/DESIGN.md, "Command-line contract").

User mistakes (bad file, bad folder, bad number) print one ``error: …`` line and exit 2;
nothing a user types produces a traceback. Long work prints progress on stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path

from . import __version__
from .core import redaction
from .core.errors import UserError

log = logging.getLogger(__name__)

EXIT_USAGE = 2
WAITING_LINE_EVERY_S = 10.0  # a paused run's countdown: one console line this often at most
DEFAULT_CLIENTS = 5


class _Parser(argparse.ArgumentParser):
    """argparse, but its complaints follow our one-line ``error:`` rule."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"error: {message} (see '{self.prog} --help')\n")
        raise SystemExit(EXIT_USAGE)


class Console:
    """Progress on stderr: one rewritten line on a terminal, sparse lines elsewhere."""

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._open = False

    def progress(self, message: str, fraction: float) -> None:
        if not self.tty:
            return
        pct = f"{100 * fraction:5.1f}% " if fraction >= 0 else ""
        self.stream.write(f"\r{pct}{message}\x1b[K")
        self.stream.flush()
        self._open = True

    def line(self, text: str) -> None:
        if self._open:
            self.stream.write("\r\x1b[K")
            self._open = False
        self.stream.write(text + "\n")
        self.stream.flush()


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def _positive_float(text: str) -> float:
    value = _number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} must be greater than 0")
    return value


def _non_negative_float(text: str) -> float:
    value = _number(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text} must be 0 or more")
    return value


def resolve_data(arg: str, console: Console | None = None) -> Path:
    """A facility's CSV: a client number 0-4 means the default data (made on first use)."""
    if arg.isdigit() and not Path(arg).exists():
        client = int(arg)
        if not 0 <= client < DEFAULT_CLIENTS:
            raise UserError(f"client number {client} does not exist; the default data has clients 0 to {DEFAULT_CLIENTS - 1}")
        from .core.simulator import ensure_default_data

        folder = ensure_default_data(progress=console.progress if console else None)
        return folder / f"client_{client}.csv"
    return Path(arg)


# ---- pumpfl data ... ---------------------------------------------------------------------


def cmd_data_generate(args: argparse.Namespace, console: Console) -> int:
    from .core.paths import default_data_dir
    from .core.simulator import generate

    out = Path(args.out) if args.out else default_data_dir()
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} is a file; --out needs a folder")
    t0 = time.perf_counter()
    kwargs = {} if args.seed is None else {"seed": args.seed}
    meta = generate(out, progress=console.progress, **kwargs)
    elapsed = time.perf_counter() - t0
    for client in meta["clients"]:
        console.line(f"{out / client['file']}: {client['rows']:,} rows, {len(client['failures'])} failure(s)")
    print(f"wrote {len(meta['clients'])} files and metadata.json to {out} in {elapsed:.1f} s")
    return 0


def cmd_data_check(args: argparse.Namespace, console: Console) -> int:
    from .core.dataset import describe, load_sensor_csv
    from .core.detector import length_verdict

    data = load_sensor_csv(resolve_data(args.csv, console))
    print(describe(data))
    print(f"length: {length_verdict(data)[1]}")
    return 0


def cmd_data_partition(args: argparse.Namespace, console: Console) -> int:
    from .core.partition import partition_public_csv

    meta = partition_public_csv(Path(args.sensor_csv), Path(args.out), clients=args.clients)
    print(f"wrote {args.clients} client files to {args.out}")
    print(json.dumps({k: v for k, v in meta.items() if k != "clients"}, indent=2, default=str))
    return 0


# ---- pumpfl train / score ----------------------------------------------------------------


def cmd_train(args: argparse.Namespace, console: Console) -> int:
    from .core.dataset import load_sensor_csv
    from .core.detector import LOCAL_TRAINING, Detector, spec_for
    from .core.model import ModelSpec
    from .core.model_store import save_detector
    from .core.task import TaskState

    path = resolve_data(args.csv, console)
    data = load_sensor_csv(path)
    shape = spec_for(data)  # the shape the data calls for; options override parts of it
    try:
        spec = ModelSpec(
            sensors=len(data.sensors),
            window=args.window or shape.window,
            channels=tuple(args.channels) if args.channels else shape.channels,
            kernel=args.kernel or shape.kernel,
        )
        settings = replace(LOCAL_TRAINING, lr=args.lr, batch_size=args.batch_size, seed=args.seed,
                           epochs=args.epochs or LOCAL_TRAINING.epochs, patience=None if args.no_early_stop else LOCAL_TRAINING.patience,
                           **({"stride": args.stride, "max_windows": None} if args.stride else {}))
    except ValueError as exc:
        raise UserError(str(exc)) from None
    console.line(f"training on {path.name}: {data.rows:,} rows, {len(data.sensors)} sensors, window {spec.window} rows, "
                 f"channels {spec.channels[0]}/{spec.channels[1]}, kernel {spec.kernel}")
    state = TaskState(console.progress)

    def on_epoch(r):
        held = f", held back {r.held_back_loss:.5f}" if r.held_back_loss is not None else ""
        console.line(f"epoch {r.epoch}/{r.epochs}  loss {r.loss:.5f}{held}  ({r.windows:,} windows, {r.seconds:.1f} s)")

    try:
        detector = Detector.fit(data, spec, settings, state=state, on_epoch=on_epoch)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    save_detector(detector, args.out)
    print(f"saved model to {args.out} after {detector.info['epochs_run']} epochs (threshold {detector.threshold:.4f})")
    return 0


def _format_metrics(metrics: dict) -> list[str]:
    lines = []
    if "failures" in metrics:
        f = metrics["failures"]
        lead = f"{f['median_lead_hours']:.1f} h" if f["median_lead_hours"] is not None else "-"
        fad = f"{f['false_alarms_per_day']:.2f}" if f["false_alarms_per_day"] is not None else "-"
        lines.append(f"failures caught before BROKEN: {f['caught']} of {f['failures']}, median lead time {lead}")
        for i, one in enumerate(f["per_failure"], 1):
            lead_i = f"{one['lead_hours']:.1f} h ahead" if one["caught"] else "missed"
            lines.append(f"  failure {i} (row {one['row']:,}): {lead_i}")
        lines.append(f"false alarms: {f['false_alarms']} in {f['watched_days']:.1f} watched days = {fad} per day")
    if "label_events" in metrics:
        e = metrics["label_events"]
        lines.append(f"labelled anomaly events with an alarm: {e['detected']} of {e['anomaly_events']}")
    if "pointwise" in metrics:
        p = metrics["pointwise"]
        auc = f"{p['roc_auc']:.3f}" if p["roc_auc"] is not None else "-"
        lines.append(
            f"point-wise: precision {p['precision']:.3f}  recall {p['recall']:.3f}  F1 {p['f1']:.3f}  "
            f"FAR {p['far_pct']:.2f} %  MAR {p['mar_pct']:.2f} %  ROC-AUC {auc}"
        )
    return lines


def cmd_score(args: argparse.Namespace, console: Console) -> int:
    from .core.dataset import load_sensor_csv
    from .core.detector import describe_model, score_data
    from .core.model_store import load_detector
    from .core.scores_csv import write_scores_csv
    from .core.task import TaskState

    detector = load_detector(args.model)
    if args.horizon_hours is not None:
        detector.detection = replace(detector.detection, horizon_hours=args.horizon_hours)
    path = resolve_data(args.data, console)
    data = load_sensor_csv(path, sensors=detector.sensors)
    try:
        result = score_data(detector, data, TaskState(console.progress))
    except ValueError as exc:
        raise UserError(str(exc)) from None
    flagged = int(result.flags.sum())
    console.line("")
    own = f"{detector.info.get('data_file', 'this facility')}'s rows"
    print("model: " + describe_model(detector.info, own, "the scored file's own normal rows"))
    print(f"{path.name}: {data.rows:,} rows scored, {flagged:,} flagged in {len(result.events)} event(s) (threshold {result.threshold:.5f})")
    for line in _format_metrics(result.metrics):
        print(line)
    if args.out:
        write_scores_csv(Path(args.out), data, result)
        print(f"wrote per-row scores to {args.out}")
    if args.json:
        Path(args.json).write_text(json.dumps(result.metrics, indent=2))
    return 0


# ---- pumpfl server / client / demo -------------------------------------------------------


def _event_line(who: str, e) -> str | None:
    """One human line for a runner event (None: not worth a line)."""
    k = e.kind
    if k == "ClientJoined":
        return f"{who}: {e.name} joined ({e.samples:,} training windows)"
    if k == "ClientRefused":
        return f"{who}: refused {e.name}: {e.reason}"
    if k == "ClientLeft":
        return f"{who}: {e.name} left"
    if k == "FacilityDropped":
        return f"{who}: round {e.round}: {e.name} is out of this round: {e.reason}"
    if k == "Waiting":
        return f"{who}: {e.connected} of {e.needed} facilities connected; {e.detail}"
    if k == "RoundStarted":
        return f"{who}: round {e.round}/{e.rounds} with {', '.join(e.participants)}"
    if k == "RoundFinished":
        tl = f"{e.train_loss:.4f}" if e.train_loss is not None else "-"
        el = f"{e.eval_loss:.4f}" if e.eval_loss is not None else "-"
        privacy = f"  epsilon {e.epsilon:.2f}" if e.epsilon is not None else ""
        agreed = f"  agreed threshold {e.agreed_threshold:.5f}" if e.agreed_threshold is not None else ""
        return (f"{who}: round {e.round}/{e.rounds} done in {e.seconds:.1f} s  train loss {tl}  eval loss {el}  "
                f"sent {e.bytes_sent / 1e6:.2f} MB  received {e.bytes_received / 1e6:.2f} MB{privacy}{agreed}")
    if k == "ConnectionState" and e.state in ("connected", "reconnecting", "waiting", "trusted", "agreed", "finishing"):
        return f"{who}: {e.detail}"
    if k == "FitResult":
        return f"{who}: round {e.round} trained on {e.samples:,} windows, loss {e.train_loss:.4f} ({e.seconds:.1f} s)"
    if k == "Finished":
        return f"{who}: {'finished' if e.complete else 'ended early'}: {e.message}"
    if k == "Failed":
        return f"{who}: failed: {e.message}"
    return None


class _Throttle:
    """Lets a kind of line through at most once every ``seconds`` (Waiting countdowns)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._last: dict[str, float] = {}

    def __call__(self, key: str) -> bool:
        now = time.monotonic()
        if now - self._last.get(key, -1e9) < self.seconds:
            return False
        self._last[key] = now
        return True


def _console_event(who: str, e, console: Console, throttle: _Throttle) -> None:
    """Print an event of ``pumpfl server`` / ``client``. A failure is left to main(), which
    prints it once as ``error: …``; a countdown is printed at most every ~10 s."""
    if e.kind == "Failed" or (e.kind == "Waiting" and not throttle(who)):
        return
    line = _event_line(who, e)
    if line:
        console.line(line)


def _settings_from(args, **fields):
    """FederationSettings from the command line: ``fields`` plus the strategy, DP and scaling choices."""
    from .fl.choices import STRATEGIES
    from .fl.protocol import FederationSettings

    own = {"mu": "fedprox", "server_lr": "fedadam", "trim": "trimmed"}
    for option, strategy in own.items():
        if getattr(args, option) is not None and args.strategy != strategy:
            flag = "--" + option.replace("_", "-")
            raise UserError(f"{flag} is {STRATEGIES[strategy].title}'s setting; add --strategy {strategy}, or leave {flag} out")
    if args.dp_noise is None and (args.dp_clip is not None or args.dp_delta is not None):
        raise UserError("--dp-clip and --dp-delta set differential privacy; turn it on with --dp-noise Z")
    choices = dict(strategy=args.strategy, dp_noise_multiplier=args.dp_noise, shared_scaling=args.shared_scaling)
    for option, field in (("mu", "proximal_mu"), ("server_lr", "server_lr"), ("trim", "trim_fraction"),
                          ("dp_clip", "dp_clipping_norm"), ("dp_delta", "dp_delta")):
        if getattr(args, option) is not None:
            choices[field] = getattr(args, option)
    try:
        return FederationSettings(**fields, **choices)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def _run_in_thread(runner, console: Console):
    """Run a blocking runner; Ctrl+C asks it to stop and waits for it."""
    import threading

    box = {}
    def work():
        try:
            box["result"] = runner.run()
        except BaseException as exc:  # handed to the main thread, which reports it
            box["result"] = exc

    t = threading.Thread(target=work, name="pumpfl-runner")
    t.start()
    try:
        while t.is_alive():
            t.join(0.2)
    except KeyboardInterrupt:
        console.line("stopping …")
        runner.stop()
        t.join(30)
        raise
    result = box["result"]
    if isinstance(result, BaseException):
        raise result
    return result


def _read_invite_names(path: Path) -> list[str]:
    """Facility names from an invites file: one a line; blank lines and lines starting with # are skipped."""
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


def _invite_names(args: argparse.Namespace) -> tuple[str, ...]:
    """The facilities to invite by name (--invite, then --invites FILE), each once."""
    from .fl.protocol import NAME_LIMIT, clean_name

    names = [name.strip() for name in args.invite]
    if any(not clean_name(name) for name in names):
        raise UserError('--invite needs the facility\'s name, e.g. --invite "Plant A"')
    if args.invites:
        names += _read_invite_names(Path(args.invites))
    seen: set[str] = set()
    for name in names:
        if len(name) > NAME_LIMIT:
            raise UserError(f"the facility name '{name[:20]}…' is longer than {NAME_LIMIT} characters; shorten it")
        if clean_name(name).casefold() in seen:
            raise UserError(f"'{name}' is invited twice; each facility gets one invite")
        seen.add(clean_name(name).casefold())
    if names and args.insecure:
        raise UserError("named invites carry their own join codes, which an --insecure server does not use; "
                        "leave out --insecure, or the invites")
    return tuple(names)


def _print_named_invites(invites: dict, out_dir: str, console: Console) -> None:
    """Each facility's own invite, once, on stdout; where the files are, on stderr."""
    for name, invite in invites.items():
        print(f"invite for {name}: {invite.to_text()}", flush=True)
    if invites:
        console.line(f"server: send each facility only its own invite (also in {Path(out_dir) / 'invites'}, readable by you only); "
                     "the shared invite lets anyone who holds it join, under any name")


def cmd_server(args: argparse.Namespace, console: Console) -> int:
    from .fl.addresses import check_port_free
    from .fl.choices import INSECURE_SERVER_LINE, caution, describe
    from .fl.security import normalise_join_code
    from .fl.server_runner import ServerOptions, ServerRunner

    settings = _settings_from(args, rounds=args.rounds, min_clients=args.min_clients, local_epochs=args.local_epochs,
                              lr=args.lr, batch_size=args.batch_size, round_timeout=args.round_timeout,
                              join_timeout=args.join_timeout)
    if args.advertise:
        from .fl.addresses import parse_server_address

        parse_server_address(args.advertise, default_port=args.port)  # a typo is caught before the server starts
    if args.new_code and not args.resume:
        raise UserError("--new-code only applies with --resume DIR: a new run always gets a new join code")
    invites = _invite_names(args)
    check_port_free(args.port, args.host)
    if args.insecure:
        console.line(f"WARNING: --insecure: {INSECURE_SERVER_LINE} (port {args.port})")
    code = normalise_join_code(args.join_code) if args.join_code else None
    out = Path(args.out) if args.out else None

    def on_event(e):
        if e.kind == "ServerListening":
            print(f"invite: {e.invite}", flush=True)
            _print_named_invites(runner.invites(), e.out_dir, console)
            console.line(f"server: listening on {e.address}; results in {e.out_dir}")
            console.line("server: give facilities the invite above; waiting for "
                         f"{settings.min_clients} to join")
            console.line(f"server: {describe(settings)}")
            if caution(settings):
                console.line(f"caution: {caution(settings)}")
            if not args.advertise and args.host in ("0.0.0.0", "::"):
                from .fl.addresses import local_addresses

                shown = ", ".join(f"{a.ip} ({a.interface}, {a.kind})" for a in local_addresses() if a.kind != "loopback")
                console.line(f"server: this computer's addresses: {shown or 'none but loopback'}")
                console.line("server: sites on other networks need a VPN (Tailscale, ZeroTier) or tunnel address: "
                             "restart with --advertise THAT_ADDRESS so the invite carries it")
        _console_event("server", e, console, throttle)

    throttle = _Throttle(WAITING_LINE_EVERY_S)
    runner = ServerRunner(settings, ServerOptions(host=args.host, port=args.port, advertise=args.advertise, out_dir=out,
                                                  insecure=args.insecure, join_code=code, invites=invites,
                                                  resume=Path(args.resume) if args.resume else None,
                                                  new_code=args.new_code), on_event)
    result = _run_in_thread(runner, console)
    return 0 if result.kind == "Finished" else _fail(result.message)


def _fail(message: str) -> int:
    raise UserError(message)


def _invite_argument(text: str) -> str:
    """The server argument; ``@FILE`` reads the invite from a file (such as the invite.txt the
    coordinator sent), so its join code does not show in the computer's process list."""
    if not text.startswith("@"):
        return text
    path = Path(text[1:]).expanduser()
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read the invite file {path}: {getattr(exc, 'strerror', None) or exc}") from None


def cmd_client(args: argparse.Namespace, console: Console) -> int:
    from .fl.addresses import parse_server_address
    from .core.model_store import META_FILE
    from .fl.client_runner import ClientOptions, ClientRunner
    from .fl.invite import looks_like_invite, parse_invite
    from .core.paths import user_data_dir
    from .fl.choices import INSECURE_CLIENT_LINE
    from .fl.security import KnownServers, normalise_join_code

    invited_name = None
    server = _invite_argument(args.server)
    if looks_like_invite(server):
        invite = parse_invite(server)
        address, code, fp, insecure = invite.address, invite.join_code, invite.fingerprint, invite.insecure
        invited_name = invite.name
    else:
        address, code, fp, insecure = parse_server_address(server), "", None, args.insecure
    if args.join_code:
        code = normalise_join_code(args.join_code)
    if not insecure and not code:
        raise UserError("this server needs a join code: paste the whole invite, or add --join-code CODE (or --insecure for a plain server)")
    if insecure:
        console.line(f"WARNING: insecure connection to {address}: {INSECURE_CLIENT_LINE}")
    csv = resolve_data(args.data, console)
    name = args.name or invited_name or csv.stem
    if invited_name and name != invited_name:
        console.line(f"note: this is {invited_name}'s invite; the coordinator shows this facility as {invited_name}")
    out = Path(args.out) if args.out else user_data_dir() / "models" / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    options = ClientOptions(insecure=insecure, join_code=code, fingerprint=fp, known_servers=None if insecure else KnownServers(),
                            name=name, out_dir=out, personalise=not args.no_personalise)
    throttle = _Throttle(WAITING_LINE_EVERY_S)
    runner = ClientRunner(csv, address, options, lambda e: _console_event(runner.name, e, console, throttle))
    result = _run_in_thread(runner, console)
    if result.kind != "Finished":
        return _fail(result.message)
    if result.rounds_completed and result.complete:
        print(f"final global model with this facility's own threshold saved to {out}")
    elif result.rounds_completed and (out / META_FILE).exists():
        print(f"model from an incomplete run ({result.rounds_completed} of {result.rounds_planned or '?'} rounds) saved to {out}")
    return 0


def _server_named_by(text: str):
    """The address in an invite, or HOST[:PORT] as typed (port 8080 by default)."""
    from .fl.addresses import parse_server_address
    from .fl.invite import looks_like_invite, parse_invite

    return parse_invite(text).address if looks_like_invite(text) else parse_server_address(text)


def cmd_forget(args: argparse.Namespace, console: Console) -> int:
    from .fl.security import KnownServers, short_fingerprint

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
    address = _server_named_by(args.server)
    fp = store.get(address)
    if fp is None:
        print(f"{address} is not among the servers this computer trusts; nothing to forget (see them with: pumpfl forget --list)")
        return 0
    store.forget(address)
    print(f"forgot {address} (certificate {short_fingerprint(fp)}...); the next join checks its certificate afresh, against the invite if there is one")
    return 0


def cmd_demo(args: argparse.Namespace, console: Console) -> int:
    import tempfile

    from .core.simulator import ensure_default_data
    from .fl.choices import caution, describe
    from .fl.local_demo import LocalFederation

    if args.clients > DEFAULT_CLIENTS:
        raise UserError(f"the default data has {DEFAULT_CLIENTS} facilities; use --clients 1 to {DEFAULT_CLIENTS}")
    folder = ensure_default_data(progress=console.progress)
    csvs = [folder / f"client_{i}.csv" for i in range(args.clients)]
    settings = _settings_from(args, rounds=args.rounds, min_clients=args.clients, local_epochs=args.local_epochs)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="pumpfl-demo-"))
    console.line(f"demo: a server and {args.clients} facilities on this computer, {args.rounds} rounds; results in {out}")
    console.line(f"demo: {describe(settings)}")
    if caution(settings):
        console.line(f"caution: {caution(settings)}")
    t0 = time.perf_counter()
    rounds: list = []

    def on_event(who, e):
        if e.kind == "RoundFinished":
            rounds.append(e)
        if e.kind == "EpochLoss":
            console.progress(f"{who}: round {e.round}, epoch {e.epoch}/{e.epochs}, loss {e.loss:.4f}", -1)
            return
        line = _event_line(who, e)
        if line and (who == "server" or e.kind in ("Failed", "ConnectionState")):
            console.line(line)

    result = _run_in_thread(LocalFederation(settings, csvs, out, on_event), console)
    if result.kind != "Finished":
        return _fail(result.message)
    print(f"demo finished: {result.rounds_completed} rounds in {time.perf_counter() - t0:.1f} s; global model in {out / 'server' / 'global_model'}")
    for r in rounds:
        privacy = f"  epsilon {r.epsilon:.2f}" if r.epsilon is not None else ""
        print(f"round {r.round:2d}: eval loss {r.eval_loss:.4f}  bytes sent {r.bytes_sent:,}  received {r.bytes_received:,}{privacy}")
    if rounds and rounds[-1].epsilon is not None:
        print(f"privacy: epsilon {rounds[-1].epsilon:.2f} for delta {settings.dp_delta:g} after {len(rounds)} rounds (per facility)")
    if rounds and rounds[-1].agreed_threshold is not None:
        print(f"agreed threshold {rounds[-1].agreed_threshold:.5f}; each facility's model keeps it with the agreed scaler")
    return 0


# ---- pumpfl bench ... ---------------------------------------------------------------------


def _write_json(result: dict, out: str | None) -> None:
    if out:
        from .core.files import write_atomic

        Path(out).parent.mkdir(parents=True, exist_ok=True)
        write_atomic(Path(out), (json.dumps(result, indent=2) + "\n").encode())


def cmd_bench_skab(args: argparse.Namespace, console: Console) -> int:
    from .bench.skab import SkabSettings, run_skab

    settings = SkabSettings(rounds=args.rounds, local_epochs=args.local_epochs, seed=args.seed)
    r = run_skab(Path(args.data), args.mode, settings, console.progress)
    _write_json(r, args.out)
    conv = r["published"]["Conv-AE"]
    console.line(f"SKAB, {args.mode}: {len(r['files'])} labelled files, {r['wall_s']:.1f} s")
    print(f"F1 {r['f1']:.3f}  FAR {r['far_pct']:.2f} %  MAR {r['mar_pct']:.2f} %   (published Conv-AE: F1 {conv['f1']}, FAR {conv['far_pct']} %, MAR {conv['mar_pct']} %)")
    nab, delay = r["nab"], r["delay"]
    if nab is not None:
        print(f"NAB standard {nab['standard']:.2f}  low FP {nab['low_fp']:.2f}  low FN {nab['low_fn']:.2f}")
    mean = "-" if delay["mean_delay_s"] is None else f"{delay['mean_delay_s']:.1f} s"
    print(f"anomalies detected {delay['detected']} of {delay['events']}, mean detection delay {mean}")
    for site, f in r["per_facility"].items():
        print(f"  {site}: F1 {f['f1']:.3f}  FAR {f['far_pct']:.2f} %  MAR {f['mar_pct']:.2f} %")
    return 0


def cmd_bench_pump(args: argparse.Namespace, console: Console) -> int:
    from .bench.pump import MODES, run_pump
    from .core.simulator import ensure_default_data
    from .fl.protocol import FederationSettings

    folder = Path(args.data) if args.data else ensure_default_data(progress=console.progress)
    r = run_pump(folder, FederationSettings(rounds=args.rounds, local_epochs=args.local_epochs), args.seed, console.progress)
    _write_json(r, args.out)
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
    from .bench.speed import run_speed

    r = run_speed(resolve_data(args.data, console), args.max_rows, console.progress)
    _write_json(r, args.out)
    ours, naive, ratios = r["pumpfl"], r["naive"], r["ratios"]
    print(f"rows {r['data']['rows']:,}, {r['data']['sensors']} sensors")
    print(f"PumpFL: prep {ours['prep_s']:.3f} s, {ours['windows_per_s']:,.0f} windows/s, round {ours['round_s']:.2f} s")
    print(f"naive:  prep {naive['prep_s']:.3f} s, {naive['windows_per_s']:,.0f} windows/s, round {naive['round_s']:.2f} s")
    print(f"round {ratios['round_speedup']:.2f}x faster; ROC-AUC {r['detection']['pumpfl_roc_auc']} vs {r['detection']['naive_roc_auc']}")
    return 0


def cmd_bench_report(args: argparse.Namespace, console: Console) -> int:
    from .bench.report import make_report

    page = make_report(Path(args.skab), Path(args.out), Path(args.readme) if args.readme else None, args.reuse, console.progress, console.line)
    print(f"wrote {page}")
    return 0


# ---- parser and entry point --------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pumpfl", description="PumpFL: federated pump-sensor anomaly detection.")
    parser.add_argument("--version", action="version", version=f"pumpfl {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    data = sub.add_parser("data", help="make, check or partition sensor data")
    data_sub = data.add_subparsers(dest="data_command", required=True, parser_class=_Parser)
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
    part.add_argument("--clients", type=_positive_int, default=DEFAULT_CLIENTS)
    part.set_defaults(func=cmd_data_partition)

    train = sub.add_parser("train", help="train one facility's detector alone (the local baseline)")
    train.add_argument("csv", help="CSV file, or a default client number 0-4")
    train.add_argument("--out", required=True, help="model folder to write")
    train.add_argument("--epochs", type=_positive_int, help="most epochs (default 100, stopping early once the held-back loss stops falling)")
    train.add_argument("--no-early-stop", action="store_true", help="train every epoch, holding nothing back")
    train.add_argument("--lr", type=_positive_float, default=1e-3)
    train.add_argument("--batch-size", type=_positive_int, default=32)
    train.add_argument("--window", type=_positive_int, help="rows per window (default: about a minute of readings, at least 32)")
    train.add_argument("--channels", type=_positive_int, nargs=2, metavar=("C1", "C2"), help="default: 32 16 for up to 16 sensors, else 16 4")
    train.add_argument("--kernel", type=_positive_int, help="convolution kernel, odd (default: 7 for up to 16 sensors, else 3)")
    train.add_argument("--stride", type=_positive_int, help="step between training windows (default: every window, at most 4,000 an epoch)")
    train.add_argument("--seed", type=int, default=0)
    train.set_defaults(func=cmd_train)

    score = sub.add_parser("score", help="flag anomalies in a CSV with a trained model")
    score.add_argument("--model", required=True, help="model folder (from train or a federation)")
    score.add_argument("--data", required=True, help="CSV file, or a default client number 0-4")
    score.add_argument("--out", help="write per-row scores and flags to this CSV")
    score.add_argument("--json", help="write the metrics to this JSON file")
    score.add_argument("--horizon-hours", type=_positive_float, help="how long before a failure an alarm counts as a catch (default: the model's, 24)")
    score.set_defaults(func=cmd_score)

    choices = _federation_choices()
    server = sub.add_parser("server", parents=[choices], help="coordinate a federation (waits for facilities, runs rounds)")
    server.add_argument("rounds", nargs="?", type=_positive_int, default=10, help="rounds (default 10)")
    server.add_argument("min_clients", nargs="?", type=_positive_int, default=2, help="facilities to wait for (default 2)")
    server.add_argument("--port", type=_port, default=8080)
    server.add_argument("--host", default="0.0.0.0", help="address to listen on (default: all)")
    server.add_argument("--advertise", metavar="HOST[:PORT]", help="the address facilities use to reach this server (a VPN or tunnel address), for the invite")
    server.add_argument("--local-epochs", type=_positive_int, default=3)
    server.add_argument("--lr", type=_positive_float, default=1e-3)
    server.add_argument("--batch-size", type=_positive_int, default=256)
    server.add_argument("--round-timeout", type=_positive_float, default=600.0, help="seconds to wait for a facility's answer")
    server.add_argument("--join-timeout", type=_positive_float, default=3600.0,
                        help="seconds to wait for the minimum of facilities, at the start and whenever too few are left "
                             "(the run pauses meanwhile, then ends resumable)")
    server.add_argument("--join-code", help="use this join code instead of a new random one")
    server.add_argument("--insecure", action="store_true", help="no TLS, no join code (trusted networks only)")
    server.add_argument("--invite", action="append", default=[], metavar="NAME",
                        help="make a named invite, with its own join code, for this facility (repeat for each)")
    server.add_argument("--invites", metavar="FILE", help="make a named invite for each facility named in FILE (one a line; # comments)")
    server.add_argument("--out", help="folder for history.json and the global model")
    server.add_argument("--resume", help="continue the run saved in this folder")
    server.add_argument("--new-code", action="store_true", help="with --resume: a new join code instead of the saved run's")
    server.set_defaults(func=cmd_server)

    client = sub.add_parser("client", help="take part in a federation as one facility")
    client.add_argument("data", help="CSV file, or a default client number 0-4")
    client.add_argument("server", help="the invite, @FILE holding it (keeps the join code out of the process list), or HOST[:PORT] (default port 8080)")
    client.add_argument("--join-code", help="the session's join code (already in an invite)")
    client.add_argument("--insecure", action="store_true", help="plain connection to an --insecure server")
    client.add_argument("--name", help="how this facility is shown to the coordinator")
    client.add_argument("--out", help="where to keep the final model with this facility's threshold")
    client.add_argument("--no-personalise", action="store_true",
                        help="keep the federation's model as it is (default: fine-tune it on this facility's rows after the last round)")
    client.set_defaults(func=cmd_client)

    demo = sub.add_parser("demo", parents=[choices], help="a server and K default facilities on this computer")
    demo.add_argument("--rounds", type=_positive_int, default=3)
    demo.add_argument("--clients", type=_positive_int, default=2)
    demo.add_argument("--local-epochs", type=_positive_int, default=3)
    demo.add_argument("--out", help="folder for the run (default: a new temporary folder)")
    demo.set_defaults(func=cmd_demo)
    forget = sub.add_parser("forget", help="forget a server's certificate this computer trusted (pinned)")
    forget.add_argument("server", nargs="?", metavar="HOST[:PORT]", help="the server's address, as a facility joined it (or its invite)")
    forget.add_argument("--list", action="store_true", help="show the servers this computer trusts")
    forget.set_defaults(func=cmd_forget)
    bench = sub.add_parser("bench", help="measure detection quality and speed (benchmarks)")
    bench_sub = bench.add_subparsers(dest="bench_command", required=True, parser_class=_Parser)
    training = _Parser(add_help=False)  # what both detection benchmarks share
    training.add_argument("--rounds", type=_positive_int, default=10, help="rounds (alone and pooled: blocks of local epochs)")
    training.add_argument("--local-epochs", type=_positive_int, default=3)
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
    speed.add_argument("--max-rows", type=_positive_int, help="use only the first rows")
    speed.add_argument("--out", help="write the figures to this JSON file")
    speed.set_defaults(func=cmd_bench_speed)
    rep = bench_sub.add_parser("report", help="run every benchmark and write docs/BENCHMARKS.md with its plots")
    rep.add_argument("--skab", required=True, help="the SKAB folder (e.g. ../shared/data/skab)")
    rep.add_argument("--out", default="docs", help="folder for BENCHMARKS.md and bench/ (default docs)")
    rep.add_argument("--readme", help="also refresh the summary table in this README")
    rep.add_argument("--reuse", action="store_true", help="redraw from the JSON files of the last run instead of measuring")
    rep.set_defaults(func=cmd_bench_report)
    return parser


def _federation_choices() -> argparse.ArgumentParser:
    """The coordinator's choices beyond FedAvg (server and demo); facilities learn them from it."""
    from .fl.choices import DP_LINE, SHARED_SCALING_LINE, STRATEGIES

    parent = _Parser(add_help=False)
    how = parent.add_argument_group("how updates are combined (facilities learn it from the server)")
    how.add_argument("--strategy", choices=list(STRATEGIES), default="fedavg",
                     help="; ".join(f"{s.name}: {s.line}" for s in STRATEGIES.values()) + " (default fedavg)")
    how.add_argument("--mu", type=_non_negative_float, help="fedprox: proximal term mu (default 0.01)")
    how.add_argument("--server-lr", type=_positive_float, help="fedadam: the server's learning rate (default 0.03)")
    how.add_argument("--trim", type=_number, help="trimmed: fraction cut from each end, below 0.5 (default 0.2; at least one facility)")
    dp = parent.add_argument_group("differential privacy", DP_LINE)
    dp.add_argument("--dp-noise", type=_positive_float, metavar="Z", help="turn it on with noise multiplier Z (about 2 or more keeps epsilon single-digit over 10 rounds)")
    dp.add_argument("--dp-clip", type=_positive_float, metavar="C", help="clipping norm of each facility's change (default 1.0)")
    dp.add_argument("--dp-delta", type=_positive_float, metavar="DELTA", help="the delta epsilon is stated for (default 1e-5)")
    parent.add_argument("--shared-scaling", action="store_true", help=SHARED_SCALING_LINE)
    return parent


def _port(text: str) -> int:
    value = _positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port (1-65535)")
    return value


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


if __name__ == "__main__":
    sys.exit(main())
