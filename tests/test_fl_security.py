"""Certificates, fingerprints, real TLS and gRPC on loopback, join codes, known servers, invites."""

import contextlib
import datetime as dt
import hashlib
import json
import re
import socket
import ssl
import threading
from concurrent import futures

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from pumpfl_gui.core.errors import UserError
from pumpfl_gui.fl.addresses import AddressError, ServerAddress
from pumpfl_gui.fl.invite import Invite, InviteError, looks_like_invite, parse_invite
from pumpfl_gui.fl.security import (
    FACILITY,
    SERVER_NAME,
    FingerprintMismatch,
    JoinCodeError,
    KnownServers,
    KnownServersError,
    TlsError,
    Trust,
    check_handshake_proof,
    default_known_servers_path,
    fetch_certificate,
    fingerprint,
    handshake_proof,
    invite_mismatch,
    judge_certificate,
    make_certificate,
    new_join_code,
    normalise_join_code,
    short_fingerprint,
)


@pytest.fixture(scope="module")
def cert_and_key():
    return make_certificate(["127.0.0.1"])


@pytest.fixture(scope="module")
def other_cert_and_key():
    return make_certificate(["127.0.0.1"])


# --- certificates ------------------------------------------------------------------------------


def test_certificate_names_the_server_and_each_host():
    cert_pem, key_pem = make_certificate(["192.168.1.100", "pump.example.org", "[fd7a::1]", "localhost", "Pump.Example.org"])
    cert = x509.load_pem_x509_certificate(cert_pem)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [SERVER_NAME, "localhost", "pump.example.org"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["192.168.1.100", "fd7a::1"]
    common_name = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    assert common_name == "PumpFL server"
    assert cert.issuer == cert.subject


def test_certificate_is_its_own_ca_and_key_matches(cert_and_key):
    cert_pem, key_pem = cert_and_key
    cert = x509.load_pem_x509_certificate(cert_pem)
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca
    cert.verify_directly_issued_by(cert)  # self-signed, signature valid
    key = serialization.load_pem_private_key(key_pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()
    assert b"ENCRYPTED" not in key_pem


def test_certificate_validity_starts_an_hour_back():
    cert_pem, _ = make_certificate([], days=30)
    cert = x509.load_pem_x509_certificate(cert_pem)
    now = dt.datetime.now(dt.UTC)
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    assert abs((now - start) - dt.timedelta(hours=1)) < dt.timedelta(minutes=1)
    assert abs((end - now) - dt.timedelta(days=30)) < dt.timedelta(minutes=1)


def test_each_certificate_is_new(cert_and_key, other_cert_and_key):
    one = x509.load_pem_x509_certificate(cert_and_key[0])
    two = x509.load_pem_x509_certificate(other_cert_and_key[0])
    assert one.serial_number != two.serial_number
    assert fingerprint(cert_and_key[0]) != fingerprint(other_cert_and_key[0])


def test_fingerprint_is_sha256_of_der_in_colon_pairs(cert_and_key):
    cert_pem = cert_and_key[0]
    fp = fingerprint(cert_pem)
    assert re.fullmatch(r"([0-9A-F]{2}:){31}[0-9A-F]{2}", fp)
    der = x509.load_pem_x509_certificate(cert_pem).public_bytes(serialization.Encoding.DER)
    assert fp.replace(":", "") == hashlib.sha256(der).hexdigest().upper()
    # Stable: the same certificate re-encoded (e.g. as the TLS stack hands it over) gives the
    # same value.
    assert fingerprint(ssl.DER_cert_to_PEM_cert(der).encode()) == fp
    assert fingerprint(cert_pem) == fp


def test_short_fingerprint(cert_and_key):
    fp = fingerprint(cert_and_key[0])
    short = short_fingerprint(fp)
    assert short == fp[: 8 * 3 - 1] and short.count(":") == 7
    assert short_fingerprint(fp.replace(":", "").lower()) == short


def test_an_invite_fingerprint_matches_in_any_spelling(cert_and_key):
    fp = fingerprint(cert_and_key[0])
    for spelling in (fp, fp.lower(), fp.replace(":", ""), " " + fp.replace(":", " ") + " "):
        trust = judge_certificate(cert_and_key[0], None, spelling, None)
        assert (trust.basis, trust.matches, trust.actual) == ("invite", True, fp)


def test_an_invite_fingerprint_refuses_another_certificate(cert_and_key, other_cert_and_key):
    trust = judge_certificate(other_cert_and_key[0], None, fingerprint(cert_and_key[0]), None)
    assert trust.basis == "invite" and not trust.matches
    message = str(invite_mismatch(trust.actual, trust.expected))
    assert "not the server you were invited to" in message and "do not proceed" in message
    assert short_fingerprint(fingerprint(cert_and_key[0])) in message


def test_an_invite_fingerprint_that_is_none_is_refused(cert_and_key):
    with pytest.raises(UserError, match="64 hexadecimal"):
        judge_certificate(cert_and_key[0], None, "AB:CD", None)


# --- real TLS on loopback ----------------------------------------------------------------------


@contextlib.contextmanager
def tls_server(cert_pem, key_pem, tmp_path):
    """A tiny threaded TLS server on 127.0.0.1 that completes handshakes and hangs up."""
    (tmp_path / "cert.pem").write_bytes(cert_pem)
    (tmp_path / "key.pem").write_bytes(key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    context.set_alpn_protocols(["h2"])
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(5)
            with contextlib.suppress(OSError), context.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)  # wait for the client to hang up
            conn.close()

    thread = threading.Thread(target=serve, name="test tls server")
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(10)
        listener.close()


@contextlib.contextmanager
def plain_server(reply):
    """A TCP server that answers each connection with ``reply`` (bytes), or waits if None."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                if reply is None:
                    stop.wait(3)
                else:
                    with contextlib.suppress(OSError):
                        conn.sendall(reply)

    thread = threading.Thread(target=serve, name="test plain server")
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(10)
        listener.close()


def test_fetch_certificate_over_real_tls(cert_and_key, other_cert_and_key, tmp_path):
    with tls_server(*cert_and_key, tmp_path) as port:
        fetched = fetch_certificate("127.0.0.1", port)
    assert fetched == cert_and_key[0]
    assert fingerprint(fetched) == fingerprint(cert_and_key[0]) != fingerprint(other_cert_and_key[0])


def test_fetch_certificate_by_name(cert_and_key, tmp_path):
    with tls_server(*cert_and_key, tmp_path) as port:
        fetched = fetch_certificate("localhost", port)
    assert fingerprint(fetched) == fingerprint(cert_and_key[0])


@pytest.mark.parametrize("reply", [b"HTTP/1.1 400 Bad Request\r\n\r\nplain text\r\n", b""])
def test_fetch_certificate_from_a_plain_server_is_a_tls_error(reply):
    with plain_server(reply) as port, pytest.raises(TlsError, match=f"127.0.0.1:{port} answered without encryption"):
        fetch_certificate("127.0.0.1", port)


def test_fetch_certificate_from_a_silent_server_times_out():
    with plain_server(None) as port, pytest.raises(TlsError, match=r"did not answer within 0.5 s"):
        fetch_certificate("127.0.0.1", port, timeout=0.5)


def test_fetch_certificate_refused():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(TlsError, match="refused the connection; check that the server is running"):
        fetch_certificate("127.0.0.1", port)


def test_fetch_certificate_from_unknown_name():
    with pytest.raises(TlsError, match="cannot find server 'no-such-host.invalid'"):
        fetch_certificate("no-such-host.invalid", 8080, timeout=10)


# --- real gRPC with the generated certificate --------------------------------------------------


@contextlib.contextmanager
def grpc_server(cert_and_key=None):
    """A gRPC server on 127.0.0.1 with the health service, TLS when a (cert, key) is given."""
    executor = futures.ThreadPoolExecutor(max_workers=2)
    server = grpc.server(executor, options=[("grpc.so_reuseport", 0)])
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    if cert_and_key is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        cert_pem, key_pem = cert_and_key
        port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([(key_pem, cert_pem)]))
    server.start()
    try:
        yield port
    finally:
        server.stop(None).wait()
        executor.shutdown()


def channel_ready(port, root_pem, timeout, override=True):
    options = [("grpc.ssl_target_name_override", SERVER_NAME)] if override else []
    credentials = grpc.ssl_channel_credentials(root_certificates=root_pem)
    with grpc.secure_channel(f"127.0.0.1:{port}", credentials, options=options) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            return False
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        return True


def test_grpc_trusts_the_self_signed_certificate_as_root(cert_and_key):
    with grpc_server(cert_and_key) as port:
        assert channel_ready(port, cert_and_key[0], timeout=10)


@pytest.mark.slow
def test_grpc_refuses_a_server_with_another_certificate(cert_and_key, other_cert_and_key):
    with grpc_server(other_cert_and_key) as port:
        assert not channel_ready(port, cert_and_key[0], timeout=2)


@pytest.mark.slow
def test_grpc_by_ip_needs_the_name_override_unless_the_ip_is_in_the_certificate():
    # Tunnels, NAT and VPNs mean the certificate cannot know every address clients use, so
    # clients always pass grpc.ssl_target_name_override=pumpfl-server.
    with_ip = make_certificate(["127.0.0.1"])
    without_ip = make_certificate([])
    with grpc_server(with_ip) as port:
        assert channel_ready(port, with_ip[0], timeout=10, override=False)
    with grpc_server(without_ip) as port:
        assert not channel_ready(port, without_ip[0], timeout=2, override=False)
        assert channel_ready(port, without_ip[0], timeout=10, override=True)


def test_fetch_certificate_from_a_grpc_tls_server(cert_and_key):
    with grpc_server(cert_and_key) as port:
        fetched = fetch_certificate("127.0.0.1", port)
    assert fingerprint(fetched) == fingerprint(cert_and_key[0])


def test_fetch_certificate_from_a_plaintext_grpc_server_is_a_tls_error():
    with grpc_server(None) as port, pytest.raises(TlsError, match="without encryption.*--insecure"):
        fetch_certificate("127.0.0.1", port)


# --- join codes --------------------------------------------------------------------------------


CODE_PATTERN = re.compile(r"[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}")


def test_new_join_codes_are_crockford_groups_and_distinct():
    codes = {new_join_code() for _ in range(200)}
    assert len(codes) == 200
    assert all(CODE_PATTERN.fullmatch(code) for code in codes)
    assert normalise_join_code(next(iter(codes))) in codes


@pytest.mark.parametrize(
    "typed",
    ["K7QM-2XPA-9WD3", "k7qm-2xpa-9wd3", "K7QM 2XPA 9WD3", " k7qm2xpa9wd3 ", "K7QM--2XPA-9WD3"],
)
def test_normalise_join_code_forgives_spelling(typed):
    assert normalise_join_code(typed) == "K7QM-2XPA-9WD3"


def test_normalise_join_code_reads_look_alikes_as_crockford_does():
    assert normalise_join_code("OOOO-IIII-LLLL") == "0000-1111-1111"
    assert normalise_join_code("oilo-0000-0000") == "0110-0000-0000"


@pytest.mark.parametrize(
    ("typed", "fragment"),
    [
        ("K7QM-2XPA-9WD", "has 11 characters but should have 12"),
        ("K7QM-2XPA-9WD3-A", "has 13 characters"),
        ("", "has 0 characters"),
        ("K7QM-2XPA-9WDU", "'U'"),
        ("K7QM-2XPA-9WD!", "'!'"),
    ],
)
def test_normalise_join_code_refuses_wrong_codes(typed, fragment):
    with pytest.raises(JoinCodeError) as info:
        normalise_join_code(typed)
    assert fragment in str(info.value)
    assert "K7QM-2XPA-9WD3" in str(info.value)  # shows what a code looks like


def test_handshake_proof_hides_the_code_and_depends_on_code_and_nonces():
    nonce, theirs, fp = bytes(range(16)), bytes(range(16, 32)), "AB:" * 31 + "AB"
    proof = handshake_proof("K7QM-2XPA-9WD3", FACILITY, nonce, theirs, fp)
    assert re.fullmatch(r"[0-9a-f]{64}", proof)
    assert "K7QM" not in proof.upper()
    assert handshake_proof("k7qm 2xpa 9wd3", FACILITY, nonce, theirs, fp) == proof
    assert handshake_proof("K7QM-2XPA-9WD4", FACILITY, nonce, theirs, fp) != proof
    assert handshake_proof("K7QM-2XPA-9WD3", FACILITY, nonce[::-1], theirs, fp) != proof
    assert handshake_proof("K7QM-2XPA-9WD3", FACILITY, nonce, theirs[::-1], fp) != proof


def test_check_handshake_proof():
    nonce, theirs = b"\x01" * 16, b"\x02" * 16
    proof = handshake_proof("K7QM-2XPA-9WD3", FACILITY, nonce, theirs, "")
    assert check_handshake_proof("K7QM-2XPA-9WD3", FACILITY, nonce, theirs, "", proof)
    assert check_handshake_proof("k7qm2xpa9wd3", FACILITY, nonce, theirs, "", proof.upper())
    assert not check_handshake_proof("K7QM-2XPA-9WD4", FACILITY, nonce, theirs, "", proof)
    assert not check_handshake_proof("K7QM-2XPA-9WD3", FACILITY, b"\x03" * 16, theirs, "", proof)
    assert not check_handshake_proof("K7QM-2XPA-9WD3", FACILITY, nonce, theirs, "", proof[:-1])
    assert not check_handshake_proof("K7QM-2XPA-9WD3", FACILITY, nonce, theirs, "", "é" * 64)
    assert not check_handshake_proof("K7QM-2XPA-9WD3", FACILITY, nonce, theirs, "", None)


# --- known servers (trust on first use) --------------------------------------------------------


def test_known_servers_round_trip(tmp_path, cert_and_key, other_cert_and_key):
    path = tmp_path / "deeper" / "known_servers.json"
    store = KnownServers(path)
    assert store.get("192.168.1.100:8080") is None
    fp = fingerprint(cert_and_key[0])
    store.pin("192.168.1.100:8080", fp.replace(":", "").lower())
    assert store.get("192.168.1.100:8080") == fp
    store.pin(ServerAddress("fd7a::1", 9000), fingerprint(other_cert_and_key[0]))

    reopened = KnownServers(path)
    assert reopened.get("192.168.1.100:8080") == fp
    assert reopened.get("[fd7a::1]:9000") == fingerprint(other_cert_and_key[0])
    reopened.pin("192.168.1.100:8080", fingerprint(other_cert_and_key[0]))
    assert KnownServers(path).get("192.168.1.100:8080") == fingerprint(other_cert_and_key[0])
    reopened.forget("192.168.1.100:8080")
    assert KnownServers(path).get("192.168.1.100:8080") is None

    assert [p.name for p in path.parent.iterdir()] == ["known_servers.json"]  # no temp files left
    assert json.loads(path.read_text())["servers"] == {"[fd7a::1]:9000": fingerprint(other_cert_and_key[0])}


def test_known_servers_refuses_a_bad_fingerprint(tmp_path):
    store = KnownServers(tmp_path / "known.json")
    with pytest.raises(UserError):
        store.pin("host:8080", "not a fingerprint")
    assert not (tmp_path / "known.json").exists()


def test_damaged_known_servers_file_is_explained(tmp_path):
    path = tmp_path / "known_servers.json"
    path.write_text("{not json")
    with pytest.raises(KnownServersError, match="cannot be read; delete that file"):
        KnownServers(path).get("host:8080")
    path.write_text('["a list"]')
    with pytest.raises(KnownServersError, match="damaged"):
        KnownServers(path).get("host:8080")


def test_default_known_servers_path():
    path = default_known_servers_path()
    assert path.name == "known_servers.json" and "PumpFL" in str(path)
    assert KnownServers().path == path


# --- invites -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "host_in_text"),
    [
        (ServerAddress("192.168.1.100", 8080), "192.168.1.100:8080"),
        (ServerAddress("fd7a:115c:a1e0::1", 9000), "[fd7a:115c:a1e0::1]:9000"),
        (ServerAddress("2.tcp.ngrok.io", 15432), "2.tcp.ngrok.io:15432"),
        (ServerAddress("pump-server.tail1234.ts.net", 8080), "pump-server.tail1234.ts.net:8080"),
    ],
)
def test_invite_round_trip(address, host_in_text, cert_and_key):
    fp = fingerprint(cert_and_key[0])
    invite = Invite(address, "K7QM-2XPA-9WD3", fp)
    text = invite.to_text()
    assert text == f"pumpfl://{host_in_text}/?code=K7QM-2XPA-9WD3&fp={fp.replace(':', '')}"
    assert parse_invite(text) == invite
    assert parse_invite(f"  invite: {text}\n") == invite
    assert parse_invite(f"Invite:{text}") == invite
    assert not invite.insecure
    assert looks_like_invite(text) and looks_like_invite(f"invite: {text}")


def test_invite_fingerprint_and_code_are_normalised(cert_and_key):
    fp = fingerprint(cert_and_key[0])
    invite = parse_invite(f"PUMPFL://Pump.Example.org:8080?code=k7qm2xpa9wd3&fp={fp.lower()}")
    assert invite == Invite(ServerAddress("pump.example.org", 8080), "K7QM-2XPA-9WD3", fp)


def test_insecure_invite():
    invite = parse_invite("pumpfl://10.0.0.5:8080/")
    assert invite == Invite(ServerAddress("10.0.0.5", 8080), "", None)
    assert invite.insecure
    assert invite.to_text() == "pumpfl://10.0.0.5:8080/"
    with pytest.raises(InviteError, match="no certificate fingerprint"):  # a code would travel unprotected
        parse_invite("pumpfl://10.0.0.5:8080/?code=K7QM-2XPA-9WD3")


FP = "AB" * 32


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "the invite is empty"),
        ("invite: ", "the invite is empty"),
        ("https://10.0.0.5:8080/?code=K7QM-2XPA-9WD3", "not a PumpFL invite (it must start with pumpfl://)"),
        ("10.0.0.5:8080", "not a PumpFL invite"),
        (f"pumpfl://10.0.0.5:8080/?fp={FP}", "no join code"),
        (f"pumpfl://10.0.0.5:8080/?code=&fp={FP}", "no join code"),
        ("pumpfl://10.0.0.5:8080/?code=K7QM-2XPA-9WD3&fp=" + "AB" * 31 + "A", "not 64 hexadecimal"),
        ("pumpfl://10.0.0.5:8080/?code=K7QM-2XPA-9WD3&fp=" + "GG" * 32, "not 64 hexadecimal"),
        ("pumpfl://10.0.0.5:8080/?code=K7QM-2XPA-9WD3&fp=", "not 64 hexadecimal"),
        (f"pumpfl://10.0.0.5:8080/?code=K7QM-2XPA&fp={FP}", "join code is wrong"),
        (f"pumpfl://10.0.0.5:99999/?code=K7QM-2XPA-9WD3&fp={FP}", "out of range"),
        (f"pumpfl://999.0.0.5:8080/?code=K7QM-2XPA-9WD3&fp={FP}", "not a valid IPv4"),
        (f"pumpfl://[::1:8080/?code=K7QM-2XPA-9WD3&fp={FP}", "unbalanced brackets"),
        (f"pumpfl://10.0.0.5:8080/join?code=K7QM-2XPA-9WD3&fp={FP}", "extra text"),
        (f"pumpfl://10.0.0.5:8080/?code=K7QM-2XPA-9WD3&code=K7QM-2XPA-9WD4&fp={FP}", "more than once"),
        (f"pumpfl://10.0.0.5:8080/?code=K7QM-2XPA-9WD3 &fp={FP}", "contains a space"),
    ],
)
def test_malformed_invites_are_refused(text, fragment):
    with pytest.raises(InviteError) as info:
        parse_invite(text)
    assert fragment in str(info.value)
    assert isinstance(info.value, AddressError) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pumpfl://10.0.0.5:8080/", True),
        ("  PUMPFL://host", True),
        ("invite: pumpfl://host:8080/?code=x", True),
        ("10.0.0.5:8080", False),
        ("http://10.0.0.5:8080", False),
        ("", False),
    ],
)
def test_looks_like_invite(text, expected):
    assert looks_like_invite(text) is expected


def test_one_trust_rule_invite_then_pinned_then_first_use(cert_and_key, other_cert_and_key, tmp_path):
    cert, other = cert_and_key[0], other_cert_and_key[0]
    here = ServerAddress("192.168.1.100", 8080)
    store = KnownServers(tmp_path / "known.json")

    first = judge_certificate(cert, here, None, store)
    assert (first.basis, first.matches, first.expected) == ("first_use", True, None)
    assert first.actual == fingerprint(cert)
    store.pin(here, first.actual)
    assert judge_certificate(cert, here, None, store) == Trust("pinned", True, fingerprint(cert), fingerprint(cert))
    changed = judge_certificate(other, here, None, store)
    assert (changed.basis, changed.matches, changed.expected) == ("pinned", False, fingerprint(cert))

    # An invite's fingerprint outranks what was pinned, in either direction.
    invited = judge_certificate(other, here, fingerprint(other).lower().replace(":", ""), store)
    assert (invited.basis, invited.matches) == ("invite", True)
    assert judge_certificate(cert, here, fingerprint(other), store).matches is False
    with pytest.raises(FingerprintMismatch):
        judge_certificate(cert, here, "not-a-fingerprint", store)
    assert judge_certificate(cert, here, None, None).basis == "first_use"  # nowhere to remember it
