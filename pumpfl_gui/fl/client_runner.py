"""A facility: connects to the coordinator, trains on its own CSV, sends only parameters (fl).

``ClientRunner.run()`` blocks and may be called from any thread; ``stop()`` ends it within
seconds. Before anything reaches Flower the address is parsed and, with TLS, the server's
certificate is checked against the invite's fingerprint (or pinned on first use). A server that
vanishes is reported and retried with growing pauses up to ``max_wait`` seconds.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import grpc

from ..core.data_fit import spec_for
from ..core.dataset import SensorData, check_not_reserved, load_sensor_csv
from ..core.errors import UserError
from ..core.model import get_parameters
from ..core.task import Cancelled, TaskState
from ..core.windows import Scaler
from . import protocol as P
from .addresses import ServerAddress
from .alone import AloneTraining
from .events import ConnectionState, EpochLoss, EvaluateResult, Event, Failed, Finished, FitResult
from .facility import Facility
from .facility_trust import FacilityTrust
from .flower import client_codec as wire_codec
from .flower.wire import join_stream, open_channel
from .handshake import SERVER_NOT_PROVEN, ServerNotProven
from .messages import Ask, Evaluate, Instruction, LetGo, SendParameters, Train
from .security import KnownServers, TlsError, speaks_tls
from .update_check import check_arrays

log = logging.getLogger(__name__)
DUPLICATE_RETRY_S = 30.0  # "already connected" may be this facility's own lost session, until the server notices
_RETRYABLE = ("refused the connection", "did not answer", "cannot reach")  # the server may not be up (yet, or again)


@dataclass
class ClientOptions:
    insecure: bool = False
    join_code: str = field(default="", repr=False)  # a secret: never in a log line
    fingerprint: str | None = None  # from the invite; None: trust on first use and pin
    known_servers: KnownServers | None = None
    name: str | None = None
    out_dir: Path | None = None  # where the final model (with the local threshold) goes
    personalise: bool = True  # fine-tune the global model on this facility's rows before saving it
    max_wait: float = 600.0  # give up after this long without a server
    seed: int = 0
    train_rows: int | None = None  # only each file's first rows train (a benchmark's fixed split)
    compare: bool = False  # also train alone on the same rows; out_dir gets comparison.json (fl/alone.py)


class _Refused(Exception):
    pass


def _untrusted(what: str) -> UserError:
    """Why this facility stops: the coordinator sent something it must not use."""
    return UserError(f"the coordinator sent {what}; this facility stopped rather than use it")


class _Done(Exception):
    pass


class ClientRunner:
    def __init__(
        self,
        csv: Path | Sequence[Path],
        server: ServerAddress,
        options: ClientOptions,
        on_event: Callable[[Event], None] | None = None,
    ) -> None:
        # One CSV, or several (one facility's files: windows never cross from one to the next).
        self.csvs = [Path(csv)] if isinstance(csv, (str, Path)) else [Path(c) for c in csv]
        self.csv = self.csvs[0]
        self.server = server
        self.options = options
        self._on_event = on_event
        self._stop = threading.Event()
        self._task = TaskState()
        self._channel: grpc.Channel | None = None
        self.data: list[SensorData] = []
        self.facility: Facility | None = None
        self.alone: AloneTraining | None = None  # the same rows trained alone, with options.compare
        self.comparison: dict | None = None  # alone vs federated on this facility's file, at the end
        self.global_params = None
        self.start_params = None  # the coordinator's starting model, built here from its seed
        self.agreed_threshold: float | None = None  # the federation's, with shared scaling
        self._scaler_json = ""  # the shared scaler in use, as the server sent it
        self.rounds = 0
        self.rounds_planned = 0  # the run's rounds, as the last round's settings said
        self._joined = False  # has any session got as far as the server's first message
        # The handshake, this facility's side (fl/facility_trust.py), and since when the server
        # says this facility is already connected.
        self._trust = FacilityTrust(server, options, self.emit)
        self._duplicate_since: float | None = None
        self._joined_now = False  # ... and the latest one
        self._end: dict | None = None  # why the run ends, as the server said (P.END_REASON)

    def emit(self, event: Event) -> None:
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:
                log.exception("event listener failed")

    def stop(self) -> None:
        self._stop.set()
        self._task.cancel()
        if self._channel is not None:
            self._channel.close()

    @property
    def name(self) -> str:
        return self.options.name or self.csv.stem

    # -----------------------------------------------------------------------------------

    def run(self) -> Finished | Failed:
        try:
            return self._run()
        finally:
            if self.alone is not None:
                self.alone.close()

    def _run(self) -> Finished | Failed:
        self.data = self._load()  # a DataError surfaces before any connection
        since = time.monotonic()  # when this spell without a server began
        delay = 1.0
        while not self._stop.is_set():
            try:
                root = None if self.options.insecure else self._trust.certificate()
                self.emit(ConnectionState("connecting", str(self.server)))
                self._session(root)
                detail = "the server closed the connection"
            except _Done:
                ended = self._ended()
                if ended is not None:
                    return ended
                detail = "the run can resume" if self._end else "the server let this facility go without saying why"
            except _Refused as exc:
                return self._fail(f"the server refused this facility: {exc}")
            except (TlsError, UserError) as exc:
                if not any(m in str(exc) for m in _RETRYABLE):
                    return self._fail(str(exc))
                if not self._joined:  # a wrong address: say so now, not after max_wait
                    return self._fail(str(exc))
                detail = str(exc)
            except grpc.RpcError as exc:
                if self._stop.is_set():
                    break
                detail = exc.details() if hasattr(exc, "details") else str(exc)
                if self.options.insecure and speaks_tls(self.server.host, self.server.port):
                    return self._fail(
                        f"the server at {self.server} uses encryption (TLS) and a join code; "
                        "connect with its invite instead of --insecure"
                    )
                # The server answered and asks us to come back: busy, or our own lost session
                # still counts.
                busy = hasattr(exc, "code") and exc.code() in (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.ALREADY_EXISTS)
                if not self._joined and not busy:
                    return self._fail(f"cannot reach the server at {self.server} ({detail}); check that it runs and the address")
            except Cancelled:
                break
            if self._joined_now:  # this session got in: the wait for the server starts again
                since, delay, self._joined_now = time.monotonic(), 1.0, False
            waited = time.monotonic() - since
            if waited > self.options.max_wait:
                return self._fail(f"no server at {self.server} for {waited:.0f} s ({detail}); check that it runs and the address")
            self.emit(ConnectionState("reconnecting", f"{self._waiting_words()} ({detail}); retrying in {delay:.0f} s"))
            if self._stop.wait(delay):
                break
            delay = min(delay * 2, 30.0)
        return self._finish("stopped", complete=False, personalise=False)

    def _waiting_words(self) -> str:
        if self._end is not None and self._end.get("resumable"):
            return f"waiting for the coordinator at {self.server} to resume the run"
        if self._joined:
            return f"lost the server at {self.server}; waiting for it to come back"
        return f"cannot reach the server at {self.server}"

    def _ended(self) -> Finished | Failed | None:
        """What the server said about the run's end (P.END_REASON), acted on: the result, or None
        to keep waiting for the coordinator (a resumable failure, or no word at all)."""
        end = self._end
        if end is None:
            return None
        outcome, done, planned = end.get("outcome"), int(end.get("completed", self.rounds)), int(end.get("rounds", 0))
        if outcome == "completed":
            return self._finish(f"the run completed ({planned} rounds)", complete=True)
        if outcome == "stopped":
            at = f"at round {done} of {planned}" if done else "before the first round"
            return self._finish(f"the coordinator stopped the run {at}", complete=False)
        said = f"the coordinator's run failed at round {end.get('round', done + 1)} of {planned}: {end.get('message', '')}"
        if not end.get("resumable"):
            return self._fail(said)
        end["message"] = said + "; waiting for it to resume"
        self.emit(ConnectionState("waiting", end["message"]))
        return None

    def _planned(self) -> int:
        return int(self._end.get("rounds", 0)) if self._end else 0

    def _load(self, sensors: list[str] | None = None) -> list[SensorData]:
        """The facility's files, each with the first one's sensors (or ``sensors``)."""
        if sensors is not None and self.data:
            check_not_reserved(self.data[0], sensors)
        parts: list[SensorData] = []
        for csv in self.csvs:
            part = load_sensor_csv(csv, sensors=sensors or (parts[0].sensors if parts else None))
            parts.append(replace(part, train_rows=self.options.train_rows))
        return parts

    def _fail(self, message: str) -> Failed:
        result = Failed(message=message)
        self.emit(result)
        return result

    def _finish(self, message: str, complete: bool, personalise: bool | None = None) -> Finished:
        """The run ended as the server said, or you stopped taking part (``message`` "stopped"):
        save this facility's model from the last global model it has (marked as from an
        incomplete run when it is) and report it. A stop saves at once: the global model
        calibrated on this facility's rows, without the fine-tune."""
        out = self.options.out_dir
        planned = self._planned() or self.rounds_planned
        personalise = self.facility.personalise if personalise is None and self.facility else bool(personalise)
        if out is not None and self.facility is not None and self.global_params is not None:
            how = (
                "personalising the federation's model on this facility's rows"
                if personalise
                else "calibrating the federation's model on this facility's rows"
            )
            self.emit(ConnectionState("finishing", how))
            self.facility.save_final(
                self.global_params,
                Path(out),
                self.rounds,
                self.agreed_threshold,
                planned=None if complete else planned,
                personalise=personalise,
            )
            self._compare(Path(out), stopped=not personalise)
        else:
            out = None  # nothing saved: no folder to point at
        result = Finished(
            rounds_completed=self.rounds, out_dir=str(out or ""), message=message, complete=complete, rounds_planned=planned
        )
        self.emit(result)
        return result

    def _compare(self, out: Path, stopped: bool) -> None:
        """With ``options.compare``: alone vs federated on this facility's file (fl/alone.py)."""
        if self.alone is None or (stopped and self.alone.rounds == 0):
            return
        self.emit(ConnectionState("finishing", "comparing the federated model with the one trained alone on your rows"))
        try:  # a stop has cancelled the task already, and does not wait for a round in progress
            self.comparison = self.alone.finish(self.facility.final, self.facility.data, out, None if stopped else self._task)
        except Cancelled:
            self.emit(ConnectionState("finishing", "stopped before the comparison with training alone"))
        except (ValueError, UserError, OSError) as exc:  # the run's own model is saved: say why, go on
            self.emit(ConnectionState("finishing", f"could not compare with training alone: {exc}"))

    def _session(self, root: bytes | None) -> None:
        """One connection; returns when it ends (raises _Done when the server ends the run: it
        says why first, P.END_REASON)."""
        outbox: queue.Queue = queue.Queue()
        self._channel = open_channel(self.server.target, root)
        self._trust.new_session()
        if self._stop.is_set():
            self._channel.close()
            return
        try:
            stream = join_stream(self._channel, iter(outbox.get, None))
            for msg in _until_closed(stream, self):
                if not self._joined_now:
                    self._end = None  # a new session: whatever the last one said is past
                self._joined = self._joined_now = True
                instruction = wire_codec.read(msg)
                if isinstance(instruction, LetGo):
                    outbox.put(None)
                    raise _Done()
                outbox.put(self._handle(instruction))
        except grpc.RpcError as exc:
            raise self._refusal(exc) from None
        finally:
            outbox.put(None)
            self._channel.close()

    def _handle(self, instruction: Instruction):
        """The reply (a wire message) to one instruction from the coordinator."""
        match instruction:
            case Ask(config):
                return wire_codec.reply_properties(self._answer(config))
            case _ if not self._trust.proven:  # a server that skips the handshake gets nothing from this facility
                raise ServerNotProven(SERVER_NOT_PROVEN)
            case Train():
                return self._train(instruction)
            case Evaluate():
                return self._evaluate(instruction)
            case SendParameters():
                return wire_codec.reply_parameters(get_parameters(self.facility.model) if self.facility else [])
        raise grpc.RpcError(f"unexpected message {instruction!r} from the server")

    def _answer(self, config: dict) -> dict:
        """A question or word from the coordinator: the handshake, the agreed threshold, the end."""
        if P.END_REASON in config:  # the run ends: the server says why before it lets us go
            self._end = P.read_end_reason(config[P.END_REASON])
            return {}
        if P.AGREED_THRESHOLD in config:
            self._take_threshold(config[P.AGREED_THRESHOLD])
            return {}
        if P.HELLO_NONCE in config:  # handshake 1 -> 2: prove we hold the code, nothing else yet
            return self._trust.greet(config, self.name)
        # handshake 3 -> 4: only once the server proved it knows the code too
        self._trust.check_server(config)
        self._duplicate_since = None
        props = self._hello(config)
        held = (
            f"; {props[P.REPLY_SAMPLES]:,} training windows, of which each round trains on a sample"
            if props[P.REPLY_SAMPLES]
            else ""
        )
        self.emit(ConnectionState("connected", f"joined {self.server} as {self.name}{held}"))
        return props

    def _train(self, ins: Train):
        rnd = self._round_of(ins.config)
        try:
            P.train_settings_from_config(ins.config)
        except ValueError as exc:
            raise _untrusted(f"round settings out of bounds ({exc})") from None
        self._follow(ins.config)
        start = self._global_parameters(ins)
        self.emit(ConnectionState("training", f"round {rnd}"))
        params, n, metrics = self.facility.fit(
            start,
            ins.config,
            self._task,
            lambda r: self.emit(EpochLoss(round=rnd, epoch=r.epoch, epochs=r.epochs, loss=r.loss)),
        )
        metrics = {k: v for k, v in metrics.items() if k in P.FIT_METRICS}
        if self.alone is not None:
            self.alone.add_round(ins.config)
        total = self._whole(ins.config, P.CFG_ROUNDS, 0)
        self.emit(
            FitResult(
                round=rnd,
                name=self.name,
                samples=n,
                train_loss=metrics["train_loss"],
                seconds=metrics["seconds"],
                rounds=total,
                strategy=str(ins.config.get(P.CFG_STRATEGY, "")),
                proximal_mu=float(ins.config.get(P.CFG_MU, 0.0)),
            )
        )
        return wire_codec.reply_trained(params, n, metrics)

    def _evaluate(self, ins: Evaluate):
        rnd = self._round_of(ins.config)
        self.emit(ConnectionState("evaluating", f"round {rnd}"))
        self._follow(ins.config)
        self.global_params = self._global_parameters(ins)
        loss, n = self.facility.evaluate(self.global_params, self._task)
        self.rounds = max(self.rounds, rnd)
        self.rounds_planned = self._whole(ins.config, P.CFG_ROUNDS, 0) or self.rounds_planned
        self.emit(EvaluateResult(round=rnd, eval_loss=loss, samples=n, rounds=self.rounds_planned))
        metrics = {"eval_loss": loss}
        if self._whole(ins.config, P.CFG_SKETCH, 0):
            metrics[P.CFG_SKETCH] = P.dumps(self.facility.error_sketch(self.global_params, self._task))
        return wire_codec.reply_evaluated(loss, n, metrics)

    def _round_of(self, config: dict) -> int:
        """The round a fit or evaluate instruction is for; a facility that never joined
        gets none."""
        if self.facility is None:
            raise _untrusted("a round's instructions before this facility joined")
        return self._whole(config, P.CFG_ROUND)

    @staticmethod
    def _whole(config: dict, key: str, default: int | None = None) -> int:
        try:
            return P.round_number(config, key, default)
        except ValueError as exc:
            raise _untrusted(str(exc)) from None

    def _global_parameters(self, ins: Train | Evaluate) -> list:
        """The federation's model as sent, checked: the model's arrays, shapes, all finite; or,
        for a round that names it (P.CFG_HELD), the one this facility evaluated last."""
        if ins.arrays == [] and isinstance(ins, Train) and P.CFG_HELD in ins.config:
            named = str(ins.config[P.CFG_HELD])
            for held in (self.global_params, self.start_params):
                if held is not None and P.model_digest(held) == named:
                    return held
            raise _untrusted("a round without its model, naming one this facility does not hold")
        if ins.arrays is None:  # bytes that are no arrays at all
            raise _untrusted(f"a model that cannot be read ({ins.unreadable})")
        problem = check_arrays(ins.arrays, get_parameters(self.facility.model))
        if problem:
            raise _untrusted(f"a model unfit to use: {problem}")
        return ins.arrays

    def _take_threshold(self, value) -> None:
        """The agreed threshold, when usable (P.read_threshold); else this facility keeps the
        one it calibrates on its own rows at the end, rather than stop and lose the run."""
        self.agreed_threshold = P.read_threshold(value)
        if self.agreed_threshold is not None:
            said = f"the facilities agreed an anomaly threshold of {self.agreed_threshold:.4g}"
        else:
            said = f"the coordinator sent an unusable anomaly threshold ({str(value)[:40]}); this facility keeps its own"
        self.emit(ConnectionState("agreed", said))

    def _follow(self, config: dict) -> None:
        """Take up the federation's agreed scaler when the round's settings carry a new one."""
        shared = str(config.get(P.CFG_SCALER, ""))
        if shared and shared != self._scaler_json:
            try:
                self.facility.use_scaler(Scaler.from_dict(json.loads(shared)))
            except (KeyError, TypeError, ValueError, AttributeError) as exc:  # json's errors are ValueErrors too
                raise _untrusted(f"an unusable shared scaler ({exc})") from None
            self._scaler_json = shared
            self.emit(ConnectionState("agreed", "scaling the readings with the statistics the facilities agreed"))

    def _refusal(self, exc: grpc.RpcError) -> Exception:
        """What a stream's end status means here: refused (stop), already connected (try again
        for a while: it may be this facility's own lost session), or anything else (as it was)."""
        code = exc.code() if hasattr(exc, "code") else None
        details = exc.details() if hasattr(exc, "details") else str(exc)
        if code == grpc.StatusCode.PERMISSION_DENIED and details:
            return _Refused(details)
        if code == grpc.StatusCode.ALREADY_EXISTS:
            now = time.monotonic()
            self._duplicate_since = self._duplicate_since or now
            if now - self._duplicate_since > DUPLICATE_RETRY_S:
                return _Refused(details)
        return exc

    def _hello(self, config: dict) -> dict:
        """Handshake message 4: sensor names, sample count, model shape (never a reading)."""
        problem = ""
        data = self.data
        try:
            wanted, spec_cfg = P.read_federation(config)
        except ValueError:
            raise _untrusted("an unreadable description of the federation (sensors, model)") from None
        if wanted is not None and list(data[0].sensors) != wanted:
            try:
                data = self._load(wanted)
            except UserError as exc:
                problem = f"{self.name}'s data does not fit the federation: {exc}"
        samples = 0
        spec = None
        if not problem:
            try:
                sensors = len(data[0].sensors)
                # The coordinator's shape, or the one this facility's readings call for.
                spec = P.spec_from_shape(sensors, spec_cfg) if "window" in spec_cfg else spec_for(data[0])
                self.facility = Facility(data, spec, self.name, self.options.seed, self.options.personalise)
                if self.options.compare and self.options.out_dir is not None and self.alone is None:
                    self.alone = AloneTraining(self.facility)
                self._scaler_json = ""
                samples = self.facility.samples
            except ValueError as exc:
                problem = f"{self.name}: {exc}"
        reply = {
            P.REPLY_SENSORS: P.dumps(list(data[0].sensors)),
            P.REPLY_SAMPLES: samples,
            P.REPLY_PROBLEM: problem,
        }
        if spec is not None:
            reply[P.REPLY_SPEC] = P.dumps(P.shape_of(spec))
        self.start_params = P.starting_model(spec, spec_cfg)  # built from the hello's seed: round 1 need not carry it
        if self.start_params is not None:
            reply[P.REPLY_START] = P.model_digest(self.start_params)
        if spec_cfg.get("shared_scaling") and not problem:
            reply[P.REPLY_STATS] = P.dumps(self.facility.scaling_stats())  # aggregates, never a reading
        return reply


def _until_closed(stream, runner: ClientRunner):
    """The server's messages; once it has said why the run ends, the connection closing is
    that end (_Done), not a lost server."""
    try:
        yield from stream
    except grpc.RpcError:
        if runner._end is None:
            raise
    if runner._end is not None:
        raise _Done()
