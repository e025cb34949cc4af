"""The facility's side of trusting a coordinator (fl layer; no Qt, no Flower).

Before any data flows: the server's certificate is the one the invite names, or the one this
computer pinned when it first joined, or (first use) any — pinned only once the server has
proven it knows the join code (``fl/handshake.py``). Per session: the nonces of the handshake,
and whether the server has proven itself.
"""

from __future__ import annotations

from collections.abc import Callable

from .addresses import ServerAddress
from .events import ConnectionState, Event
from .handshake import SERVER_NOT_PROVEN, ServerNotProven, check_server_proof, facility_hello, new_nonce, read_server_hello
from .security import FingerprintMismatch, fetch_certificate, invite_mismatch, judge_certificate, short_fingerprint


class FacilityTrust:
    """``options``: the facility's ClientOptions (join code, invite fingerprint, known servers)."""

    def __init__(self, server: ServerAddress, options, emit: Callable[[Event], None]) -> None:
        self.server = server
        self._options = options  # read when needed: the join code is never copied out of it
        self._emit = emit
        self._channel_fp = ""  # the certificate fingerprint the channel uses ("" without TLS)
        self._pin: str | None = None  # a first-seen fingerprint, pinned once the server proves itself
        self._nonces: tuple[bytes, bytes] | None = None
        self.proven = False

    def certificate(self) -> bytes:
        """The server's certificate (PEM), if this facility may trust it; raises otherwise."""
        pem = fetch_certificate(self.server.host, self.server.port, timeout=5.0)
        trust = judge_certificate(pem, self.server, self._options.fingerprint, self._options.known_servers)
        fp = trust.actual
        if trust.basis == "invite" and not trust.matches:
            raise invite_mismatch(fp, trust.expected)
        if trust.basis == "pinned" and not trust.matches:
            raise FingerprintMismatch(
                f"the server at {self.server} shows another certificate ({short_fingerprint(fp)}...) than when this "
                f"facility first joined it ({short_fingerprint(trust.expected)}...); this may not be your coordinator. "
                "Do not proceed unless its operator confirms the change, then connect with their new invite"
            )
        # First use: pinned only once the server proves it knows the join code (check_server).
        self._pin = fp if trust.basis == "first_use" else None
        self._channel_fp = fp
        return pem

    def new_session(self) -> None:
        self._nonces, self.proven = None, False

    def greet(self, config: dict, name: str) -> dict:
        """Handshake message 2: which invite this facility holds, and its proof."""
        server_nonce = read_server_hello(config)
        self._nonces, self.proven = (server_nonce, new_nonce()), False
        return facility_hello(self._options.join_code, *self._nonces, self._channel_fp, name)

    def check_server(self, config: dict) -> None:
        """Handshake message 3: the server's proof. Only now is a first-seen certificate pinned."""
        if self._nonces is None:
            raise ServerNotProven(SERVER_NOT_PROVEN)
        check_server_proof(self._options.join_code, *self._nonces, self._channel_fp, config)
        self.proven = True
        store, fp = self._options.known_servers, self._pin
        if fp is not None:
            if store is not None:
                store.pin(self.server, fp)
            self._pin = None
            self._emit(
                ConnectionState("trusted", f"first connection to {self.server}: trusting certificate {short_fingerprint(fp)}")
            )
