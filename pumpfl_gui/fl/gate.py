"""Who may take part: the server's client manager with a join handshake (fl layer; no Qt).

A facility that connects is only *pending*. A side thread asks it, through Flower's
``get_properties``, to prove it holds the session's join code (an HMAC of a fresh nonce — the
code itself never travels) and to state its sensor columns. Only then is it registered with
Flower's manager, so only then can it be sampled, receive global parameters or count in an
average. A refused facility is told why before the server lets it go.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from collections.abc import Callable

from flwr.common import GetPropertiesIns
from flwr.server.client_manager import SimpleClientManager
from flwr.server.client_proxy import ClientProxy

from . import protocol as P
from .events import ClientJoined, ClientLeft, ClientRefused, Event
from ..core.pooling import check_stats
from .security import check_join_proof

log = logging.getLogger(__name__)
HANDSHAKE_TIMEOUT = 60.0


class GatedClientManager(SimpleClientManager):
    def __init__(
        self,
        join_code: str | None,
        spec: dict,
        emit: Callable[[Event], None],
        sensors: list[str] | None = None,
        default_wait: float = 600.0,
    ) -> None:
        super().__init__()
        # Flower's sampling waits a whole day by default for missing facilities; PumpFL waits
        # one round timeout, then the server ends the run with a message.
        self.default_wait = default_wait
        self.join_code = join_code  # None: --insecure, no join code asked
        self.spec = spec  # what every facility builds: window, channels, scaling (FederationSettings.hello_spec)
        self.sensors = sensors  # the federation's columns; the first facility sets them if None
        # The network's shape: the coordinator's, or the one the first facility's data calls for.
        self.shape: dict | None = {k: spec[k] for k in P.SHAPE_KEYS} if "window" in spec else None
        self.names: dict[str, str] = {}
        self.samples: dict[str, int] = {}
        self.stats: dict[str, dict] = {}  # with shared scaling: each facility's aggregates (core/pooling.py)
        self.stopping = threading.Event()
        self._emit = emit
        self._lock = threading.Lock()
        self._pending: set[str] = set()

    # -- Flower's hooks -------------------------------------------------------------------

    def register(self, client: ClientProxy) -> bool:
        if self.stopping.is_set():
            return False
        with self._lock:
            self._pending.add(client.cid)
        threading.Thread(target=self._handshake, args=(client,), name=f"pumpfl-hello-{client.cid[:6]}", daemon=True).start()
        return True

    def unregister(self, client: ClientProxy) -> None:
        with self._lock:
            self._pending.discard(client.cid)
            was_member = client.cid in self.clients
        super().unregister(client)
        if was_member:
            self._emit(ClientLeft(cid=client.cid, name=self.names.get(client.cid, client.cid[:8])))

    def wait_for(self, num_clients: int, timeout: float | None = None) -> bool:
        timeout = self.default_wait if timeout is None else timeout
        with self._cv:
            self._cv.wait_for(lambda: len(self.clients) >= num_clients or self.stopping.is_set(), timeout=timeout)
            return len(self.clients) >= num_clients and not self.stopping.is_set()

    def stop(self) -> None:
        self.stopping.set()
        with self._cv:
            self._cv.notify_all()

    # -- the handshake ----------------------------------------------------------------------

    def _hello(self, nonce: str) -> dict:
        with self._lock:
            sensors = P.dumps(self.sensors) if self.sensors is not None else ""
        return {
            P.HELLO_PROTOCOL: P.PROTOCOL_VERSION,
            P.HELLO_NONCE: nonce,
            P.HELLO_SENSORS: sensors,
            P.HELLO_SPEC: P.dumps(self.spec),
        }

    def _handshake(self, client: ClientProxy) -> None:
        nonce = secrets.token_hex(16)
        try:
            res = client.get_properties(GetPropertiesIns(self._hello(nonce)), timeout=HANDSHAKE_TIMEOUT, group_id=None)
        except Exception as exc:  # the facility vanished or never answered
            log.info("handshake with %s failed: %s", client.cid, exc)
            with self._lock:
                self._pending.discard(client.cid)
            return
        props = dict(res.properties)
        name = str(props.get(P.REPLY_NAME, "") or client.cid[:8])
        if int(props.get(P.REPLY_PROBE, 0)):
            self._answer_probe(client, props, nonce)
            return
        reason = self._judge(props, nonce, name)
        if reason is None:
            with self._lock:
                still_here = client.cid in self._pending
                self._pending.discard(client.cid)
            if not still_here:
                return
            self.names[client.cid] = name
            self.samples[client.cid] = int(props.get(P.REPLY_SAMPLES, 0))
            if self.spec.get("shared_scaling"):
                self.stats[client.cid] = json.loads(str(props[P.REPLY_STATS]))
            super().register(client)
            self._emit(ClientJoined(cid=client.cid, name=name, peer=client.cid[:8], samples=self.samples[client.cid]))
            return
        self._emit(ClientRefused(peer=client.cid[:8], name=name, reason=reason))
        try:
            client.get_properties(GetPropertiesIns({P.HELLO_REFUSED: reason}), timeout=10, group_id=None)
        except Exception:
            pass
        with self._lock:
            self._pending.discard(client.cid)

    def _answer_probe(self, client: ClientProxy, props: dict, nonce: str) -> None:
        """A "Test connection" probe: say whether the join code is right; never enrol it."""
        reason = self._check_code(props, nonce)
        answer = {P.HELLO_PROBE_OK: 1} if reason is None else {P.HELLO_REFUSED: reason}
        try:
            client.get_properties(GetPropertiesIns(answer), timeout=10, group_id=None)
        except Exception:
            pass
        with self._lock:
            self._pending.discard(client.cid)

    def _check_code(self, props: dict, nonce: str) -> str | None:
        if int(props.get(P.HELLO_PROTOCOL, -1)) != P.PROTOCOL_VERSION:
            return "this facility runs an incompatible PumpFL version; install the same version as the server"
        if self.join_code is not None and not check_join_proof(self.join_code, bytes.fromhex(nonce), str(props.get(P.REPLY_PROOF, ""))):
            return "wrong join code; ask the coordinator for the current invite"
        return None

    def _judge(self, props: dict, nonce: str, name: str) -> str | None:
        """None when the facility may join, else the reason it may not, in words."""
        code_problem = self._check_code(props, nonce)
        if code_problem is not None:
            return code_problem
        problem = str(props.get(P.REPLY_PROBLEM, ""))
        if problem:
            return problem
        try:
            theirs = json.loads(str(props.get(P.REPLY_SENSORS, "")))
        except json.JSONDecodeError:
            return "this facility sent no sensor list"
        try:
            shape = P.shape_of(P.spec_from_shape(max(len(theirs), 1), json.loads(str(props.get(P.REPLY_SPEC, "")))))
        except ValueError:  # json's errors are ValueErrors too
            return "this facility sent no usable model shape"
        with self._lock:
            if self.sensors is None:
                problem = self._check_stats(props, name, len(theirs)) or self._check_shape(name, shape)
                if problem is None:
                    self.sensors = list(theirs)  # the first facility defines the federation's columns
                    self.shape = self.shape or shape  # ... and, unless the coordinator fixed it, the shape
                return problem
            ours = self.sensors
            problem = self._check_shape(name, shape)
        if theirs != ours:
            return self._mismatch(name, ours, theirs)
        return problem or self._check_stats(props, name, len(ours))

    def _check_shape(self, name: str, shape: dict) -> str | None:
        if self.shape is None or shape == self.shape:
            return None
        return (
            f"{name}'s readings call for a model window of {shape['window']} rows where the federation uses "
            f"{self.shape['window']} (readings taken at another interval?); every facility needs data read as often"
        )

    def _check_stats(self, props: dict, name: str, sensors: int) -> str | None:
        if not self.spec.get("shared_scaling"):
            return None
        try:
            check_stats(json.loads(str(props.get(P.REPLY_STATS, ""))), sensors)
        except ValueError as exc:  # json's errors are ValueErrors too
            return f"{name} sent no usable scaling summary ({exc}); shared scaling needs one from every facility"
        return None

    @staticmethod
    def _mismatch(name: str, ours: list[str], theirs: list[str]) -> str:
        missing = [s for s in ours if s not in theirs]
        extra = [s for s in theirs if s not in ours]
        detail = []
        if missing:
            detail.append(f"missing {', '.join(missing[:5])}{' …' if len(missing) > 5 else ''}")
        if extra:
            detail.append(f"extra {', '.join(extra[:5])}{' …' if len(extra) > 5 else ''}")
        if not detail:
            detail.append("same sensors in another order")
        return f"{name}'s sensor columns do not match the federation's ({'; '.join(detail)}); every facility needs the same {len(ours)} sensors"
