"""Ask a server whether a join code is right without joining (fl layer; no Qt).

Used by "Test connection": the facility answers the server's handshake with its proof and a
``probe`` flag; the server says yes or no and never enrols it, so a test never takes a seat in
a federation or receives parameters.
"""

from __future__ import annotations

import queue

import grpc
from flwr.common import Code, GetPropertiesRes, Status, serde
from flwr.proto.transport_pb2 import ClientMessage

from . import protocol as P
from .addresses import ServerAddress
from .security import join_proof
from .wire import join_stream, open_channel


def probe_join_code(address: ServerAddress, root_certificate: bytes | None, join_code: str, timeout: float = 10.0) -> tuple[bool, str]:
    """(accepted, detail). Raises nothing: network trouble comes back as (False, words)."""
    channel = open_channel(address.target, root_certificate)
    outbox: queue.Queue = queue.Queue()
    ok = Status(code=Code.OK, message="ok")
    try:
        stream = join_stream(channel, iter(outbox.get, None))
        for msg in _with_deadline(stream, timeout):
            if msg.WhichOneof("msg") != "get_properties_ins":
                return False, "the server sent something unexpected; is it a PumpFL server of this version?"
            config = dict(serde.get_properties_ins_from_proto(msg.get_properties_ins).config)
            if P.HELLO_PROBE_OK in config:
                return True, "the server accepted the join code"
            if P.HELLO_REFUSED in config:
                return False, str(config[P.HELLO_REFUSED])
            nonce = bytes.fromhex(str(config.get(P.HELLO_NONCE, "")))
            props = {
                P.HELLO_PROTOCOL: P.PROTOCOL_VERSION,
                P.REPLY_PROBE: 1,
                P.REPLY_PROOF: join_proof(join_code, nonce) if join_code else "",
            }
            outbox.put(ClientMessage(get_properties_res=serde.get_properties_res_to_proto(GetPropertiesRes(ok, props))))
        return False, "the server closed the connection without an answer"
    except grpc.RpcError as exc:
        return False, f"the server did not answer the handshake ({exc.details() if hasattr(exc, 'details') else exc})"
    finally:
        outbox.put(None)
        channel.close()


def _with_deadline(stream, timeout: float):
    """Iterate a gRPC stream, cancelling it if no message comes within ``timeout`` seconds."""
    import threading

    timer = threading.Timer(timeout, stream.cancel)
    timer.daemon = True
    timer.start()
    try:
        yield from stream
    finally:
        timer.cancel()
