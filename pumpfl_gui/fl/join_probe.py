"""Ask a server whether a join code is right without joining (fl layer; no Qt).

Used by "Test connection": the same handshake as joining (fl/handshake.py), with a ``probe``
flag. The server checks the facility's proof, proves itself in return and says "probe_ok",
never enrols it, so a test never takes a seat in a federation or receives parameters; and a
server that cannot prove it knows the code is reported as not being the coordinator.
"""

from __future__ import annotations

import queue
import threading

import grpc

from ..core.errors import UserError
from . import protocol as P
from .addresses import ServerAddress
from .flower.client_codec import read, reply_properties
from .flower.wire import join_stream, open_channel
from .handshake import check_server_proof, facility_hello, new_nonce, read_server_hello
from .messages import Ask
from .security import fingerprint

ACCEPTED = "the server accepted the join code"


def probe_join_code(
    address: ServerAddress, root_certificate: bytes | None, join_code: str, timeout: float = 10.0
) -> tuple[bool, str]:
    """(accepted, detail). Raises nothing: network trouble comes back as (False, words)."""
    channel = open_channel(address.target, root_certificate)
    channel_fp = fingerprint(root_certificate) if root_certificate is not None else ""
    outbox: queue.Queue = queue.Queue()
    nonces: tuple[bytes, bytes] | None = None
    try:
        stream = join_stream(channel, iter(outbox.get, None))
        for msg in _with_deadline(stream, timeout):
            instruction = read(msg)
            if not isinstance(instruction, Ask):
                return False, "the server sent something unexpected; is it a PumpFL server of this version?"
            config = instruction.config
            if P.HELLO_NONCE in config:
                nonces = (read_server_hello(config), new_nonce())
                props = facility_hello(join_code, *nonces, channel_fp, "connection test", probe=True)
                outbox.put(reply_properties(props))
                continue
            if nonces is None or P.HELLO_PROBE_OK not in config:
                return False, "the server answered out of turn; is it a PumpFL server of this version?"
            check_server_proof(join_code, *nonces, channel_fp, config)
            outbox.put(reply_properties({}))
            return True, ACCEPTED
        return False, "the server closed the connection without an answer"
    except UserError as exc:  # a server of another version, or one that does not know the code
        return False, str(exc)
    except grpc.RpcError as exc:
        if hasattr(exc, "code") and exc.code() in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.RESOURCE_EXHAUSTED):
            return False, exc.details()
        return False, f"the server did not answer the handshake ({exc.details() if hasattr(exc, 'details') else exc})"
    finally:
        outbox.put(None)
        channel.close()


def _with_deadline(stream, timeout: float):
    """Iterate a gRPC stream, cancelling it if no message comes within ``timeout`` seconds."""
    timer = threading.Timer(timeout, stream.cancel)
    timer.daemon = True
    timer.start()
    try:
        yield from stream
    finally:
        timer.cancel()
