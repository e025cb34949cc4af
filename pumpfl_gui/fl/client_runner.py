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
from dataclasses import dataclass, replace
from pathlib import Path

import grpc
from flwr.common import (
    Code,
    EvaluateRes,
    FitRes,
    GetParametersRes,
    GetPropertiesRes,
    Status,
    ndarrays_to_parameters,
    parameters_to_ndarrays,
    serde,
)
from flwr.proto.transport_pb2 import ClientMessage

from ..core.dataset import SensorData, load_sensor_csv
from ..core.errors import UserError
from ..core.detector import spec_for
from ..core.model import get_parameters
from ..core.task import Cancelled, TaskState
from ..core.windows import Scaler
from . import protocol as P
from .addresses import ServerAddress
from .events import ConnectionState, EpochLoss, Event, EvaluateResult, Failed, Finished, FitResult
from .facility import Facility
from .security import (FingerprintMismatch, KnownServers, TlsError, fetch_certificate, invite_mismatch, join_proof,
                       judge_certificate, short_fingerprint)
from .wire import join_stream, open_channel

log = logging.getLogger(__name__)
_OK = Status(code=Code.OK, message="ok")
# Messages of errors worth another try: the server may simply not be up (yet, or again).
_RETRYABLE = ("refused the connection", "did not answer", "cannot reach")


@dataclass
class ClientOptions:
    insecure: bool = False
    join_code: str = ""
    fingerprint: str | None = None  # from the invite; None: trust on first use and pin
    known_servers: KnownServers | None = None
    name: str | None = None
    out_dir: Path | None = None  # where the final model (with the local threshold) goes
    personalise: bool = True  # fine-tune the global model on this facility's rows before saving it
    max_wait: float = 600.0  # give up after this long without a server
    seed: int = 0
    train_rows: int | None = None  # only each file's first rows train (a benchmark's fixed split)


def _speaks_tls(server: ServerAddress) -> bool:
    try:
        fetch_certificate(server.host, server.port, timeout=3.0)
        return True
    except UserError:
        return False


