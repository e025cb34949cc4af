"""The coordinator: waits for facilities, runs rounds, saves model and history (fl layer).

The strategy (FedAvg, FedProx, FedAdam, median, trimmed mean), differential privacy and shared
scaling are the settings' choices (``fl/choices.py``, ``fl/strategies.py``); with DP each
round's record carries the epsilon spent so far (``fl/privacy.py``).

``ServerRunner.run()`` blocks and may be called from any thread (Flower's ``start_server()``
may not: it installs signal handlers); ``stop()`` from another thread ends it within seconds
and frees the port. Progress goes out as plain events (``events.py``).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from flwr.common import Code, GetPropertiesIns, ndarrays_to_parameters, parameters_to_ndarrays

from ..core.detector import WANDER_BELOW
from ..core.model import build_model, get_parameters
from ..core.pooling import check_sketch, pool_scaler, pooled_threshold
from ..core.files import private_dir, write_private
from ..core.paths import user_data_dir
from ..core.runtime import seed_everything
from . import checkpoint
from .addresses import ServerAddress, check_port_free, parse_server_address, primary_address
from .events import (CheckpointSaved, Event, FacilityDropped, Failed, Finished, RoundFinished, RoundStarted, ServerListening,
                     Waiting)
from .gate import GatedClientManager
from .invites import InviteBook
from .invite import Invite, InviteError, parse_invite
from . import protocol as P
from .privacy import epsilon
from .protocol import FederationSettings
from .strategies import make_strategy
from .security import fingerprint, load_or_make_identity, new_join_code
from .wire import WireCounter, start_flower_server

log = logging.getLogger(__name__)
# Flower logs every sampling step at INFO; PumpFL reports rounds through its own events.
logging.getLogger("flwr").setLevel(logging.WARNING)
WAIT_REPORT_S = 5.0  # while the run waits for facilities: a Waiting event this often
END_GRACE_S = 10.0  # at the end, how long a facility still training may take before it is told why
ROUND_ATTEMPTS = 3  # a round that loses too many facilities runs again, this many times at most


@dataclass
class ServerOptions:
    host: str = "0.0.0.0"
    port: int = 8080
    advertise: str | None = None  # HOST[:PORT] facilities should use (a tunnel's, a VPN's), for the invite
    out_dir: Path | None = None
    insecure: bool = False
    join_code: str | None = field(default=None, repr=False)  # a secret: never in a log line
    resume: Path | None = None
    seed: int = 0
    identity_dir: Path | None = None  # lasting certificate + key (default: in the user data folder)
    new_code: bool = False  # with resume: a new join code instead of the saved run's
    invites: tuple[str, ...] = ()  # facilities to invite by name, each with its own code (fl/invites.py)


class _Stopped(Exception):
    pass


class _RunFailed(Exception):
    """The run cannot go on (too few facilities): a plain message, no traceback."""

    def __init__(self, message: str, resumable: bool = True) -> None:
        super().__init__(message)
        self.resumable = resumable


class ServerRunner:
    def __init__(
        self,
        settings: FederationSettings,
        options: ServerOptions,
        on_event: Callable[[Event], None] | None = None,
        tap=None,
    ) -> None:
        self.settings = settings
        self.options = options
        self._on_event = on_event
        self._stop = threading.Event()
        self.counter = WireCounter(tap)
        self.manager: GatedClientManager | None = None
        self.invite: Invite | None = None
        self.ready = threading.Event()  # set once the port listens
        self._completed = 0  # rounds finished (and saved) so far
        self._end: dict | None = None  # why the run ends, told to every facility (P.END_REASON)
        self._busy: dict = {}  # cid -> the request in flight to that facility (a Future)
        self._seen: set[str] = set()  # names of the facilities that took part in a round
        self._drops: dict[str, str] = {}  # this round: name -> why its answer failed the checks
        self._book: InviteBook | None = None  # the join codes in force (None: --insecure)
        self._named: dict[str, tuple[Invite, Path]] = {}  # named invites and where each is written
        self._out: Path | None = None  # the run's folder (named invites go in its invites/)
        self._invite_lock = threading.Lock()

    def emit(self, event: Event) -> None:
        log.info("%s", event)
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:  # a broken listener must not break the federation
                log.exception("event listener failed")

    def stop(self) -> None:
        self._stop.set()
        if self.manager is not None:
            self.manager.stop()

    # -- named invites (fl/invites.py) ----------------------------------------------------

    def add_invite(self, name: str) -> Invite:
        """A new facility invited by name, with its own code, written to ``<out>/invites/``.

        Works while the server runs; before, put the names in ``ServerOptions.invites``.
        ValueError, in words, for an empty or taken name or a server that asks no join code."""
        if self.options.insecure:
            raise ValueError("an --insecure server asks no join code, so it cannot invite facilities by name")
        if self._book is None or self.invite is None:
            raise ValueError("the server is not running yet; add the facility to the names it starts with")
        entry = self._book.add(name)
        return self._keep_named(Invite(self.invite.address, entry.code, self.invite.fingerprint, name=entry.name))

    def _keep_named(self, invite: Invite) -> Invite:
        """Record a named invite and write it to ``<out>/invites/`` (readable by this user only)."""
        folder = private_dir(self._out / "invites")
        with self._invite_lock:
            path = folder / f"{_file_safe(invite.name, {p.name for _, p in self._named.values()})}.txt"
            self._named[invite.name] = (invite, path)
        write_private(path, invite.to_text() + "\n")
        return invite

    def revoke_invite(self, name: str) -> None:
        """Withdraw a named invite: its live session ends, later attempts are refused, the other
        invites are untouched. ValueError when there is none by that name."""
        if self._book is None:
            raise ValueError("this server has no named invites")
        entry = self._book.revoke(name)
        with self._invite_lock:
            _, path = self._named.pop(entry.name)
        path.unlink(missing_ok=True)
        self.manager.revoke(entry.name)

    def invites(self) -> dict[str, Invite]:
        """The named invites in force, by facility name."""
        with self._invite_lock:
            return {name: invite for name, (invite, _) in self._named.items()}

    def _invite_by_name(self, out: Path, state) -> None:
        """The named invites this run starts with: a resumed run's own (same codes, so its
        facilities get back in; not with ``new_code``), then the names in the options."""
        self._out = out
        if self._book is None:
            if self.options.invites:
                raise ValueError("an --insecure server asks no join code, so it cannot invite facilities by name")
            return
        if state is not None and not self.options.new_code and self.options.resume:
            self._keep_invites(Path(self.options.resume) / "invites")
        for name in self.options.invites:
            if not self._book.is_named(name):
                self.add_invite(name)

    def _keep_invites(self, folder: Path) -> None:
        """A resumed run's named invites, with their codes, written into this run's folder."""
        for saved in _saved_invites(folder):
            if self._book.is_named(saved.name):
                continue
            entry = self._book.add(saved.name, saved.join_code)
            self._keep_named(replace(saved, name=entry.name, address=self.invite.address, fingerprint=self.invite.fingerprint))

    # -----------------------------------------------------------------------------------

    def run(self) -> Finished | Failed:
        opts, s = self.options, self.settings
        out = Path(opts.out_dir) if opts.out_dir else checkpoint.new_run_dir()
        out.mkdir(parents=True, exist_ok=True)
        check_port_free(opts.port, opts.host)
        state = checkpoint.load(opts.resume, s) if opts.resume else None
        certificate = None
        join_code = None
        fp = None
        if not opts.insecure:
            certificate = load_or_make_identity(opts.identity_dir or user_data_dir() / "server-identity")
            fp = fingerprint(certificate[0])
            (out / "server.crt").write_bytes(certificate[0])
            # A resumed run keeps its join code, so facilities still retrying get back in.
            join_code = opts.join_code or (state.join_code if state and not opts.new_code else None) or new_join_code()
        self._book = InviteBook(join_code) if join_code else None
        self.manager = GatedClientManager(
            self._book, s.hello_spec(), self.emit, sensors=state.sensors if state else None,
            fingerprint=fp or "",
        )
        if state is not None:
            self.manager.shape = P.shape_of(state.spec)  # a resumed run keeps its network
        if self._stop.is_set():
            self.manager.stop()
        bind = f"[{opts.host}]:{opts.port}" if ":" in opts.host else f"{opts.host}:{opts.port}"
        grpc_server = start_flower_server(self.manager, bind, self.counter, certificate)
        try:
            advertise_addr = (
                parse_server_address(opts.advertise, default_port=opts.port)
                if opts.advertise
                else ServerAddress(primary_address(opts.host), opts.port)
            )
            self.invite = Invite(advertise_addr, join_code or "", fp)
            write_private(out / "invite.txt", self.invite.to_text() + "\n")
            self._invite_by_name(out, state)
            self.ready.set()
            self.emit(ServerListening(address=bind, invite=self.invite.to_text(), out_dir=str(out), fingerprint=fp))
            return self._rounds(out, state)
        except _Stopped:
            done = self._completed
            at = f"at round {done} of {s.rounds}" if done else "before the first round"
            self._ending("stopped", f"the coordinator stopped the run {at}")
            result = Finished(rounds_completed=done, out_dir=str(out), message=f"stopped {at}", complete=False,
                              rounds_planned=s.rounds)
            self.emit(result)
            return result
        except _RunFailed as exc:
            self._ending("failed", str(exc), exc.resumable)
            result = Failed(message=str(exc))
            self.emit(result)
            return result
        except Exception as exc:
            log.exception("server failed")  # not an expected event: the traceback is for a bug report
            self._ending("failed", str(exc) or type(exc).__name__, resumable=self._completed > 0)
            result = Failed(message=str(exc) or type(exc).__name__)
            self.emit(result)
            return result
        finally:
            self.manager.stop()
            self._disconnect_all()
            grpc_server.stop(grace=1)

    def _disconnect_all(self) -> None:
        """Tell every connected facility why the run ends, then let it go (bounded in time).

        A facility still training is given ``END_GRACE_S`` to answer first: a message cannot
        reach it before then. One that does not answer in time just sees the connection close
        and keeps waiting for the coordinator, as it would if the server vanished."""
        from flwr.common import ReconnectIns

        reason = {P.END_REASON: P.dumps(self._end)} if self._end else None
        goodbyes = [
            threading.Thread(target=self._goodbye, args=(client, reason, ReconnectIns(seconds=None)), daemon=True)
            for client in list(self.manager.all().values())
        ]
        for t in goodbyes:
            t.start()
        deadline = time.monotonic() + END_GRACE_S + 8
        for t in goodbyes:
            t.join(max(0.0, deadline - time.monotonic()))

    def _goodbye(self, client, reason: dict | None, reconnect) -> None:
        busy = self._busy.get(client.cid)
        if busy is not None:
            _quietly(busy.exception, END_GRACE_S)  # the facility finishes its answer first
        if reason is not None:
            _quietly(client.get_properties, GetPropertiesIns(reason), 5, None)
        _quietly(client.reconnect, reconnect, 3, None)

    def _check_stop(self) -> None:
        if self._stop.is_set():
            raise _Stopped()

    def _ending(self, outcome: str, message: str, resumable: bool = False) -> None:
        """What the facilities are told when the run ends (P.END_REASON)."""
        s = self.settings
        at = self._completed if outcome != "failed" else min(self._completed + 1, s.rounds)
        self._end = {"outcome": outcome, "round": at, "rounds": s.rounds, "completed": self._completed,
                     "resumable": resumable, "message": message}

    # -- waiting for facilities --------------------------------------------------------------

    def _await_quorum(self, rnd: int, out: Path) -> None:
        """Return once ``min_clients`` facilities are connected. Meanwhile the run is paused:
        a ``Waiting`` event every WAIT_REPORT_S seconds says for whom and how long is left; after
        ``join_timeout`` seconds the run ends, resumable from its last saved round."""
        s, manager = self.settings, self.manager
        if manager.wait_for(s.min_clients, timeout=0):
            return
        deadline = time.monotonic() + s.join_timeout
        while True:
            self._check_stop()
            left = max(0.0, deadline - time.monotonic())
            self.emit(Waiting(needed=s.min_clients, connected=manager.num_available(), seconds_left=round(left, 1),
                              detail=self._waiting_for(left)))
            if manager.wait_for(s.min_clients, timeout=min(WAIT_REPORT_S, left)):
                return
            self._check_stop()
            if time.monotonic() >= deadline:
                break
        have = manager.num_available()
        if rnd == 1 and self._completed == 0 and not self._seen:
            raise _RunFailed(f"only {have} of {s.min_clients} facilities joined within {s.join_timeout:.0f} s", resumable=False)
        gone = self._missing()
        who = f" for {', '.join(gone)}" if gone else ""
        raise _RunFailed(
            f"round {rnd}: only {have} of {s.min_clients} facilities are connected after waiting {s.join_timeout:.0f} s{who}; "
            f"the run ends here (resume later with --resume {out})"
        )

    def _missing(self) -> list[str]:
        """Facilities that took part in this run and are not connected now."""
        here = {self.manager.names.get(cid) for cid in self.manager.all()}
        return sorted(name for name in self._seen if name not in here)

    def _waiting_for(self, left: float) -> str:
        gone = self._missing()
        if gone:
            return f"waiting for {', '.join(gone)}: {left:.0f} s"
        more = self.settings.min_clients - self.manager.num_available()
        return f"waiting for {more} more {'facility' if more == 1 else 'facilities'} to join: {left:.0f} s"

    # -- asking the facilities ---------------------------------------------------------------

    def _ask_all(self, instructions: list, method: str, rnd: int) -> tuple[list, dict[str, str]]:
        """Send each facility its instruction at once and collect the answers: (the answers,
        {cid: why there is none}). A facility that leaves is out at once (its connection
        closes, or gRPC keepalive notices a silent one within about 10 s); the others' answers
        are not held up by it. A stop request ends the wait at once."""
        timeout = self.settings.round_timeout
        pool = ThreadPoolExecutor(max_workers=max(1, len(instructions)), thread_name_prefix=f"pumpfl-{method}")
        asked: dict = {}
        t0 = time.monotonic()
        for proxy, ins in instructions:
            future = pool.submit(getattr(proxy, method), ins, timeout, rnd)
            asked[future] = proxy
            self._busy[proxy.cid] = future
        pool.shutdown(wait=False)
        answers, missing = [], {}
        pending = set(asked)
        while pending:
            done, pending = wait_futures(pending, timeout=0.5)
            for future in done:
                proxy = asked[future]
                failure = future.exception()
                if failure is None and future.result().status.code == Code.OK:
                    answers.append((proxy, future.result()))
                elif failure is None:
                    missing[proxy.cid] = f"answered with an error: {future.result().status.message}"
                elif time.monotonic() - t0 >= timeout - 1:
                    missing[proxy.cid] = f"did not answer within {timeout:.0f} s"
                else:
                    missing[proxy.cid] = "left during the round (connection closed)"
            self._check_stop()
        return answers, missing

    def _out_of_round(self, rnd: int, missing: dict[str, str], left: dict[str, str]) -> None:
        """Name each facility that gave no answer: a FacilityDropped event and the round's record."""
        for cid, why in missing.items():
            name = self.manager.names.get(cid, cid[:8])
            left[name] = why
            self.emit(FacilityDropped(round=rnd, name=name, reason=why))

    # -- the rounds ---------------------------------------------------------------------------

    def _rounds(self, out: Path, state) -> Finished:
        s = self.settings
        manager = self.manager
        self._await_quorum(state.round + 1 if state is not None else 1, out)
        spec = P.spec_from_shape(len(manager.sensors), manager.shape)
        if state is not None:
            params = state.parameters
            history = state.history
            start = state.round + 1
        else:
            seed_everything(self.options.seed)
            params = get_parameters(build_model(spec))
            history = []
            start = 1
        self._completed = start - 1
        scaler = self._shared_scaler(state)
        if s.dp_noise_multiplier is not None:
            epsilon([s.dp_noise_multiplier], s.dp_delta)  # load the accountant before round 1, not during it

        def config(rnd: int) -> dict:
            cfg = s.round_config(rnd)
            if scaler is not None:
                cfg[P.CFG_SCALER] = P.dumps(scaler.to_dict())
                cfg[P.CFG_SKETCH] = int(rnd == s.rounds)  # the last round's errors set the agreed threshold
            return cfg

        strategy = make_strategy(s, ndarrays_to_parameters(params), config, _no_metrics, manager.samples.get, self._dropped)
        parameters = ndarrays_to_parameters(params)
        for rnd in range(start, s.rounds + 1):
            left: dict[str, str] = {}  # name -> why it gave no answer this round
            for attempt in range(1, ROUND_ATTEMPTS + 1):
                self._check_stop()
                self._await_quorum(rnd, out)
                self._drops = {}
                names = [manager.names.get(c, c[:8]) for c in manager.all()]
                self._seen.update(names)
                self.emit(RoundStarted(round=rnd, rounds=s.rounds, participants=names))
                t0 = time.perf_counter()
                sent0, recv0 = self.counter.snapshot()
                instructions = strategy.configure_fit(server_round=rnd, parameters=parameters, client_manager=manager)
                results, missing = self._ask_all(instructions, "fit", rnd)
                self._out_of_round(rnd, missing, left)
                if len(results) >= s.min_clients:
                    break
                log.info("round %d: %d of %d facilities answered; the round runs again when enough are connected",
                         rnd, len(results), s.min_clients)
            else:
                raise _RunFailed(
                    f"round {rnd}: fewer than {s.min_clients} facilities answered in {ROUND_ATTEMPTS} tries "
                    f"({'; '.join(f'{n}: {w}' for n, w in left.items()) or 'no answer'}); the run ends here "
                    f"(resume later with --resume {out})"
                )
            failures = [RuntimeError(why) for why in missing.values()]
            new_params, _ = strategy.aggregate_fit(rnd, results, failures)
            self._check_stop()
            per_client: dict[str, dict] = {}
            if new_params is not None:
                parameters = new_params
            released = new_params is not None  # a DP round that gave no model released nothing
            for proxy, res in results:
                name = manager.names.get(proxy.cid, proxy.cid[:8])
                per_client[name] = {"samples": res.num_examples, "train_loss": float(res.metrics.get("train_loss", np.nan))}
            # Evaluation asks whoever is connected now; it never waits for the minimum again.
            eval_ins = strategy.configure_evaluate(server_round=rnd, parameters=parameters, client_manager=manager)
            eres, emissing = self._ask_all(eval_ins, "evaluate", rnd)
            self._out_of_round(rnd, {c: w for c, w in emissing.items() if manager.names.get(c, c[:8]) not in left}, left)
            eval_loss = None
            sketches = []
            if eres:
                eval_loss, _ = strategy.aggregate_evaluate(rnd, eres, [RuntimeError(w) for w in emissing.values()])
                for proxy, res in eres:
                    name = manager.names.get(proxy.cid, proxy.cid[:8])
                    per_client.setdefault(name, {})["eval_loss"] = float(res.loss)
                    per_client[name]["eval_samples"] = res.num_examples
                    sketch = _sketch(res.metrics.get(P.CFG_SKETCH))
                    if sketch is not None:
                        sketches.append(sketch)
            self._check_stop()
            sent1, recv1 = self.counter.snapshot()
            total = sum(c.get("samples", 0) for c in per_client.values())
            train_loss = (
                sum(c["samples"] * c["train_loss"] for c in per_client.values() if "train_loss" in c) / total if total else None
            )
            record = {
                "round": rnd,
                "participants": sorted(per_client),
                "per_client": per_client,
                "train_loss": train_loss,
                "eval_loss": None if eval_loss is None else float(eval_loss),
                "failures": len(failures),
                "bytes_sent": sent1 - sent0,
                "bytes_received": recv1 - recv0,
                "seconds": round(time.perf_counter() - t0, 3),
                "strategy": s.strategy,
            }
            if left:
                record["left"] = dict(left)  # facilities that gave no answer this round, and why
            if self._drops:
                record["dropped"] = dict(self._drops)  # answers that failed the server's checks
            if s.dp_noise_multiplier is not None:
                record["dp_noise_multiplier"] = s.dp_noise_multiplier if released else 0.0
                spent = [r["dp_noise_multiplier"] for r in history + [record] if r.get("dp_noise_multiplier")]
                record["epsilon"] = epsilon(spent, s.dp_delta)
                record["delta"] = s.dp_delta
            threshold = None
            if sketches:
                threshold = pooled_threshold(sketches)
                record["agreed_threshold"] = threshold
                record["threshold_from"] = len(sketches)
            history.append(record)
            path = checkpoint.save(out, rnd, parameters_to_ndarrays(parameters), spec, manager.sensors, history, s, scaler, threshold)
            self._completed = rnd
            self.emit(CheckpointSaved(round=rnd, path=str(path)))
            self.emit(
                RoundFinished(
                    round=rnd,
                    rounds=s.rounds,
                    train_loss=train_loss,
                    eval_loss=record["eval_loss"],
                    per_client=per_client,
                    bytes_sent=record["bytes_sent"],
                    bytes_received=record["bytes_received"],
                    seconds=record["seconds"],
                    epsilon=record.get("epsilon"),
                    agreed_threshold=threshold,
                )
            )
            if threshold is not None:
                self._tell_threshold(threshold)
        self._ending("completed", f"the run completed ({s.rounds} rounds)")
        result = Finished(rounds_completed=self._completed, out_dir=str(out), message="all rounds completed", complete=True,
                          rounds_planned=s.rounds)
        self.emit(result)
        return result

    def _dropped(self, rnd: int, cid: str, reason: str) -> None:
        """A facility's answer failed the checks (fl/update_check.py): out of this round, by name."""
        name = self.manager.names.get(cid, cid[:8])
        self._drops[name] = reason
        self.emit(FacilityDropped(round=rnd, name=name, reason=reason))

    def _shared_scaler(self, state):
        """With shared scaling: the run's agreed scaler — kept from before a resume, else pooled
        now from the facilities' aggregates (core/pooling.py)."""
        s = self.settings
        if not s.shared_scaling:
            return None
        if state is not None and state.scaler is not None:
            return state.scaler
        stats = [self.manager.stats[cid] for cid in self.manager.all() if cid in self.manager.stats]
        if not stats:
            raise RuntimeError("shared scaling: no facility sent its scaling summary")
        scaler = pool_scaler(stats, WANDER_BELOW, P.spec_from_shape(len(self.manager.sensors), self.manager.shape).window)
        rows = sum(int(x["rows"]) for x in stats)
        log.info("shared scaler pooled from %d facilities (%d rows)", len(stats), rows)
        return scaler

    def _tell_threshold(self, threshold: float) -> None:
        """Send the agreed threshold to every facility still connected (they save it with the model)."""
        for client in list(self.manager.all().values()):
            _quietly(client.get_properties, GetPropertiesIns({P.AGREED_THRESHOLD: float(threshold)}), 30, None)


def _sketch(value) -> dict | None:
    """A facility's error summary, or None when it sent none or a malformed one."""
    if not value:
        return None
    try:
        sketch = json.loads(str(value))
        check_sketch(sketch)
    except ValueError:
        log.warning("ignored a malformed error summary")
        return None
    return sketch


def _no_metrics(_results) -> dict:
    return {}  # per-facility figures are recorded individually in the history


def _quietly(fn, *args) -> None:
    try:
        fn(*args)
    except Exception:
        pass


def _file_safe(name: str, taken: set[str]) -> str:
    """A file name (without .txt) for a facility's invite, unlike any in ``taken``."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "facility"
    candidate, n = stem, 1
    while f"{candidate}.txt" in taken:
        n += 1
        candidate = f"{stem}-{n}"
    return candidate


def _saved_invites(folder: Path) -> list[Invite]:
    """The named invites a run wrote (``<out>/invites/*.txt``); unreadable ones are skipped."""
    found = []
    for path in sorted(folder.glob("*.txt")) if folder.is_dir() else []:
        try:
            invite = parse_invite(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, InviteError):
            log.warning("skipped the unreadable invite file %s", path)
            continue
        if invite.name and invite.join_code:
            found.append(invite)
    return found
