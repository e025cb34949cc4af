"""The "Test connection" steps against real listeners on loopback (127.0.0.1 / ::1 only)."""

import contextlib
import os
import socket
import ssl
import stat
import threading

import pytest

from pumpfl_gui.fl.addresses import ServerAddress
from pumpfl_gui.fl.diagnostics import (
    STEP_JOIN,
    STEP_NAME,
    STEP_PING,
    STEP_TLS,
    CheckResult,
    ping_round_trip_ms,
    run_checks,
    step_titles,
    summary,
)
from pumpfl_gui.fl.security import KnownServers, fingerprint, make_certificate, short_fingerprint

JOIN_CODE = "K7QM-2XPA-9WD3"


@pytest.fixture(scope="module")
def cert_and_key():
    return make_certificate(["127.0.0.1"])


@pytest.fixture(scope="module")
def other_cert():
    return make_certificate(["127.0.0.1"])[0]


# --- loopback listeners ------------------------------------------------------------------------


@contextlib.contextmanager
def listener(host="127.0.0.1", handle=None):
    """A threaded TCP listener; ``handle(conn)`` serves each connection (default: close at once)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    server = socket.socket(family, socket.SOCK_STREAM)
    server.bind((host, 0))
    server.listen(8)
    server.settimeout(0.05)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                if handle is not None:
                    with contextlib.suppress(OSError):
                        handle(conn)

    thread = threading.Thread(target=serve, name="test listener")
    thread.start()
    try:
        yield ServerAddress(host, server.getsockname()[1])
    finally:
        stop.set()
        thread.join(5)
        server.close()


@contextlib.contextmanager
def tls_listener(cert_pem, key_pem, tmp_path):
    (tmp_path / "server.crt").write_bytes(cert_pem)
    (tmp_path / "server.key").write_bytes(key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "server.crt", tmp_path / "server.key")

    def handshake(conn):
        # The TCP step's bare connection fails the handshake; the listener just goes on.
        with context.wrap_socket(conn, server_side=True):
            pass

    with listener(handle=handshake) as address:
        yield address


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def ipv6_loopback_works() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def accepting_join_probe(address, root_cert, join_code):
    """A stand-in server answer: accepts only JOIN_CODE, and records what it was handed."""
    accepting_join_probe.calls.append((address, root_cert, join_code))
    if join_code == JOIN_CODE:
        return CheckResult(STEP_JOIN, "ok", "the server accepted the join code")
    return CheckResult(STEP_JOIN, "failed", "the server refused the join code", "Type the code the server app shows.")


def by_step(results):
    return {r.step: r for r in results}


@pytest.fixture(autouse=True)
def reset_probe_calls():
    accepting_join_probe.calls = []


# --- name --------------------------------------------------------------------------------------


def test_ip_literal_needs_no_lookup():
    with listener() as address:
        results = run_checks(address, insecure=True, fingerprint=None, join_code="")
    assert results[0].step == STEP_NAME and results[0].status == "ok"
    assert "no lookup needed" in results[0].detail


def test_localhost_resolves():
    with listener() as address:
        results = run_checks(ServerAddress("localhost", address.port), insecure=True, fingerprint=None, join_code="")
    name = results[0]
    assert name.status == "ok"
    assert "127.0.0.1" in name.detail or "::1" in name.detail


def test_unresolvable_name_fails_and_skips_everything_after():
    address = ServerAddress("no-such-host.invalid", 8080)
    results = run_checks(address, insecure=False, fingerprint=None, join_code=JOIN_CODE, probe_join=accepting_join_probe)
    assert [r.step for r in results] == step_titles(address)
    assert results[0].status == "failed"
    assert "no-such-host.invalid" in results[0].detail
    assert "spelling" in results[0].fix and "IP address" in results[0].fix
    assert all(r.status == "skipped" and "did not resolve" in r.detail for r in results[1:])
    assert accepting_join_probe.calls == []
    assert summary(results)[0] == "failed"


# --- ping --------------------------------------------------------------------------------------


def test_ping_loopback_is_never_a_failure():
    # The system may lack ping or forbid it; either way it is only a warning.
    with listener() as address:
        results = run_checks(address, insecure=True, fingerprint=None, join_code="")
    ping = by_step(results)[STEP_PING]
    assert ping.status in ("ok", "warning")
    if ping.status == "warning":
        assert ping.fix


def test_missing_ping_is_a_warning(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no ping program anywhere
    with listener() as address:
        results = run_checks(address, insecure=True, fingerprint=None, join_code="")
    ping = by_step(results)[STEP_PING]
    assert ping.status == "warning"
    assert ping.detail == "ping is not available on this computer"
    assert by_step(results)[f"TCP port {address.port}"].status == "ok"


def _fake_ping(folder, script):
    """A stand-in ``ping`` program on PATH that prints and exits as a real one would."""
    path = folder / "ping"
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(folder)


def test_ping_reply_time_is_reported(monkeypatch, tmp_path):
    monkeypatch.setenv(
        "PATH",
        _fake_ping(
            tmp_path,
            (
                'echo "PING 127.0.0.1 (127.0.0.1) 56(84) bytes of data."\n'
                'echo "64 bytes from 127.0.0.1: icmp_seq=1 ttl=64 time=3.21 ms"\n'
                "exit 0"
            ),
        )
        + os.pathsep
        + os.environ.get("PATH", ""),
    )
    with listener() as address:
        ping = by_step(run_checks(address, insecure=True, fingerprint=None, join_code=""))[STEP_PING]
    assert ping == CheckResult(STEP_PING, "ok", "127.0.0.1 answered in 3 ms")


def test_ping_without_reply_is_a_warning(monkeypatch, tmp_path):
    monkeypatch.setenv(
        "PATH", _fake_ping(tmp_path, ('echo "1 packets transmitted, 0 received, 100% packet loss, time 0ms"\nexit 1'))
    )
    with listener() as address:
        results = run_checks(address, insecure=True, fingerprint=None, join_code="")
    ping = by_step(results)[STEP_PING]
    assert ping.status == "warning"
    assert "no reply to ping" in ping.detail and "the next step tells" in ping.detail


def test_ping_without_permission_is_a_warning(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", _fake_ping(tmp_path, 'echo "ping: socket: Operation not permitted" >&2\nexit 2'))
    with listener() as address:
        ping = by_step(run_checks(address, insecure=True, fingerprint=None, join_code=""))[STEP_PING]
    assert ping.status == "warning"
    assert "does not let this user send ping" in ping.detail


@pytest.mark.slow
def test_ping_that_hangs_is_cut_off_as_no_reply(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", _fake_ping(tmp_path, "exec sleep 30") + os.pathsep + os.environ.get("PATH", ""))
    with listener() as address:
        ping = by_step(run_checks(address, insecure=True, fingerprint=None, join_code="", timeout=0.5))[STEP_PING]
    assert ping.status == "warning" and "no reply" in ping.detail


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("64 bytes from 127.0.0.1: icmp_seq=1 ttl=64 time=0.045 ms", 0.045),
        ("Reply from 127.0.0.1: bytes=32 time<1ms TTL=128", 1.0),
        ("Antwort von 192.168.1.100: Bytes=32 Zeit=3ms TTL=64", 3.0),
        ("Réponse de ::1 : temps<1ms", 1.0),
        ("64 bytes from ::1: icmp_seq=1 ttl=64 time=0,12 ms", 0.12),
        ("1 packets transmitted, 0 received, 100% packet loss, time 0ms", None),
    ],
)
def test_ping_round_trip_is_read_from_any_platform(output, expected):
    assert ping_round_trip_ms(output) == expected


# --- TCP ---------------------------------------------------------------------------------------


def test_closed_port_fails_tcp_and_skips_tls_and_join():
    port = closed_port()
    address = ServerAddress("127.0.0.1", port)
    results = run_checks(address, insecure=False, fingerprint=None, join_code=JOIN_CODE, probe_join=accepting_join_probe)
    steps = by_step(results)
    tcp = steps[f"TCP port {port}"]
    assert tcp.status == "failed"
    assert "server" in tcp.fix and str(port) in tcp.fix
    assert steps[STEP_TLS].status == "skipped" and steps[STEP_JOIN].status == "skipped"
    assert str(port) in steps[STEP_TLS].detail
    assert accepting_join_probe.calls == []
    status, sentence = summary(results)
    assert status == "failed" and f"TCP port {port}" in sentence


def test_port_that_does_not_answer_points_at_firewall_and_vpn():
    # A listener that never accepts, with its backlog full, makes the kernel drop new
    # connection attempts: on loopback this is what a firewall that drops packets looks like.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port = server.getsockname()[1]
        held = []
        try:
            for _ in range(8):
                try:
                    held.append(socket.create_connection(("127.0.0.1", port), timeout=0.2))
                except TimeoutError:
                    break
            results = run_checks(ServerAddress("127.0.0.1", port), insecure=True, fingerprint=None, join_code="", timeout=0.5)
        finally:
            for conn in held:
                conn.close()
    tcp = by_step(results)[f"TCP port {port}"]
    assert tcp.status == "failed"
    assert "firewall" in tcp.fix and "VPN" in tcp.fix and str(port) in tcp.fix
    assert by_step(results)[STEP_TLS].status == "skipped"


def test_plain_listener_in_insecure_mode():
    with listener() as address:
        results = run_checks(address, insecure=True, fingerprint=None, join_code="", probe_join=accepting_join_probe)
    steps = by_step(results)
    tcp = steps[f"TCP port {address.port}"]
    assert tcp.status == "ok" and "127.0.0.1" in tcp.detail and " ms" in tcp.detail
    assert steps[STEP_TLS] == CheckResult(STEP_TLS, "skipped", "insecure mode: no encryption")
    # The join check still runs, without a certificate.
    assert accepting_join_probe.calls == [(address, None, "")]
    assert steps[STEP_JOIN].status == "failed"


def test_ipv6_loopback():
    with listener("::1") as address:
        results = run_checks(address, insecure=True, fingerprint=None, join_code="")
    steps = by_step(results)
    assert steps[STEP_NAME].status == "ok"
    assert steps[STEP_PING].status in ("ok", "warning")
    assert steps[f"TCP port {address.port}"].status == "ok"


# --- TLS and fingerprint -----------------------------------------------------------------------


def test_tls_with_the_right_fingerprint(cert_and_key, tmp_path):
    cert_pem, key_pem = cert_and_key
    with tls_listener(cert_pem, key_pem, tmp_path) as address:
        results = run_checks(
            address,
            insecure=False,
            fingerprint=fingerprint(cert_pem).replace(":", "").lower(),
            join_code=JOIN_CODE,
            probe_join=accepting_join_probe,
        )
    steps = by_step(results)
    assert steps[STEP_TLS].status == "ok"
    assert "matches the invite" in steps[STEP_TLS].detail
    assert steps[STEP_JOIN].status == "ok"
    # The probe is handed the very certificate that was checked.
    [(probed, root_cert, code)] = accepting_join_probe.calls
    assert probed == address and code == JOIN_CODE and fingerprint(root_cert) == fingerprint(cert_pem)
    assert summary(results)[0] in ("ok", "warning")  # warning only when ping is unavailable


def test_tls_with_a_wrong_fingerprint_fails_and_skips_join(cert_and_key, other_cert, tmp_path):
    cert_pem, key_pem = cert_and_key
    with tls_listener(cert_pem, key_pem, tmp_path) as address:
        results = run_checks(
            address,
            insecure=False,
            fingerprint=fingerprint(other_cert),
            join_code=JOIN_CODE,
            probe_join=accepting_join_probe,
        )
    steps = by_step(results)
    tls = steps[STEP_TLS]
    assert tls.status == "failed"
    assert short_fingerprint(fingerprint(cert_pem)) in tls.detail
    assert short_fingerprint(fingerprint(other_cert)) in tls.detail
    assert "Do not connect" in tls.fix
    assert steps[STEP_JOIN].status == "skipped"
    assert accepting_join_probe.calls == []


def test_malformed_fingerprint_asks_for_the_invite_again(cert_and_key, tmp_path):
    cert_pem, key_pem = cert_and_key
    with tls_listener(cert_pem, key_pem, tmp_path) as address:
        results = run_checks(address, insecure=False, fingerprint="AB:CD", join_code=JOIN_CODE)
    tls = by_step(results)[STEP_TLS]
    assert tls.status == "failed" and "invite" in tls.fix


def test_first_connection_names_the_certificate_to_be_trusted(cert_and_key, tmp_path):
    cert_pem, key_pem = cert_and_key
    store = KnownServers(tmp_path / "known_servers.json")
    with tls_listener(cert_pem, key_pem, tmp_path) as address:
        results = run_checks(address, insecure=False, fingerprint=None, join_code=JOIN_CODE, known_servers=store)
    tls = by_step(results)[STEP_TLS]
    assert tls.status == "ok"
    assert "first connection" in tls.detail and short_fingerprint(fingerprint(cert_pem)) in tls.detail
    assert store.get(address) is None  # a test only looks; trusting is the connection's business
    assert by_step(results)[STEP_JOIN] == CheckResult(STEP_JOIN, "skipped", "not checked")


def test_known_server_with_the_same_certificate(cert_and_key, tmp_path):
    cert_pem, key_pem = cert_and_key
    store = KnownServers(tmp_path / "known_servers.json")
    with tls_listener(cert_pem, key_pem, tmp_path) as address:
        store.pin(address, fingerprint(cert_pem))
        results = run_checks(address, insecure=False, fingerprint=None, join_code=JOIN_CODE, known_servers=store)
    tls = by_step(results)[STEP_TLS]
    assert tls.status == "ok" and "trusted before" in tls.detail


def test_known_server_with_another_certificate_fails(cert_and_key, other_cert, tmp_path):
    cert_pem, key_pem = cert_and_key
    store = KnownServers(tmp_path / "known_servers.json")
    with tls_listener(cert_pem, key_pem, tmp_path) as address:
        store.pin(address, fingerprint(other_cert))
        results = run_checks(
            address,
            insecure=False,
            fingerprint=None,
            join_code=JOIN_CODE,
            known_servers=store,
            probe_join=accepting_join_probe,
        )
    steps = by_step(results)
    assert steps[STEP_TLS].status == "failed"
    assert "trusted before" in steps[STEP_TLS].detail and "Do not connect" in steps[STEP_TLS].fix
    assert steps[STEP_JOIN].status == "skipped" and accepting_join_probe.calls == []


def test_damaged_known_servers_file_is_explained(cert_and_key, tmp_path):
    cert_pem, key_pem = cert_and_key
    path = tmp_path / "known_servers.json"
    path.write_text("{not json")
    with tls_listener(cert_pem, key_pem, tmp_path) as address:
        results = run_checks(address, insecure=False, fingerprint=None, join_code=JOIN_CODE, known_servers=KnownServers(path))
    tls = by_step(results)[STEP_TLS]
    assert tls.status == "failed" and str(path) in tls.fix


@pytest.mark.parametrize("reply", [b"", b"HTTP/1.1 400 Bad Request\r\n\r\n"])
def test_plaintext_server_when_tls_is_expected(cert_and_key, reply):
    def answer_in_plain(conn):
        conn.recv(1024)
        if reply:
            conn.sendall(reply)

    with listener(handle=answer_in_plain) as address:
        results = run_checks(
            address,
            insecure=False,
            fingerprint=fingerprint(cert_and_key[0]),
            join_code=JOIN_CODE,
            probe_join=accepting_join_probe,
        )
    steps = by_step(results)
    assert steps[f"TCP port {address.port}"].status == "ok"
    tls = steps[STEP_TLS]
    assert tls.status == "failed"
    assert "without encryption" in tls.detail
    assert "--insecure" in tls.fix and "Insecure" in tls.fix and "trust this network" in tls.fix
    assert steps[STEP_JOIN].status == "skipped"


def test_silent_server_when_tls_is_expected(cert_and_key):
    stop = threading.Event()
    with listener(handle=lambda conn: stop.wait(5)) as address:
        try:
            results = run_checks(address, insecure=False, fingerprint=fingerprint(cert_and_key[0]), join_code="", timeout=0.5)
        finally:
            stop.set()
    tls = by_step(results)[STEP_TLS]
    assert tls.status == "failed" and "did not answer" in tls.detail and "PumpFL server" in tls.fix


# --- reporting, stopping, summary --------------------------------------------------------------


def test_on_result_receives_each_result_in_order(cert_and_key, tmp_path):
    cert_pem, key_pem = cert_and_key
    seen = []
    with tls_listener(cert_pem, key_pem, tmp_path) as address:
        results = run_checks(
            address,
            insecure=False,
            fingerprint=fingerprint(cert_pem),
            join_code=JOIN_CODE,
            probe_join=accepting_join_probe,
            on_result=seen.append,
        )
    assert seen == results
    assert [r.step for r in results] == step_titles(address)
    assert [r.step for r in results] == [STEP_NAME, STEP_PING, f"TCP port {address.port}", STEP_TLS, STEP_JOIN]


def test_should_stop_ends_the_check_early():
    seen = []
    with listener() as address:
        results = run_checks(
            address,
            insecure=True,
            fingerprint=None,
            join_code="",
            probe_join=accepting_join_probe,
            on_result=seen.append,
            should_stop=lambda: len(seen) >= 2,
        )
    assert [r.step for r in results] == [STEP_NAME, STEP_PING]
    assert seen == results
    assert accepting_join_probe.calls == []
    assert summary(results) == ("warning", "The check was stopped before it finished.")


def test_should_stop_before_anything_runs():
    results = run_checks(
        ServerAddress("127.0.0.1", closed_port()),
        insecure=True,
        fingerprint=None,
        join_code="",
        should_stop=lambda: True,
    )
    assert results == []


def test_summary():
    ok = [CheckResult(step, "ok", "fine") for step in ("a", "b", "c", "d", "e")]
    assert summary(ok)[0] == "ok"
    with_skip = ok[:4] + [CheckResult(STEP_JOIN, "skipped", "not checked")]
    status, sentence = summary(with_skip)
    assert status == "ok" and STEP_JOIN in sentence
    with_warning = [CheckResult(STEP_PING, "warning", "no reply", "nothing to do"), *ok[1:]]
    status, sentence = summary(with_warning)
    assert status == "warning" and STEP_PING in sentence
    failed = [*ok[:2], CheckResult("TCP port 8080", "failed", "refused", "start the server"), *ok[3:]]
    status, sentence = summary(failed)
    assert status == "failed" and "TCP port 8080" in sentence
    assert sentence.count(".") == 1 and sentence.endswith(".")
