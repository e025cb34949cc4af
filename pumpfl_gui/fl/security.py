"""TLS certificates, fingerprints, join codes and known servers (fl layer; no Qt).

The server makes its own self-signed certificate; the invite carries its SHA-256 fingerprint,
and the client fetches the certificate, checks the fingerprint, then hands that same
certificate to gRPC as the root of trust. Facility and server each prove they hold the join
code with an HMAC over both sides' nonces and the certificate fingerprint the facility sees, so
the code itself never travels and a proof made through someone else's TLS channel fails.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import os
import secrets
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

import platformdirs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pumpfl_gui.core.errors import UserError
from pumpfl_gui.core.files import private_dir, write_atomic, write_private

#: The DNS name every PumpFL certificate carries; clients pass it as gRPC's
#: ``grpc.ssl_target_name_override`` so any address (IP, tunnel, VPN name) checks out.
SERVER_NAME = "pumpfl-server"
_COMMON_NAME = "PumpFL server"
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_CROCKFORD_ALIASES = str.maketrans({"O": "0", "I": "1", "L": "1"})
JOIN_CODE_LENGTH = 12
_FINGERPRINT_HEX = 64


class TlsError(UserError):
    """The server could not be reached over TLS, or did not speak TLS."""


class FingerprintMismatch(UserError):
    """The server's certificate is not the one the invite names."""


class JoinCodeError(UserError):
    """A join code that cannot be right (wrong length or characters)."""


class KnownServersError(UserError):
    """The file of known servers cannot be read."""


# --- certificates ------------------------------------------------------------------------------


def make_certificate(hosts: list[str], days: int = 825) -> tuple[bytes, bytes]:
    """Create a self-signed ECDSA P-256 server certificate; return (certificate PEM, key PEM).

    It names ``pumpfl-server``, ``localhost`` and each of ``hosts`` (IP or DNS entries), and is
    its own CA so a client can use it directly as ``root_certificates``.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, _COMMON_NAME)])
    now = dt.datetime.now(dt.UTC)
    public_key = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))  # tolerate clients whose clock is behind
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(_san_entries(hosts)), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return cert_pem, key_pem


def _san_entries(hosts: list[str]) -> list[x509.GeneralName]:
    entries: list[x509.GeneralName] = []
    seen: set[str] = set()
    for host in [SERVER_NAME, "localhost", *hosts]:
        host = host.strip().strip("[]")
        if not host or host.lower() in seen:
            continue
        seen.add(host.lower())
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            entries.append(x509.DNSName(host.lower()))
    return entries


def _load_certificate(cert_pem: bytes) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(cert_pem)
    except ValueError:
        raise TlsError("the server's certificate could not be read; ask the server's operator for a new invite") from None


def fingerprint(cert_pem: bytes) -> str:
    """SHA-256 of the DER certificate as upper-case hex pairs joined by colons."""
    digest = _load_certificate(cert_pem).fingerprint(hashes.SHA256())
    return ":".join(f"{byte:02X}" for byte in digest)


def normalise_fingerprint(text: str) -> str:
    """Canonical ``AB:CD:...`` form of a SHA-256 fingerprint typed with or without colons."""
    compact = "".join(ch for ch in text if ch not in ": -\t").upper()
    if len(compact) != _FINGERPRINT_HEX or any(ch not in "0123456789ABCDEF" for ch in compact):
        raise FingerprintMismatch("the certificate fingerprint must be 64 hexadecimal characters; copy the whole invite again")
    return ":".join(compact[i : i + 2] for i in range(0, _FINGERPRINT_HEX, 2))


def short_fingerprint(fp: str) -> str:
    """The first 8 pairs, enough for a person to compare by eye."""
    return ":".join(normalise_fingerprint(fp).split(":")[:8])


def _same_fingerprint(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("ascii"), b.encode("ascii"))


def invite_mismatch(actual: str, invited: str) -> FingerprintMismatch:
    """The refusal when a server's certificate is not the one its invite names."""
    return FingerprintMismatch(
        f"the server's certificate ({short_fingerprint(actual)}...) is not the one the invite names "
        f"({short_fingerprint(invited)}...), so this is not the server you were invited to; "
        "do not proceed, and ask its operator for a fresh invite"
    )


