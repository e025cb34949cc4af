"""The coordinator: waits for facilities, runs rounds, saves model and history (fl layer).

The strategy (FedAvg, FedProx, FedAdam, median, trimmed mean), differential privacy and shared
scaling are the settings' choices (``fl/choices.py``, ``fl/flower/strategies.py``); with DP each
round's record carries the epsilon spent so far (``fl/privacy.py``).

``ServerRunner.run()`` blocks and may be called from any thread (Flower's ``start_server()``
may not: it installs signal handlers); ``stop()`` from another thread ends it within seconds
and frees the port. Progress goes out as plain events (``events.py``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..core.detector import WANDER_BELOW
from ..core.files import write_private
from ..core.model import build_model, get_parameters
from ..core.paths import user_data_dir
from ..core.pooling import pool_scaler, pooled_threshold
from ..core.runtime import seed_everything
from . import checkpoint
from . import protocol as P
from .addresses import ServerAddress, check_port_free, parse_server_address, primary_address
from .events import (
    CheckpointSaved,
    Event,
    FacilityDropped,
    Failed,
    Finished,
    RoundFinished,
    RoundStarted,
    ServerListening,
    Waiting,
)
from .flower.admission import GatedClientManager
from .flower.rounds import Asked, FlowerRounds, let_go, tell
from .flower.wire import WireCounter, start_flower_server
from .invite import Invite
from .invite_files import RunInvites
from .invites import InviteBook
from .privacy import epsilon
from .protocol import FederationSettings
from .round_record import add_evaluations, round_record, trained_figures
from .security import fingerprint, load_or_make_identity, new_join_code

log = logging.getLogger(__name__)
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
        self._invites: RunInvites | None = None  # the run's named invites, once it listens

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

    # -- named invites (fl/invites.py, fl/invite_files.py) ------------------------------------

    def add_invite(self, name: str) -> Invite:
        """A new facility invited by name, with its own code, written to ``<out>/invites/``.

        Works while the server runs; before, put the names in ``ServerOptions.invites``.
        ValueError, in words, for an empty or taken name or a server that asks no join code."""
        if self.options.insecure:
            raise ValueError("an --insecure server asks no join code, so it cannot invite facilities by name")
        if self._invites is None:
            raise ValueError("the server is not running yet; add the facility to the names it starts with")
        return self._invites.add(name)

    def revoke_invite(self, name: str) -> None:
        """Withdraw a named invite: its live session ends, later attempts are refused, the other
        invites are untouched. ValueError when there is none by that name."""
        if self._invites is None:
            raise ValueError("this server has no named invites")
        self._invites.revoke(name)

    def invites(self) -> dict[str, Invite]:
        """The named invites in force, by facility name."""
        return self._invites.all() if self._invites is not None else {}

    def _start_invites(self, out: Path, state) -> None:
        """The named invites this run starts with: a resumed run's own (same codes, so its
        facilities get back in; not with ``new_code``), then the names in the options."""
        if self._book is None:
            if self.options.invites:
                raise ValueError("an --insecure server asks no join code, so it cannot invite facilities by name")
            return
        self._invites = RunInvites(self._book, self.invite, out, self.manager.revoke)
        resumed = self.options.resume if state is not None and not self.options.new_code else None
        self._invites.start(tuple(self.options.invites), resumed)

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
        # A new run's starting model is built from a seed every facility can build it from too.
        start_seed = {} if state is not None else {P.START_SEED: opts.seed}
        self.manager = GatedClientManager(
            self._book,
            {**s.hello_spec(), **start_seed},
            self.emit,
            sensors=state.sensors if state else None,
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
            self._start_invites(out, state)
            self.ready.set()
            self.emit(ServerListening(address=bind, invite=self.invite.to_text(), out_dir=str(out), fingerprint=fp))
            return self._rounds(out, state)
        except _Stopped:
            done = self._completed
            at = f"at round {done} of {s.rounds}" if done else "before the first round"
            self._ending("stopped", f"the coordinator stopped the run {at}")
            result = Finished(
                rounds_completed=done, out_dir=str(out), message=f"stopped {at}", complete=False, rounds_planned=s.rounds
            )
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
        reason = {P.END_REASON: P.dumps(self._end)} if self._end else None
        goodbyes = [
            threading.Thread(target=self._goodbye, args=(client, reason), daemon=True)
            for client in list(self.manager.all().values())
        ]
        for t in goodbyes:
            t.start()
        deadline = time.monotonic() + END_GRACE_S + 8
        for t in goodbyes:
            t.join(max(0.0, deadline - time.monotonic()))

    def _goodbye(self, client, reason: dict | None) -> None:
        busy = self._busy.get(client.cid)
        if busy is not None:
            _quietly(busy.exception, END_GRACE_S)  # the facility finishes its answer first
        if reason is not None:
            _quietly(tell, client, reason, 5)
        _quietly(let_go, client, 3)

    def _check_stop(self) -> None:
        if self._stop.is_set():
            raise _Stopped()

    def _ending(self, outcome: str, message: str, resumable: bool = False) -> None:
        """What the facilities are told when the run ends (P.END_REASON)."""
        s = self.settings
        at = self._completed if outcome != "failed" else min(self._completed + 1, s.rounds)
        self._end = {
            "outcome": outcome,
            "round": at,
            "rounds": s.rounds,
            "completed": self._completed,
            "resumable": resumable,
            "message": message,
        }

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
            self.emit(
                Waiting(
                    needed=s.min_clients,
                    connected=manager.num_available(),
                    seconds_left=round(left, 1),
                    detail=self._waiting_for(left),
                )
            )
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

    # -- the rounds ---------------------------------------------------------------------------

    def _out_of_round(self, rnd: int, missing: dict[str, str], left: dict[str, str]) -> None:
        """Name each facility that gave no answer: a FacilityDropped event and the
        round's record."""
        for cid, why in missing.items():
            name = self.manager.names.get(cid, cid[:8])
            left[name] = why
            self.emit(FacilityDropped(round=rnd, name=name, reason=why))

    def _rounds(self, out: Path, state) -> Finished:
        s = self.settings
        manager = self.manager
        self._await_quorum(state.round + 1 if state is not None else 1, out)
        spec = P.spec_from_shape(len(manager.sensors), manager.shape)
        if state is not None:
            params, history, start = state.parameters, state.history, state.round + 1
        else:
            seed_everything(self.options.seed)  # numpy's stream too (differential privacy's noise)
            params, history, start = get_parameters(build_model(spec, self.options.seed)), [], 1
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

        rounds = FlowerRounds(s, manager, params, config, self._dropped, self._check_stop, self._busy)
        for rnd in range(start, s.rounds + 1):
            left: dict[str, str] = {}  # name -> why it gave no answer this round
            trained, (t0, sent0, recv0) = self._train_with_quorum(rounds, rnd, out, left)
            released = rounds.combine(rnd, trained)  # a DP round that gave no model released nothing
            self._check_stop()
            per_client = trained_figures(trained.answers, self._name)
            evaluated, eval_loss = rounds.evaluate(rnd)
            self._out_of_round(rnd, {c: w for c, w in evaluated.missing.items() if self._name(c) not in left}, left)
            sketches = add_evaluations(per_client, evaluated.answers, self._name)
            self._check_stop()
            sent1, recv1 = self.counter.snapshot()
            threshold = pooled_threshold(sketches) if sketches else None
            record = round_record(
                s,
                rnd,
                per_client,
                eval_loss,
                trained.failures,
                left,
                self._drops,
                history,
                released,
                traffic=(sent1 - sent0, recv1 - recv0),
                model_bytes=sum(a.nbytes for a in rounds.arrays),
                seconds=time.perf_counter() - t0,
                agreed=(threshold, len(sketches)),
            )
            history.append(record)
            path = checkpoint.save(out, rnd, rounds.arrays, spec, manager.sensors, history, s, scaler, threshold)
            self._completed = rnd
            self.emit(CheckpointSaved(round=rnd, path=str(path)))
            self.emit(
                RoundFinished(
                    round=rnd,
                    rounds=s.rounds,
                    train_loss=record["train_loss"],
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
        result = Finished(
            rounds_completed=self._completed,
            out_dir=str(out),
            message="all rounds completed",
            complete=True,
            rounds_planned=s.rounds,
        )
        self.emit(result)
        return result

    def _name(self, cid: str) -> str:
        return self.manager.names.get(cid, cid[:8])

    def _train_with_quorum(self, rounds: FlowerRounds, rnd: int, out: Path, left: dict[str, str]) -> tuple[Asked, tuple]:
        """The round's training, once at least ``min_clients`` facilities answered: a round that
        loses too many runs again (after waiting for enough to be connected), up to
        ROUND_ATTEMPTS times; then the run ends, resumable. Returns the answers and when the
        attempt that got them began (time, bytes sent, bytes received)."""
        s = self.settings
        for _attempt in range(ROUND_ATTEMPTS):
            self._check_stop()
            self._await_quorum(rnd, out)
            self._drops = {}
            names = [self._name(c) for c in self.manager.all()]
            self._seen.update(names)
            self.emit(RoundStarted(round=rnd, rounds=s.rounds, participants=names))
            began = (time.perf_counter(), *self.counter.snapshot())
            trained = rounds.train(rnd)
            self._out_of_round(rnd, trained.missing, left)
            if len(trained.answers) >= s.min_clients:
                return trained, began
            log.info(
                "round %d: %d of %d facilities answered; the round runs again when enough are connected",
                rnd,
                len(trained.answers),
                s.min_clients,
            )
        raise _RunFailed(
            f"round {rnd}: fewer than {s.min_clients} facilities answered in {ROUND_ATTEMPTS} tries "
            f"({'; '.join(f'{n}: {w}' for n, w in left.items()) or 'no answer'}); the run ends here "
            f"(resume later with --resume {out})"
        )

    def _dropped(self, rnd: int, cid: str, reason: str) -> None:
        """A facility's answer failed the checks (fl/update_check.py): out of this round,
        by name."""
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
        """Send the agreed threshold to every facility still connected (they save it with
        the model)."""
        for client in list(self.manager.all().values()):
            _quietly(tell, client, {P.AGREED_THRESHOLD: float(threshold)}, 30)


def _quietly(fn, *args) -> None:
    with contextlib.suppress(Exception):
        fn(*args)
