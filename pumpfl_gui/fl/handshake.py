"""The join handshake's four messages, built and read on both sides (fl layer; no Qt, no Flower).

1. Server -> facility: the protocol version and a server nonce; nothing about the federation.
2. Facility -> server: which invite it holds (a key id, never the code), its own nonce, its
   name, and its proof: HMAC(code, "facility"|both nonces|the certificate fingerprint it sees).
3. Server -> facility, only once that proof checks out: the server's proof (same HMAC, role
   "server"), with the federation's sensors and spec — or, to a probe, "probe_ok".
4. Facility -> server, only once the server's proof checks out: its sensors, samples, spec and
   scaling statistics. A facility pins a first-seen certificate only then.

Everything read from the other side is checked for type and size before use: a malformed field
is a refusal in words (`Malformed`), never an exception from deep inside.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from ..core.errors import UserError
from . import protocol as P
from .security import FACILITY, KEY_ID_HEX, SERVER, check_handshake_proof, handshake_proof, invite_key_id

NONCE_BYTES = 16
PROOF_HEX = 64
SERVER_NOT_PROVEN = (
    "this server does not know your join code: it may not be your coordinator. Nothing about this "
    "facility's data was sent to it; check the address, or ask your coordinator for a fresh invite"
)


class Malformed(ValueError):
    """A handshake message that is not what the protocol says; the text says what, in words."""


class ServerNotProven(UserError):
    """The server could not prove that it knows the facility's join code."""


@dataclass(frozen=True)
class FacilityHello:
    """Message 2 as the server read it."""

    key_id: str  # "" when the facility holds no code (an --insecure server)
    nonce: bytes
    name: str  # cleaned (protocol.clean_name); "" when it sent none
    proof: str
    probe: bool


def new_nonce() -> bytes:
    return secrets.token_bytes(NONCE_BYTES)


# --- the server's side -------------------------------------------------------------------------


def server_hello(server_nonce: bytes) -> dict:
    """Message 1."""
    return {P.HELLO_PROTOCOL: P.PROTOCOL_VERSION, P.HELLO_NONCE: server_nonce.hex()}


def read_facility_hello(props: dict) -> FacilityHello:
    """Message 2, checked field by field; raises `Malformed` with the reason in words."""
    protocol = props.get(P.HELLO_PROTOCOL)
    if not _is_int(protocol) or protocol != P.PROTOCOL_VERSION:
        raise Malformed("this facility runs an incompatible PumpFL version; install the same version as the server")
    key_id = _text(props, P.REPLY_KEY_ID, KEY_ID_HEX, "its invite's key id")
    if key_id and not _is_hex(key_id):
        raise Malformed("this facility sent a malformed invite key id")
    proof = _text(props, P.REPLY_PROOF, PROOF_HEX, "its proof")
    name = props.get(P.REPLY_NAME, "")
    if not isinstance(name, str):
        raise Malformed("this facility sent a name that is not text")
    probe = props.get(P.REPLY_PROBE, 0)
    if not _is_int(probe) or probe not in (0, 1):
        raise Malformed("this facility sent a malformed probe flag")
    return FacilityHello(key_id, _nonce(props.get(P.REPLY_NONCE), "this facility"), P.clean_name(name), proof, bool(probe))


def facility_proven(code: str, server_nonce: bytes, hello: FacilityHello, channel_fingerprint: str) -> bool:
    return check_handshake_proof(code, FACILITY, server_nonce, hello.nonce, channel_fingerprint, hello.proof)


def server_proof(code: str | None, server_nonce: bytes, facility_nonce: bytes, channel_fingerprint: str) -> dict:
    """The server's proof for message 3 (nothing without a join code: an --insecure server)."""
    if not code:
        return {}
    return {P.HELLO_SERVER_PROOF: handshake_proof(code, SERVER, server_nonce, facility_nonce, channel_fingerprint)}


# --- the facility's side -----------------------------------------------------------------------


def read_server_hello(config: dict) -> bytes:
    """Message 1's nonce; raises `UserError` when the server speaks another protocol."""
    protocol = config.get(P.HELLO_PROTOCOL)
    if not _is_int(protocol) or protocol != P.PROTOCOL_VERSION:
        raise UserError(
            f"the server speaks PumpFL protocol {protocol!r:.20} and this facility protocol {P.PROTOCOL_VERSION}; "
            "install the same PumpFL version as the coordinator"
        )
    try:
        return _nonce(config.get(P.HELLO_NONCE), "the server")
    except Malformed as exc:
        raise UserError(f"{exc}; is it a PumpFL server of this version?") from None


def facility_hello(
    code: str, server_nonce: bytes, facility_nonce: bytes, channel_fingerprint: str, name: str, probe: bool = False
) -> dict:
    """Message 2: the invite's key id and this facility's proof (empty without a join code)."""
    return {
        P.HELLO_PROTOCOL: P.PROTOCOL_VERSION,
        P.REPLY_KEY_ID: invite_key_id(code) if code else "",
        P.REPLY_NONCE: facility_nonce.hex(),
        P.REPLY_NAME: P.clean_name(name),
        P.REPLY_PROOF: handshake_proof(code, FACILITY, server_nonce, facility_nonce, channel_fingerprint) if code else "",
        P.REPLY_PROBE: int(probe),
    }


def check_server_proof(code: str, server_nonce: bytes, facility_nonce: bytes, channel_fingerprint: str, config: dict) -> None:
    """Raise `ServerNotProven` unless message 3 carries the server's proof for this join code.

    A facility without a join code (an --insecure server) has nothing to check."""
    if not code:
        return
    offered = config.get(P.HELLO_SERVER_PROOF)
    if not check_handshake_proof(code, SERVER, server_nonce, facility_nonce, channel_fingerprint, offered):
        raise ServerNotProven(SERVER_NOT_PROVEN)


# --- field checks ------------------------------------------------------------------------------


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_hex(text: str) -> bool:
    return all(ch in "0123456789abcdefABCDEF" for ch in text)


def _text(props: dict, key: str, limit: int, what: str) -> str:
    value = props.get(key, "")
    if not isinstance(value, str) or len(value) > limit:
        raise Malformed(f"this facility sent a malformed handshake ({what})")
    return value


def _nonce(value: object, who: str) -> bytes:
    if not isinstance(value, str) or len(value) != 2 * NONCE_BYTES or not _is_hex(value):
        raise Malformed(f"{who} sent a malformed handshake nonce")
    return bytes.fromhex(value)
