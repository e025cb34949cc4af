"""gRPC plumbing for Flower's bidirectional stream (fl layer; no Qt).

Flower's ``start_server()`` insists on the main thread and its client helpers offer no way to
stop or to pin a certificate, so PumpFL builds both ends from Flower's bridge, client proxy,
stub and protobuf messages. Every use of those Flower internals lives in this package.

The server side is PumpFL's own Join servicer (`JoinServicer`), because the port is open to
anyone who can reach it: a peer is let in only while handshake slots are free (slots for
admitted facilities are kept apart, so junk can never take theirs), a peer that has not proven
the join code gets a small message limit and a short deadline for the whole handshake (longer
once it has proven the code, to describe its data), and a stream ends — cleanly, with the
reason in words as its status — as soon as the gate refuses it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from concurrent import futures

import grpc
from flwr.proto.transport_pb2 import ClientMessage, ServerMessage
from flwr.proto.transport_pb2_grpc import FlowerServiceStub
from flwr.server.superlink.fleet.grpc_bidi.grpc_bridge import GrpcBridge, GrpcBridgeClosed, ResWrapper
from flwr.server.superlink.fleet.grpc_bidi.grpc_client_proxy import GrpcClientProxy
from google.protobuf.message import DecodeError

from ..limits import FACILITIES
from ..security import SERVER_NAME

log = logging.getLogger(__name__)

# The model is small (a few hundred kB of parameters; fl/limits.py bounds its shape), so 16 MB
# leaves room without letting one message cost the coordinator hundreds of MB.
MAX_MESSAGE = 16 * 1024 * 1024
# Before the join proof checks out a peer has no business sending more than a few kB.
PRE_PROOF_MESSAGE = 256 * 1024
HANDSHAKE_DEADLINE = 10.0  # seconds for the whole handshake, from the stream's first moment
# Once a facility has proven the join code it may take longer to describe its data (it reads it
# with the federation's sensors first): a large file must not fail the handshake every time.
PROVEN_DEADLINE = 120.0
PENDING_SLOTS = 16  # streams that may be mid-handshake at once (anyone can open one)
MEMBER_SLOTS = FACILITIES[1]  # admitted facilities: slots the unauthenticated can never take
_SPARE_WORKERS = 8  # to refuse knocks beyond the slots quickly
# Pings every 5 s: a facility notices a vanished server within about 10 s, not minutes.
KEEPALIVE_MS = 5_000
_CLIENT_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE),
    ("grpc.max_receive_message_length", MAX_MESSAGE),
    ("grpc.keepalive_time_ms", KEEPALIVE_MS),
    ("grpc.keepalive_timeout_ms", KEEPALIVE_MS),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    # gRPC 1.85 waits ping_timeout_ms (60 s by default) for a ping's answer whatever
    # keepalive_timeout_ms says: a hung peer (SIGSTOP) would then go unnoticed for ~64 s.
    ("grpc.http2.ping_timeout_ms", KEEPALIVE_MS),
]
_SERVER_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE),
    ("grpc.max_receive_message_length", MAX_MESSAGE),
    ("grpc.so_reuseport", 0),  # a second server on the same port must fail, not share it
    ("grpc.keepalive_time_ms", KEEPALIVE_MS),
    ("grpc.keepalive_timeout_ms", KEEPALIVE_MS),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 1_000),
    ("grpc.http2.max_ping_strikes", 0),
    ("grpc.http2.max_pings_without_data", 0),  # keep pinging a facility that is silent while it trains
    ("grpc.http2.ping_timeout_ms", KEEPALIVE_MS),
]
_SERVICE = "flwr.proto.FlowerService"  # Flower's service and method names, which clients dial


class WireCounter:
    """Bytes of Flower messages in each direction, and a tap on what facilities send."""

    def __init__(self, tap: Callable[[ClientMessage], None] | None = None) -> None:
        self._lock = threading.Lock()
        self.sent = 0  # server -> facilities
        self.received = 0  # facilities -> server
        self._tap = tap

    def snapshot(self) -> tuple[int, int]:
        with self._lock:
            return self.sent, self.received

    def _on_request(self, msg: ClientMessage) -> None:
        with self._lock:
            self.received += msg.ByteSize()
        if self._tap is not None:
            self._tap(msg)

    def _on_response(self, msg: ServerMessage) -> None:
        with self._lock:
            self.sent += msg.ByteSize()


class Peer(GrpcClientProxy):
    """Flower's client proxy for one stream, which the gate can also end with a reason."""

    def __init__(self, cid: str, bridge: GrpcBridge) -> None:
        super().__init__(cid, bridge)
        self.ending: tuple[grpc.StatusCode, str] | None = None
        self.deadline = time.monotonic() + HANDSHAKE_DEADLINE  # until admitted (the gate extends it after the proof)
        self.on_end: Callable[[], None] = lambda: None  # wakes the stream if it waits for the peer

    def end(self, code: grpc.StatusCode | None = None, reason: str = "") -> None:
        """Close the stream now: with ``code`` and ``reason`` as its status, or cleanly."""
        if code is not None and self.ending is None:
            self.ending = (code, reason)
        self.bridge.close()
        self.on_end()