@dataclass(frozen=True)
class Trust:
    """What a facility makes of a server's certificate, before any data flows.

    ``basis``: "invite" (the invite names a fingerprint), "pinned" (this computer trusted the
    server before) or "first_use" (neither: trust it and remember it). ``matches`` is False
    when the certificate is not the invited or pinned one; ``expected`` is that fingerprint.
    """

    basis: str
    matches: bool
    actual: str
    expected: str | None = None


def judge_certificate(cert_pem: bytes, address, invite_fingerprint: str | None, known_servers) -> Trust:
    """The one trust rule, used by joining and by the connection test: the invite's fingerprint
    if there is one, else the one pinned for ``address``, else trust on first use.

    Raises `FingerprintMismatch` for an invite fingerprint that is not one, and `UserError`
    when the list of trusted servers cannot be read.
    """
    actual = fingerprint(cert_pem)
    if invite_fingerprint:
        wanted = normalise_fingerprint(invite_fingerprint)
        return Trust("invite", _same_fingerprint(actual, wanted), actual, wanted)
    pinned = known_servers.get(address) if known_servers is not None else None
    if pinned is not None:
        pinned = normalise_fingerprint(pinned)
        return Trust("pinned", _same_fingerprint(actual, pinned), actual, pinned)
    return Trust("first_use", True, actual)


def speaks_tls(host: str, port: int) -> bool:
    """Does the server at host:port answer TLS (a facility told to connect plainly asks)?"""
    try:
        fetch_certificate(host, port, timeout=3.0)
        return True
    except UserError:
        return False


def fetch_certificate(host: str, port: int, timeout: float = 5.0) -> bytes:
    """Fetch the server's certificate (PEM) over TLS without checking it.

    Nothing is trusted here: the caller compares the fingerprint with the invite's.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])  # gRPC servers refuse TLS without HTTP/2 ALPN
    where = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
    try:
        ipaddress.ip_address(host)
        sni: str | None = SERVER_NAME
    except ValueError:
        sni = host
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=sni) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except socket.gaierror:
        raise TlsError(f"cannot find server '{host}' (name does not resolve); check the spelling or use its IP address") from None
    except ConnectionRefusedError:
        raise TlsError(
            f"the server at {where} refused the connection; check that the server is running and the port is right"
        ) from None
    except TimeoutError:
        raise TlsError(
            f"the server at {where} did not answer within {timeout:g} s; check the address, the network "
            "and any firewall between you"
        ) from None
    except (ssl.SSLError, ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
        raise TlsError(
            f"the server at {where} answered without encryption (TLS); it may be running with --insecure, "
            "so ask its operator for a secure invite or connect with --insecure"
        ) from None
    except OSError as exc:
        raise TlsError(f"cannot reach the server at {where} ({exc.strerror or exc}); check the address and the network") from None
    if not der:
        raise TlsError(f"the server at {where} sent no certificate; ask its operator for a new invite")
    return ssl.DER_cert_to_PEM_cert(der).encode("ascii")


# --- join codes --------------------------------------------------------------------------------


def new_join_code() -> str:
    """A fresh random join code such as ``K7QM-2XPA-9WD3`` (60 bits, Crockford base32)."""
    chars = "".join(secrets.choice(_CROCKFORD) for _ in range(JOIN_CODE_LENGTH))
    return _group(chars)


def _group(chars: str) -> str:
    return "-".join(chars[i : i + 4] for i in range(0, len(chars), 4))


def _compact_join_code(text: str) -> str:
    compact = "".join(ch for ch in text if ch not in " -\t").upper().translate(_CROCKFORD_ALIASES)
    bad = sorted({ch for ch in compact if ch not in _CROCKFORD})
    if bad:
        raise JoinCodeError(
            f"the join code contains {', '.join(repr(ch) for ch in bad)}, which join codes never use; "
            "check it against the code the server shows (like K7QM-2XPA-9WD3)"
        )
    if len(compact) != JOIN_CODE_LENGTH:
        raise JoinCodeError(
            f"the join code has {len(compact)} characters but should have {JOIN_CODE_LENGTH} "
            "(like K7QM-2XPA-9WD3); check that all of it was copied"
        )
    return compact


def normalise_join_code(text: str) -> str:
    """Canonical ``XXXX-XXXX-XXXX`` form; ignores case, spaces and hyphens, reads O as 0, I/L
    as 1."""
    return _group(_compact_join_code(text))


FACILITY = "facility"  # whose proof: the facility's ...
SERVER = "server"  # ... or the server's (a proof of one side never passes as the other's)
_KEY_ID_LABEL = b"pumpfl invite id"
KEY_ID_HEX = 16


def invite_key_id(code: str) -> str:
    """Which invite a facility holds, named without giving the code away (16 hex digits)."""
    key = _compact_join_code(code).encode("ascii")
    return hmac.new(key, _KEY_ID_LABEL, hashlib.sha256).hexdigest()[:KEY_ID_HEX]


def handshake_proof(code: str, role: str, server_nonce: bytes, facility_nonce: bytes, channel_fingerprint: str) -> str:
    """HMAC-SHA256 (hex), keyed by the join code, over who proves, both nonces and the TLS
    certificate fingerprint the facility sees ("" without TLS): a proof relayed through another
    TLS channel, replayed, or sent back by the other side does not check out."""
    if role not in (FACILITY, SERVER):
        raise ValueError(f"unknown role {role!r}")
    key = _compact_join_code(code).encode("ascii")
    message = "|".join([role, server_nonce.hex(), facility_nonce.hex(), channel_fingerprint]).encode("ascii")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def check_handshake_proof(
    code: str, role: str, server_nonce: bytes, facility_nonce: bytes, channel_fingerprint: str, proof: object
) -> bool:
    """True when ``proof`` was made with this join code over these nonces and
    fingerprint (constant-time)."""
    if not isinstance(proof, str) or len(proof) != 64:
        return False
    expected = handshake_proof(code, role, server_nonce, facility_nonce, channel_fingerprint).encode("ascii")
    return hmac.compare_digest(expected, proof.lower().encode("ascii", errors="replace"))


# --- trust on first use ------------------------------------------------------------------------


def default_known_servers_path() -> Path:
    """Where trusted fingerprints live: the user's PumpFL data folder."""
    return Path(platformdirs.user_data_dir("PumpFL", appauthor=False)) / "known_servers.json"


