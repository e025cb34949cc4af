"""gRPC plumbing for Flower's bidirectional stream (fl layer; no Qt).

Flower's ``start_server()`` insists on the main thread and its client helpers offer no way to
stop or to pin a certificate, so PumpFL builds both ends from Flower's servicer, stub and
protobuf messages. Every use of those Flower internals lives in this package.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent import futures

import grpc
from flwr.proto.transport_pb2 import ClientMessage, ServerMessage
from flwr.proto.transport_pb2_grpc import FlowerServiceStub, add_FlowerServiceServicer_to_server
from flwr.server.client_manager import ClientManager
from flwr.server.superlink.fleet.grpc_bidi.flower_service_servicer import FlowerServiceServicer

from .security import SERVER_NAME

MAX_MESSAGE = 512 * 1024 * 1024
# Pings every 5 s: a facility notices a vanished server within about 10 s, not minutes.
KEEPALIVE_MS = 5_000
_CLIENT_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE),
    ("grpc.max_receive_message_length", MAX_MESSAGE),
    ("grpc.keepalive_time_ms", KEEPALIVE_MS),
    ("grpc.keepalive_timeout_ms", KEEPALIVE_MS),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
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
]


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


class _CountingInterceptor(grpc.ServerInterceptor):
    def __init__(self, counter: WireCounter) -> None:
        self.counter = counter

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or not handler.stream_stream:
            return handler
        inner, counter = handler.stream_stream, self.counter

        def counted(request_iterator, context):
            def requests():
                for msg in request_iterator:
                    counter._on_request(msg)
                    yield msg

            for msg in inner(requests(), context):
                counter._on_response(msg)
                yield msg

        return grpc.stream_stream_rpc_method_handler(
            counted, request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer
        )


class FlowerServer:
    """A started gRPC server speaking Flower's stream, with its worker threads."""

    def __init__(self, server: grpc.Server, executor: futures.ThreadPoolExecutor) -> None:
        self._server = server
        self._executor = executor

    def stop(self, grace: float = 1.0) -> None:
        """Close the port and end every worker thread."""
        self._server.stop(grace=grace).wait(grace + 5)
        self._executor.shutdown(wait=True, cancel_futures=True)


def start_flower_server(
    client_manager: ClientManager,
    bind: str,
    counter: WireCounter,
    certificate: tuple[bytes, bytes] | None,
    max_workers: int = 64,
) -> FlowerServer:
    """Listen on ``bind`` for Flower's stream; TLS when ``certificate`` (cert, key) is given."""
    executor = futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="pumpfl-grpc")
    server = grpc.server(
        executor,
        options=_SERVER_OPTIONS,
        interceptors=[_CountingInterceptor(counter)],
        maximum_concurrent_rpcs=max_workers - 4,
    )
    add_FlowerServiceServicer_to_server(FlowerServiceServicer(client_manager), server)
    if certificate is None:
        port = server.add_insecure_port(bind)
    else:
        cert, key = certificate
        port = server.add_secure_port(bind, grpc.ssl_server_credentials([(key, cert)]))
    if port == 0:
        executor.shutdown()
        raise OSError(f"could not listen on {bind}")
    server.start()
    return FlowerServer(server, executor)


def open_channel(target: str, root_certificate: bytes | None) -> grpc.Channel:
    """A channel to the server; with TLS it trusts exactly ``root_certificate``."""
    if root_certificate is None:
        return grpc.insecure_channel(target, options=_CLIENT_OPTIONS)
    creds = grpc.ssl_channel_credentials(root_certificates=root_certificate)
    return grpc.secure_channel(target, creds, options=_CLIENT_OPTIONS + [("grpc.ssl_target_name_override", SERVER_NAME)])


def join_stream(channel: grpc.Channel, outgoing) -> "grpc._channel._MultiThreadedRendezvous":
    """Open Flower's Join stream: ``outgoing`` yields ClientMessages, the result ServerMessages."""
    return FlowerServiceStub(channel).Join(outgoing)