_TIMED_OUT = object()
_ENDED = object()


class _Reader:
    """Reads the peer's next message only when asked, in its own thread, so the stream can wait
    for it with a deadline. Nothing is read ahead: a peer cannot pile up unasked messages."""

    def __init__(self, requests, name: str) -> None:
        self._requests = requests
        self._asks: queue.SimpleQueue = queue.SimpleQueue()
        self._answers: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while self._asks.get():
            try:
                item = next(self._requests)
            except Exception:  # StopIteration, or gRPC's error for a stream that ended
                item = _ENDED
            self._answers.put(item)
            if item is _ENDED:
                return

    def read(self, timeout: float | None):
        """The next message's bytes, `_TIMED_OUT`, or `_ENDED`."""
        self._asks.put(True)
        try:
            return self._answers.get(timeout=None if timeout is None else max(timeout, 0.0))
        except queue.Empty:
            return _TIMED_OUT

    def interrupt(self) -> None:
        """Make a pending `read` return `_ENDED` now."""
        self._answers.put(_ENDED)

    def close(self) -> None:
        self._asks.put(False)


class JoinServicer:
    """PumpFL's handler of Flower's Join stream.

    ``manager`` (gate.GatedClientManager) decides: ``knock(peer)`` lets a stream in for the
    handshake or says why not, ``admitted(cid)`` says whether it proved itself, and
    ``unregister(peer)`` hears that it ended.
    """

    def __init__(self, manager, counter: WireCounter) -> None:
        self._manager = manager
        self._counter = counter

    def handler(self) -> grpc.GenericRpcHandler:
        join = grpc.stream_stream_rpc_method_handler(
            self.join, request_deserializer=None, response_serializer=ServerMessage.SerializeToString
        )  # requests stay bytes until their size is checked
        return grpc.method_handlers_generic_handler(_SERVICE, {"Join": join})

    def join(self, requests, context: grpc.ServicerContext):
        peer = Peer(uuid.uuid4().hex, GrpcBridge())
        refusal = self._manager.knock(peer)
        if refusal is not None:
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, refusal)
        if not context.add_callback(lambda: self._ended(peer)):
            self._ended(peer)
            return
        reader = _Reader(requests, name=f"pumpfl-read-{peer.cid[:6]}")
        peer.on_end = reader.interrupt
        try:
            yield from self._converse(peer, reader)
        finally:
            reader.close()
            peer.bridge.close()
        if peer.ending is not None:
            context.abort(*peer.ending)

    def _ended(self, peer: Peer) -> None:
        peer.bridge.close()
        self._manager.unregister(peer)

    def _converse(self, peer: Peer, reader: _Reader):
        """Hand the gate's and the strategy's messages to the peer and its answers back."""
        try:
            for ins in peer.bridge.ins_wrapper_iterator():
                self._counter._on_response(ins.server_message)
                yield ins.server_message
                admitted = self._manager.admitted(peer.cid)
                wait = ins.timeout
                if not admitted:
                    left = peer.deadline - time.monotonic()
                    wait = left if wait is None else min(wait, left)
                answer = self._answer(peer, reader.read(wait), admitted, wait)
                if answer is None:
                    return
                peer.bridge.set_res_wrapper(ResWrapper(client_message=answer))
        except GrpcBridgeClosed:
            return  # the gate or the server ended this stream: not an error

    def _answer(self, peer: Peer, raw, admitted: bool, waited: float | None) -> ClientMessage | None:
        """The peer's answer, parsed once its size is allowed; None when the stream must end."""
        if raw is _ENDED:
            return None
        if raw is _TIMED_OUT:
            late = f"no answer within {waited or 0:.0f} s" if admitted else "the join handshake was not completed in time"
            peer.end(grpc.StatusCode.DEADLINE_EXCEEDED, late)
            return None
        limit = MAX_MESSAGE if admitted else PRE_PROOF_MESSAGE
        if len(raw) > limit:
            peer.end(grpc.StatusCode.RESOURCE_EXHAUSTED, f"message of {len(raw)} bytes is over the {limit} allowed here")
            return None
        try:
            message = ClientMessage.FromString(raw)
        except DecodeError:
            peer.end(grpc.StatusCode.INVALID_ARGUMENT, "the message is not a Flower message")
            return None
        self._counter._on_request(message)
        return message