class _Refused(Exception):
    pass


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
        self.global_params = None
        self.agreed_threshold: float | None = None  # the federation's, with shared scaling
        self._scaler_json = ""  # the shared scaler in use, as the server sent it
        self.rounds = 0
        self._joined = False  # has any session got as far as the server's first message

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
        self.data = self._load()  # a DataError surfaces before any connection
        started = time.monotonic()
        delay = 1.0
        while not self._stop.is_set():
            try:
                root = None if self.options.insecure else self._trusted_certificate()
                self.emit(ConnectionState("connecting", str(self.server)))
                self._session(root)
                delay = 1.0
            except _Done:
                return self._finish()
            except _Refused as exc:
                return self._fail(f"the server refused this facility: {exc}")
            except (TlsError, UserError) as exc:
                if not any(m in str(exc) for m in _RETRYABLE):
                    return self._fail(str(exc))
                detail = str(exc)
            except grpc.RpcError as exc:
                if self._stop.is_set():
                    break
                detail = exc.details() if hasattr(exc, "details") else str(exc)
                if self.options.insecure and _speaks_tls(self.server):
                    return self._fail(
                        f"the server at {self.server} uses encryption (TLS) and a join code; "
                        "connect with its invite instead of --insecure"
                    )
            except Cancelled:
                break
            waited = time.monotonic() - started
            if waited > self.options.max_wait:
                return self._fail(f"no server at {self.server} for {waited:.0f} s ({detail}); check that it runs and the address")
            what = "lost the server" if self._joined else "cannot reach the server"
            self.emit(ConnectionState("reconnecting", f"{what} at {self.server} ({detail}); retrying in {delay:.0f} s"))
            if self._stop.wait(delay):
                break
            delay = min(delay * 2, 30.0)
        result = Finished(rounds_completed=self.rounds, out_dir=str(self.options.out_dir or ""), message="stopped")
        self.emit(result)
        return result

    def _load(self, sensors: list[str] | None = None) -> list[SensorData]:
        """The facility's files, each with the first one's sensors (or ``sensors``)."""
        parts: list[SensorData] = []
        for csv in self.csvs:
            part = load_sensor_csv(csv, sensors=sensors or (parts[0].sensors if parts else None))
            parts.append(replace(part, train_rows=self.options.train_rows))
        return parts

    def _fail(self, message: str) -> Failed:
        result = Failed(message=message)
        self.emit(result)
        return result

    def _finish(self) -> Finished:
        out = self.options.out_dir
        if out is not None and self.facility is not None and self.global_params is not None:
            how = "personalising the federation's model on this facility's rows" if self.facility.personalise else "calibrating"
            self.emit(ConnectionState("finishing", how))
            self.facility.save_final(self.global_params, Path(out), self.rounds, self.agreed_threshold)
        result = Finished(rounds_completed=self.rounds, out_dir=str(out or ""), message="the server finished")
        self.emit(result)
        return result

    def _trusted_certificate(self) -> bytes:
        pem = fetch_certificate(self.server.host, self.server.port, timeout=5.0)
        store = self.options.known_servers
        trust = judge_certificate(pem, self.server, self.options.fingerprint, store)
        fp = trust.actual
        if trust.basis == "invite" and not trust.matches:
            raise invite_mismatch(fp, trust.expected)
        elif trust.basis == "pinned" and not trust.matches:
            raise FingerprintMismatch(
                f"the server at {self.server} shows another certificate ({short_fingerprint(fp)}...) than when this "
                f"facility first joined it ({short_fingerprint(trust.expected)}...); this may not be your coordinator. "
                "Do not proceed unless its operator confirms the change, then connect with their new invite"
            )
        elif trust.basis == "first_use":
            if store is not None:
                store.pin(self.server, fp)
            self.emit(ConnectionState("trusted", f"first connection to {self.server}: trusting certificate {short_fingerprint(fp)}"))
        return pem

    def _session(self, root: bytes | None) -> None:
        """One connection; returns when it ends (raises _Done when the server finishes)."""
        outbox: queue.Queue = queue.Queue()
        self._channel = open_channel(self.server.target, root)
        if self._stop.is_set():
            self._channel.close()
            return
        try:
            stream = join_stream(self._channel, iter(outbox.get, None))
            for msg in stream:
                self._joined = True
                field = msg.WhichOneof("msg")
                if field == "reconnect_ins":
                    outbox.put(None)
                    raise _Done()
                reply, refused = self._handle(field, msg)
                outbox.put(reply)
                if refused:
                    time.sleep(0.2)  # let the reply go out so the server logs a clean goodbye
                    raise _Refused(refused)
        finally:
            outbox.put(None)
            self._channel.close()

    def _handle(self, field: str, msg) -> tuple[ClientMessage, str | None]:
        if field == "get_properties_ins":
            config = dict(serde.get_properties_ins_from_proto(msg.get_properties_ins).config)
            if P.HELLO_REFUSED in config:
                return ClientMessage(get_properties_res=serde.get_properties_res_to_proto(GetPropertiesRes(_OK, {}))), str(config[P.HELLO_REFUSED])
            if P.AGREED_THRESHOLD in config:
                self.agreed_threshold = float(config[P.AGREED_THRESHOLD])
                self.emit(ConnectionState("agreed", f"the facilities agreed an anomaly threshold of {self.agreed_threshold:.4g}"))
                return ClientMessage(get_properties_res=serde.get_properties_res_to_proto(GetPropertiesRes(_OK, {}))), None
            props = self._hello(config)
            self.emit(ConnectionState("connected", f"joined {self.server} as {self.name}"))
            return ClientMessage(get_properties_res=serde.get_properties_res_to_proto(GetPropertiesRes(_OK, props))), None
        if field == "fit_ins":
            ins = serde.fit_ins_from_proto(msg.fit_ins)
            rnd = int(ins.config[P.CFG_ROUND])
            self._follow(ins.config)
            self.emit(ConnectionState("training", f"round {rnd}"))
            params, n, metrics = self.facility.fit(
                parameters_to_ndarrays(ins.parameters),
                ins.config,
                self._task,
                lambda r: self.emit(EpochLoss(round=rnd, epoch=r.epoch, epochs=r.epochs, loss=r.loss)),
            )
            metrics = {k: v for k, v in metrics.items() if k in P.FIT_METRICS}
            total = int(ins.config.get(P.CFG_ROUNDS, 0))
            self.emit(FitResult(round=rnd, name=self.name, samples=n, train_loss=metrics["train_loss"], seconds=metrics["seconds"], rounds=total,
                                strategy=str(ins.config.get(P.CFG_STRATEGY, "")), proximal_mu=float(ins.config.get(P.CFG_MU, 0.0))))
            res = FitRes(_OK, ndarrays_to_parameters(params), n, metrics)
            return ClientMessage(fit_res=serde.fit_res_to_proto(res)), None
        if field == "evaluate_ins":
            ins = serde.evaluate_ins_from_proto(msg.evaluate_ins)
            rnd = int(ins.config.get(P.CFG_ROUND, 0))
            self.emit(ConnectionState("evaluating", f"round {rnd}"))
            self._follow(ins.config)
            self.global_params = parameters_to_ndarrays(ins.parameters)
            loss, n = self.facility.evaluate(self.global_params, self._task)
            self.rounds = max(self.rounds, rnd)
            self.emit(EvaluateResult(round=rnd, eval_loss=loss, samples=n, rounds=int(ins.config.get(P.CFG_ROUNDS, 0))))
            metrics = {"eval_loss": loss}
            if int(ins.config.get(P.CFG_SKETCH, 0)):
                metrics[P.CFG_SKETCH] = P.dumps(self.facility.error_sketch(self.global_params, self._task))
            res = EvaluateRes(_OK, loss, n, metrics)
            return ClientMessage(evaluate_res=serde.evaluate_res_to_proto(res)), None
        if field == "get_parameters_ins":
            params = get_parameters(self.facility.model) if self.facility else []
            res = GetParametersRes(_OK, ndarrays_to_parameters(params))
            return ClientMessage(get_parameters_res=serde.get_parameters_res_to_proto(res)), None
        raise grpc.RpcError(f"unexpected message {field!r} from the server")

    def _follow(self, config: dict) -> None:
        """Take up the federation's agreed scaler when the round's settings carry a new one."""
        shared = str(config.get(P.CFG_SCALER, ""))
        if shared and shared != self._scaler_json:
            self.facility.use_scaler(Scaler.from_dict(json.loads(shared)))
            self._scaler_json = shared
            self.emit(ConnectionState("agreed", "scaling the readings with the statistics the facilities agreed"))

    def _hello(self, config: dict) -> dict:
        """Answer the server's handshake: proof of the join code, sensor names, sample count."""
        problem = ""
        data = self.data
        announced = str(config.get(P.HELLO_SENSORS, ""))
        if announced:
            wanted = json.loads(announced)
            if list(data[0].sensors) != wanted:
                try:
                    data = self._load(wanted)
                except UserError as exc:
                    problem = f"{self.name}'s data does not fit the federation: {exc}"
        spec_cfg = json.loads(str(config.get(P.HELLO_SPEC, "{}")) or "{}")
        samples = 0
        spec = None
        if not problem:
            try:
                sensors = len(data[0].sensors)
                # The coordinator's shape, or the one this facility's readings call for.
                spec = P.spec_from_shape(sensors, spec_cfg) if "window" in spec_cfg else spec_for(data[0])
                self.facility = Facility(data, spec, self.name, self.options.seed, self.options.personalise)
                self._scaler_json = ""
                samples = self.facility.samples
            except ValueError as exc:
                problem = f"{self.name}: {exc}"
        nonce = bytes.fromhex(str(config.get(P.HELLO_NONCE, "")))
        proof = join_proof(self.options.join_code, nonce) if self.options.join_code else ""
        reply = {
            P.HELLO_PROTOCOL: P.PROTOCOL_VERSION,
            P.REPLY_PROOF: proof,
            P.REPLY_NAME: self.name,
            P.REPLY_SENSORS: P.dumps(list(data[0].sensors)),
            P.REPLY_SAMPLES: samples,
            P.REPLY_PROBLEM: problem,
        }
        if spec is not None:
            reply[P.REPLY_SPEC] = P.dumps(P.shape_of(spec))
        if spec_cfg.get("shared_scaling") and not problem:
            reply[P.REPLY_STATS] = P.dumps(self.facility.scaling_stats())  # aggregates, never a reading
        return reply
