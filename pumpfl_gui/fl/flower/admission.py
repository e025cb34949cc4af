"""Who may take part: the server's client manager with a join handshake (fl layer; no Qt).

A stream that connects is only *pending*, and only while a handshake slot is free. A side
thread runs the handshake (fl/handshake.py): the facility proves it holds a join code — the
shared trial code or its own named invite (fl/invites.py) — bound to the TLS channel; only then
does the server prove itself and name the federation's sensors and spec, and only once those
fit is the facility registered with Flower's manager, so only then can it be sampled, receive
global parameters or count in an average. A refused stream is closed at once with the reason as
its status; one that has not proven the code within the handshake deadline is closed too.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable

import grpc
from flwr.common import GetPropertiesIns
from flwr.server.client_manager import SimpleClientManager
from flwr.server.client_proxy import ClientProxy

from ...core.pooling import MAX_COUNT, check_stats
from .. import protocol as P
from ..events import ClientJoined, ClientLeft, ClientRefused, Event
from ..handshake import Malformed, facility_proven, new_nonce, read_facility_hello, server_hello, server_proof
from ..invites import REVOKED, Entry, InviteBook
from ..limits import check_model
from .wire import MEMBER_SLOTS, PENDING_SLOTS, PROVEN_DEADLINE

log = logging.getLogger(__name__)
WRONG_CODE = "wrong join code; ask the coordinator for the current invite"
BUSY = "the coordinator is busy with other connections; try again in a moment"
_SENSOR_LIMIT = 10_000  # sensor columns a facility may name
_PROBLEM_LIMIT = 300  # characters of a facility's own problem report that reach the log


class _Refusal(Exception):
    """Why a facility is turned away, in words; ``code`` tells it whether to try again."""

    def __init__(
        self, name: str, reason: str, code: grpc.StatusCode = grpc.StatusCode.PERMISSION_DENIED, quiet: bool = False
    ) -> None:
        super().__init__(reason)
        self.name = name
        self.code = code
        self.quiet = quiet  # a "Test connection" probe: answered, not reported as a facility refused


class GatedClientManager(SimpleClientManager):
    def __init__(
        self,
        book: InviteBook | None,
        spec: dict,
        emit: Callable[[Event], None],
        sensors: list[str] | None = None,
        fingerprint: str = "",
    ) -> None:
        super().__init__()
        self.book = book  # None: --insecure, no join code asked
        self.fingerprint = fingerprint  # of the server's certificate ("" without TLS): proofs are bound to it
        self.spec = spec  # what every facility builds: window, channels, scaling (FederationSettings.hello_spec)
        self.start_models: dict[str, str] = {}  # cid -> digest of the starting model it says it built
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
        self._live: dict[str, ClientProxy] = {}  # casefolded name -> its stream, from its proof on

    # -- the servicer's hooks (wire.JoinServicer) -------------------------------------------

    def knock(self, client: ClientProxy) -> str | None:
        """Let a new stream in for the handshake (None), or say why not."""
        if self.stopping.is_set():
            return "the coordinator is shutting down"
        with self._lock:
            if len(self._pending) >= PENDING_SLOTS:
                return BUSY
            if len(self.clients) >= MEMBER_SLOTS:
                return f"the federation is full ({MEMBER_SLOTS} facilities)"
            self._pending.add(client.cid)
        threading.Thread(target=self._handshake, args=(client,), name=f"pumpfl-hello-{client.cid[:6]}", daemon=True).start()
        return None

    def admitted(self, cid: str) -> bool:
        return cid in self.clients

    def unregister(self, client: ClientProxy) -> None:
        with self._lock:
            self._pending.discard(client.cid)
            for key in [k for k, held in self._live.items() if held.cid == client.cid]:
                del self._live[key]
            was_member = client.cid in self.clients
            super().unregister(client)
        if was_member:
            self._emit(ClientLeft(cid=client.cid, name=self.names.get(client.cid, client.cid[:8])))

    def revoke(self, name: str) -> None:
        """End the live session of a named invite that was just revoked, if there is one."""
        with self._lock:
            held = self._live.get(P.clean_name(name).casefold())
        if held is not None:
            held.end(grpc.StatusCode.PERMISSION_DENIED, REVOKED)

    def wait_for(self, num_clients: int, timeout: float | None = None) -> bool:
        """Whether ``num_clients`` facilities are in, waiting up to ``timeout`` seconds for them.

        Flower's sampling calls this without a timeout: it then takes whoever is connected at
        once. The server runner does all the waiting itself, before each round, with a
        countdown (``Waiting`` events), so a facility that left never stalls a round."""
        timeout = 0.0 if timeout is None else timeout
        with self._cv:
            self._cv.wait_for(lambda: len(self.clients) >= num_clients or self.stopping.is_set(), timeout=timeout)
            return len(self.clients) >= num_clients and not self.stopping.is_set()

    def stop(self) -> None:
        self.stopping.set()
        with self._cv:
            self._cv.notify_all()

    # -- the handshake ----------------------------------------------------------------------

    def _handshake(self, client: ClientProxy) -> None:
        try:
            self._meet(client, client.deadline)
        except _Refusal as refusal:
            if not refusal.quiet:
                self._emit(ClientRefused(peer=client.cid[:8], name=refusal.name or client.cid[:8], reason=str(refusal)))
            client.end(refusal.code, str(refusal))
        except Exception as exc:  # the peer vanished, went silent, or its stream was closed
            log.info("handshake with %s ended: %s", client.cid[:8], type(exc).__name__)
        finally:
            with self._lock:
                self._pending.discard(client.cid)
            if not self.admitted(client.cid):
                client.end()  # never leave a half-met stream open

    def _meet(self, client: ClientProxy, deadline: float) -> None:
        """The four messages (fl/handshake.py); raises `_Refusal` with the reason in words."""
        server_nonce = new_nonce()
        try:
            hello = read_facility_hello(self._ask(client, server_hello(server_nonce), deadline))
        except Malformed as exc:
            raise _Refusal("", str(exc)) from None
        try:
            entry = self._identify(hello, server_nonce)
        except _Refusal as refusal:
            refusal.quiet = hello.probe
            raise
        code = entry.code if entry is not None else None
        proof = server_proof(code, server_nonce, hello.nonce, self.fingerprint)
        if hello.probe:  # "Test connection": the code is right; say so, prove ourselves, never enrol
            self._ask(client, {**proof, P.HELLO_PROBE_OK: 1}, deadline)
            return
        name = (entry.name if entry is not None else None) or hello.name or f"facility {client.cid[:6]}"
        self._reserve(client, name, named=entry is not None and entry.name is not None)
        client.deadline = deadline = time.monotonic() + PROVEN_DEADLINE  # proven: time to describe its data
        with self._lock:
            sensors = P.dumps(self.sensors) if self.sensors is not None else ""
        props = self._ask(client, {**proof, P.HELLO_SENSORS: sensors, P.HELLO_SPEC: P.dumps(self.spec)}, deadline)
        try:
            reason = self._judge(props, name)
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError, OverflowError):
            reason = f"{name} sent a malformed description of its data"
        if reason is not None:
            raise _Refusal(name, reason)
        self._admit(client, name, props)

    def _ask(self, client: ClientProxy, config: dict, deadline: float) -> dict:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the handshake took too long")
        return dict(client.get_properties(GetPropertiesIns(config), timeout=left, group_id=None).properties)

    def _identify(self, hello, server_nonce: bytes) -> Entry | None:
        """The invite whose code the facility proved it holds (None without join codes)."""
        if self.book is None:
            return None
        entry = self.book.find(hello.key_id) if hello.key_id else None
        if entry is None:
            raise _Refusal(hello.name, REVOKED if hello.key_id and self.book.revoked(hello.key_id) else WRONG_CODE)
        if not facility_proven(entry.code, server_nonce, hello, self.fingerprint):
            raise _Refusal(hello.name, WRONG_CODE)
        return entry

    def _reserve(self, client: ClientProxy, name: str, named: bool) -> None:
        """One live session per name: per named invite, and per name under the shared code."""
        with self._lock:
            if name.casefold() in self._live:
                if named:  # maybe its own earlier session, not yet noticed as gone: it may try again
                    raise _Refusal(
                        name,
                        f"{name} is already connected; each invite admits one facility at a time",
                        grpc.StatusCode.ALREADY_EXISTS,
                    )
                raise _Refusal(name, f"a facility named {name} is already connected; start this one under another name")
            if not named and self.book is not None and self.book.is_named(name):
                raise _Refusal(name, f"{name} is the name of a facility invited by name; use its own invite, or another name")
            self._live[name.casefold()] = client

    def _admit(self, client: ClientProxy, name: str, props: dict) -> None:
        with self._lock:
            if client.cid not in self._pending or self.stopping.is_set():
                return  # it left meanwhile, or the run is ending
            if len(self.clients) >= MEMBER_SLOTS:
                raise _Refusal(name, f"the federation is full ({MEMBER_SLOTS} facilities)", grpc.StatusCode.RESOURCE_EXHAUSTED)
            self._pending.discard(client.cid)
            self.names[client.cid] = name
            self.samples[client.cid] = props[P.REPLY_SAMPLES]
            start = props.get(P.REPLY_START)
            if isinstance(start, str) and len(start) == P.DIGEST_LENGTH:
                self.start_models[client.cid] = start  # compared with the real one's digest, never trusted
            if self.spec.get("shared_scaling"):
                self.stats[client.cid] = json.loads(props[P.REPLY_STATS])
            self.register(client)
        self._emit(ClientJoined(cid=client.cid, name=name, peer=client.cid[:8], samples=self.samples[client.cid]))

    def _judge(self, props: dict, name: str) -> str | None:
        """None when the facility may join, else the reason it may not, in words."""
        problem = props.get(P.REPLY_PROBLEM, "")
        if not isinstance(problem, str):
            return f"{name} sent a malformed description of its data"
        if problem:
            return P.clean_name(problem, _PROBLEM_LIMIT)
        samples = props.get(P.REPLY_SAMPLES)
        if not isinstance(samples, int) or isinstance(samples, bool) or not 0 <= samples <= MAX_COUNT:
            return f"{name} sent no usable sample count"
        theirs = _sensor_list(props.get(P.REPLY_SENSORS))
        if theirs is None:
            return f"{name} sent no usable sensor list"
        try:
            spec = P.spec_from_shape(max(len(theirs), 1), json.loads(str(props.get(P.REPLY_SPEC, ""))))
            check_model(spec)  # a network beyond the bounds every facility enforces
            shape = P.shape_of(spec)
        except ValueError as exc:  # json's errors are ValueErrors too
            return f"{name} sent no usable model shape ({exc})"
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
        missing = [P.clean_name(s) for s in ours if s not in theirs]
        extra = [P.clean_name(s) for s in theirs if s not in ours]
        detail = []
        if missing:
            detail.append(f"missing {', '.join(missing[:5])}{' …' if len(missing) > 5 else ''}")
        if extra:
            detail.append(f"extra {', '.join(extra[:5])}{' …' if len(extra) > 5 else ''}")
        if not detail:
            detail.append("same sensors in another order")
        return (
            f"{name}'s sensor columns do not match the federation's ({'; '.join(detail)}); "
            f"every facility needs the same {len(ours)} sensors"
        )


def _sensor_list(text: object) -> list[str] | None:
    """A facility's sensor names (a JSON list of distinct texts), or None when malformed."""
    if not isinstance(text, str):
        return None
    try:
        names = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(names, list) or not 0 < len(names) <= _SENSOR_LIMIT:
        return None
    if not all(isinstance(n, str) and 0 < len(n) <= 200 for n in names) or len(set(names)) != len(names):
        return None
    return names