class FlowerServer:
    """A started gRPC server speaking Flower's stream, with its worker threads."""

    def __init__(self, server: grpc.Server, executor: futures.ThreadPoolExecutor) -> None:
        self._server = server
        self._executor = executor

    def stop(self, grace: float = 1.0) -> None:
        """Close the port and end every worker thread."""
        self._server.stop(grace=grace).wait(grace + 5)
        self._executor.shutdown(wait=True, cancel_futures=True)


def start_flower_server(manager, bind: str, counter: WireCounter, certificate: tuple[bytes, bytes] | None) -> FlowerServer:
    """Listen on ``bind`` for Flower's stream; TLS when ``certificate`` (cert, key) is given.

    Each open stream holds one worker thread, so the pool is sized for every pending handshake
    and every admitted facility at once, plus a few to turn away knocks beyond those slots."""
    workers = PENDING_SLOTS + MEMBER_SLOTS + _SPARE_WORKERS
    executor = futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pumpfl-grpc")
    server = grpc.server(executor, options=_SERVER_OPTIONS, maximum_concurrent_rpcs=workers)
    server.add_generic_rpc_handlers((JoinServicer(manager, counter).handler(),))
    try:
        if certificate is None:
            port = server.add_insecure_port(bind)
        else:
            cert, key = certificate
            port = server.add_secure_port(bind, grpc.ssl_server_credentials([(key, cert)]))
    except RuntimeError:  # grpc >= 1.57 raises where it returned 0: a port taken since it was checked free
        port = 0
    if port == 0:
        executor.shutdown()
        raise OSError(f"could not listen on {bind}: the port is in use")
    server.start()
    return FlowerServer(server, executor)


def open_channel(target: str, root_certificate: bytes | None) -> grpc.Channel:
    """A channel to the server; with TLS it trusts exactly ``root_certificate``."""
    if root_certificate is None:
        return grpc.insecure_channel(target, options=_CLIENT_OPTIONS)
    creds = grpc.ssl_channel_credentials(root_certificates=root_certificate)
    return grpc.secure_channel(target, creds, options=_CLIENT_OPTIONS + [("grpc.ssl_target_name_override", SERVER_NAME)])


def join_stream(channel: grpc.Channel, outgoing) -> grpc._channel._MultiThreadedRendezvous:
    """Open Flower's Join stream: ``outgoing`` yields ClientMessages, the result ServerMessages."""
    return FlowerServiceStub(channel).Join(outgoing)
