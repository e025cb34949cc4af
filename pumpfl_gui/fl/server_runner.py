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
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from flwr.common import GetPropertiesIns, ndarrays_to_parameters, parameters_to_ndarrays
from flwr.server import Server

from ..core.detector import WANDER_BELOW
from ..core.model import build_model, get_parameters
from ..core.pooling import check_sketch, pool_scaler, pooled_threshold
from ..core.paths import user_data_dir
from ..core.runtime import seed_everything
from . import checkpoint
from .addresses import ServerAddress, check_port_free, parse_server_address, primary_address
from .events import CheckpointSaved, Event, Failed, Finished, RoundFinished, RoundStarted, ServerListening
from .gate import GatedClientManager
from .invite import Invite
from . import protocol as P
from .privacy import epsilon
from .protocol import FederationSettings
from .strategies import make_strategy
from .security import fingerprint, load_or_make_identity, new_join_code
from .wire import WireCounter, start_flower_server

log = logging.getLogger(__name__)
# Flower logs every sampling step at INFO; PumpFL reports rounds through its own events.
logging.getLogger("flwr").setLevel(logging.WARNING)


@dataclass
class ServerOptions:
    host: str = "0.0.0.0"
    port: int = 8080
    advertise: str | None = None  # HOST[:PORT] facilities should use (a tunnel's, a VPN's), for the invite
    out_dir: Path | None = None
    insecure: bool = False
    join_code: str | None = None
    resume: Path | None = None
    seed: int = 0
    identity_dir: Path | None = None  # lasting certificate + key (default: in the user data folder)


class _Stopped(Exception):
    pass


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

    # -----------------------------------------------------------------------------------

    def run(self) -> Finished | Failed:
        opts, s = self.options, self.settings
        out = Path(opts.out_dir) if opts.out_dir else checkpoint.new_run_dir()
        out.mkdir(parents=True, exist_ok=True)
        check_port_free(opts.port, opts.host)
        state = checkpoint.load(opts.resume) if opts.resume else None
        certificate = None
        join_code = None
        fp = None
        if not opts.insecure:
            certificate = load_or_make_identity(opts.identity_dir or user_data_dir() / "server-identity")
            fp = fingerprint(certificate[0])
            (out / "server.crt").write_bytes(certificate[0])
            # A resumed run keeps its join code, so facilities still retrying get back in.
            join_code = opts.join_code or (state.join_code if state else None) or new_join_code()
        self.manager = GatedClientManager(
            join_code, s.hello_spec(), self.emit, sensors=state.sensors if state else None, default_wait=s.round_timeout
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
            (out / "invite.txt").write_text(self.invite.to_text() + "\n")
            self.ready.set()
            self.emit(ServerListening(address=bind, invite=self.invite.to_text(), out_dir=str(out), fingerprint=fp))
            return self._rounds(out, state)
        except _Stopped:
            result = Finished(rounds_completed=self._completed, out_dir=str(out), message="stopped before the last round")
            self.emit(result)
            return result
        except Exception as exc:
            log.exception("server failed")
            result = Failed(message=str(exc) or type(exc).__name__)
            self.emit(result)
            return result
        finally:
            self.manager.stop()
            self._disconnect_all()
            grpc_server.stop(grace=1)

    def _disconnect_all(self) -> None:
        from flwr.common import ReconnectIns

        for client in list(self.manager.all().values()):
            threading.Thread(target=_quietly, args=(client.reconnect, ReconnectIns(seconds=None), 3, None), daemon=True).start()
        time.sleep(0.2)

    def _check_stop(self) -> None:
        if self._stop.is_set():
            raise _Stopped()

    def _rounds(self, out: Path, state) -> Finished | Failed:
        s = self.settings
        manager = self.manager
        if not manager.wait_for(s.min_clients, timeout=s.join_timeout):
            self._check_stop()
            raise RuntimeError(f"only {manager.num_available()} of {s.min_clients} facilities joined within {s.join_timeout:.0f} s")
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

        strategy = make_strategy(s, ndarrays_to_parameters(params), config, _no_metrics)
        server = Server(client_manager=manager, strategy=strategy)
        server.parameters = ndarrays_to_parameters(params)
        for rnd in range(start, s.rounds + 1):
            self._check_stop()
            if not manager.wait_for(s.min_clients, timeout=s.round_timeout):
                self._check_stop()
                raise RuntimeError(
                    f"round {rnd}: only {manager.num_available()} of {s.min_clients} facilities are connected "
                    f"after waiting {s.round_timeout:.0f} s; the run ends here (resume later with --resume {out})"
                )
            names = [manager.names.get(c, c[:8]) for c in manager.all()]
            self.emit(RoundStarted(round=rnd, rounds=s.rounds, participants=names))
            t0 = time.perf_counter()
            sent0, recv0 = self.counter.snapshot()
            fit = server.fit_round(server_round=rnd, timeout=s.round_timeout)
            self._check_stop()
            per_client: dict[str, dict] = {}
            if fit is None:
                raise RuntimeError(f"round {rnd}: no facility returned an update")
            new_params, _, (results, failures) = fit
            if not results:
                raise RuntimeError(f"round {rnd}: every facility failed ({len(failures)} failure(s))")
            if new_params is not None:
                server.parameters = new_params
            released = new_params is not None  # a DP round that gave no model released nothing
            for proxy, res in results:
                name = manager.names.get(proxy.cid, proxy.cid[:8])
                per_client[name] = {"samples": res.num_examples, "train_loss": float(res.metrics.get("train_loss", np.nan))}
            evaluated = server.evaluate_round(server_round=rnd, timeout=s.round_timeout)
            eval_loss = None
            sketches = []
            if evaluated is not None:
                eval_loss, _, (eres, _) = evaluated
                for proxy, res in eres:
                    name = manager.names.get(proxy.cid, proxy.cid[:8])
                    per_client.setdefault(name, {})["eval_loss"] = float(res.loss)
                    per_client[name]["eval_samples"] = res.num_examples
                    sketch = _sketch(res.metrics.get(P.CFG_SKETCH))
                    if sketch is not None:
                        sketches.append(sketch)
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
            path = checkpoint.save(out, rnd, parameters_to_ndarrays(server.parameters), spec, manager.sensors, history, s, scaler, threshold)
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
        result = Finished(rounds_completed=self._completed, out_dir=str(out), message="all rounds completed")
        self.emit(result)
        return result


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