class KnownServers:
    """Fingerprints of servers this machine has trusted before, kept in a small JSON file."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_known_servers_path()

    def _read(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            raise KnownServersError(
                f"the list of known servers ({self.path}) cannot be read; delete that file "
                "and connect again with the server's invite"
            ) from None
        servers = data.get("servers") if isinstance(data, dict) else None
        if not isinstance(servers, dict) or not all(isinstance(v, str) for v in servers.values()):
            raise KnownServersError(
                f"the list of known servers ({self.path}) is damaged; delete that file and connect again with the server's invite"
            )
        return dict(servers)

    def servers(self) -> dict[str, str]:
        """Every pinned ``host:port`` with its fingerprint."""
        return self._read()

    def get(self, target: object) -> str | None:
        """The pinned fingerprint for ``target`` (``host:port``), or None if never seen."""
        return self._read().get(str(target))

    def pin(self, target: object, fp: str) -> None:
        """Remember ``fp`` for ``target``, replacing any earlier one."""
        servers = self._read()
        servers[str(target)] = normalise_fingerprint(fp)
        self._write(servers)

    def forget(self, target: object) -> None:
        servers = self._read()
        if servers.pop(str(target), None) is not None:
            self._write(servers)

    def _write(self, servers: dict[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"version": 1, "servers": servers}, indent=2, sort_keys=True)
        write_atomic(self.path, (text + "\n").encode("utf-8"))


def load_or_make_identity(folder: str | os.PathLike[str]) -> tuple[bytes, bytes]:
    """The server's lasting certificate and key, made on first use (like an SSH host key).

    Keeping them means invites and facilities' pinned fingerprints stay valid when the
    coordinator restarts or resumes a run. The folder is this user's only (0700) and the key
    readable by its owner only (0600); looser modes found on load are tightened.
    """
    folder = private_dir(folder)
    cert_path, key_path = folder / "server.crt", folder / "server.key"
    if cert_path.is_file() and key_path.is_file():
        if key_path.stat().st_mode & 0o077:
            os.chmod(key_path, 0o600)
        return cert_path.read_bytes(), key_path.read_bytes()
    cert, key = make_certificate([])
    write_private(key_path, key)
    write_atomic(cert_path, cert)
    return cert, key
