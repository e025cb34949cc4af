"""Server addresses and ports: parsing what people type, and real sockets on loopback."""

import re
import socket
import time
from concurrent import futures

import grpc
import pytest

from pumpfl_gui.core.errors import UserError
from pumpfl_gui.fl.addresses import (
    AddressError,
    PortInUseError,
    ServerAddress,
    check_port_free,
    find_free_port,
    parse_server_address,
    resolve,
)

GOOD = [
    ("localhost", "localhost", 8080),
    ("localhost:9000", "localhost", 9000),
    ("192.168.1.100", "192.168.1.100", 8080),
    ("192.168.1.100:8080", "192.168.1.100", 8080),
    ("  192.168.1.100:8080 \n", "192.168.1.100", 8080),
    ("[::1]:8080", "::1", 8080),
    ("[::1]", "::1", 8080),
    ("::1", "::1", 8080),
    ("[FD7A:115C:A1E0:0:0:0:0:1]:9000", "fd7a:115c:a1e0::1", 9000),
    ("fd7a:115c:a1e0::1", "fd7a:115c:a1e0::1", 8080),
    ("[::ffff:192.168.1.1]:8080", "::ffff:c0a8:101", 8080),
    ("2.tcp.ngrok.io:15432", "2.tcp.ngrok.io", 15432),
    ("2.tcp.example.io:15432", "2.tcp.example.io", 15432),
    ("pump-server.tail1234.ts.net", "pump-server.tail1234.ts.net", 8080),
    ("pump-server.tail1234.ts.net:8080", "pump-server.tail1234.ts.net", 8080),
    ("100.101.102.103", "100.101.102.103", 8080),
    ("10.147.17.5:8080", "10.147.17.5", 8080),
    ("my-vm.eastus.cloudapp.azure.com:443", "my-vm.eastus.cloudapp.azure.com", 443),
    ("http://192.168.1.100:8080/", "192.168.1.100", 8080),
    ("https://pump.example.com", "pump.example.com", 8080),
    ("grpc://10.0.0.5:9092", "10.0.0.5", 9092),
    ("TCP://2.tcp.ngrok.io:15432/", "2.tcp.ngrok.io", 15432),
    ("http://[::1]:8081/", "::1", 8081),
    ("Pump-Server.LOCAL:8081", "pump-server.local", 8081),
    ("example.com.", "example.com", 8080),
    ("host:1", "host", 1),
    ("host:65535", "host", 65535),
    ("a" * 63 + ".com", "a" * 63 + ".com", 8080),
    ("site-3", "site-3", 8080),
    ("0.0.0.0:8080", "0.0.0.0", 8080),
]


@pytest.mark.parametrize(("text", "host", "port"), GOOD)
def test_good_addresses_parse(text, host, port):
    address = parse_server_address(text)
    assert address == ServerAddress(host, port)


def test_default_port_is_used_only_when_none_is_typed():
    assert parse_server_address("pump", default_port=9000).port == 9000
    assert parse_server_address("pump:8081", default_port=9000).port == 8081
    assert parse_server_address("[::1]", default_port=9000).port == 9000


def test_target_brackets_ipv6_for_grpc():
    assert parse_server_address("192.168.1.100").target == "192.168.1.100:8080"
    assert parse_server_address("::1").target == "[::1]:8080"
    assert str(parse_server_address("[fd7a::1]:9000")) == "[fd7a::1]:9000"
    assert str(parse_server_address("2.tcp.ngrok.io:15432")) == "2.tcp.ngrok.io:15432"


@pytest.mark.parametrize(("text", "host", "port"), GOOD)
def test_target_parses_back_to_the_same_address(text, host, port):
    address = parse_server_address(text)
    assert parse_server_address(address.target) == address


BAD = [
    ("", "no server address"),
    ("   ", "no server address"),
    ("192.168.1.100 :8080", "contains a space"),
    ("host:abc", "'abc' in 'host:abc' is not a number"),
    ("host:0", "port 0 in 'host:0' is out of range"),
    ("host:65536", "port 65536 in 'host:65536' is out of range"),
    ("host:", "no port"),
    (":8080", "no host"),
    ("pump_server:8080", "contains '_'"),
    ("pump!.local", "contains '!'"),
    ("pümp.local", "contains 'ü'"),
    ("host:8080:9", "more than one ':'"),
    ("[::1:8080", "unbalanced brackets"),
    ("::1]:8080", "unbalanced brackets"),
    ("[[::1]]:8080", "unbalanced brackets"),
    ("[::1]8080", "after the closing bracket"),
    ("[]:8080", "nothing between the brackets"),
    ("[zz::1]:8080", "not a valid IPv6 address"),
    ("[fe80::1%eth0]:8080", "network interface"),
    ("999.1.1.1", "'999.1.1.1' is not a valid IPv4 address"),
    ("192.168.1", "'192.168.1' is not a valid IPv4 address"),
    ("1.2.3.4.5:8080", "not a valid IPv4 address"),
    ("192.168.001.1", "not a valid IPv4 address"),
    ("a..b", "empty part"),
    (".pump", "empty part"),
    ("-pump.local", "hyphen"),
    ("pump-.local", "hyphen"),
    ("a" * 64 + ".com", "longer than 63"),
    (("a" * 60 + ".") * 5 + "com", "longer than 253"),
    ("ftp://host:21", "starts with 'ftp://'"),
    ("http://host:8080/path", "after the host and port"),
    ("host:8080?x=1", "after the host and port"),
    ("user@host:8080", "contains '@'"),
]


@pytest.mark.parametrize(("text", "fragment"), BAD)
def test_bad_addresses_are_refused_with_one_helpful_sentence(text, fragment):
    with pytest.raises(AddressError) as info:
        parse_server_address(text)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message
    # Every refusal says what to do about it.
    assert re.search(r"\b(type|use|check|write|copy)\b", message), message
    assert isinstance(info.value, UserError)


def test_parsing_never_needs_the_network():
    # A name that cannot resolve still parses: resolving is a separate, explicit step.
    assert parse_server_address("no-such-host.invalid:8080").host == "no-such-host.invalid"


# --- ports -------------------------------------------------------------------------------------


@pytest.fixture
def listener():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock
    sock.close()


def test_port_in_use_names_a_free_alternative(listener):
    port = listener.getsockname()[1]
    with pytest.raises(PortInUseError) as info:
        check_port_free(port, host="127.0.0.1")
    message = str(info.value)
    assert message.startswith(f"port {port} is already in use by another program; stop that program or choose another port")
    suggested = int(re.search(r"e\.g\. (\d+)$", message).group(1))
    assert suggested > port and info.value.free_port == suggested
    assert "--port" not in message  # the app's people never type options; the CLI adds its own
    check_port_free(suggested, host="127.0.0.1")  # the suggestion really is free


def test_listener_on_loopback_blocks_all_interfaces(listener):
    port = listener.getsockname()[1]
    with pytest.raises(PortInUseError):
        check_port_free(port)  # default host 0.0.0.0


def test_listener_with_reuse_options_is_still_seen():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if hasattr(socket, "SO_REUSEPORT"):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        with pytest.raises(PortInUseError):
            check_port_free(sock.getsockname()[1], host="127.0.0.1")
    finally:
        sock.close()


def test_running_grpc_server_is_seen():
    # gRPC listens with SO_REUSEPORT by default, so a second gRPC server would bind the same
    # port without complaint; the check has to catch it first.
    executor = futures.ThreadPoolExecutor(max_workers=1)
    server = grpc.server(executor)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with pytest.raises(PortInUseError):
            check_port_free(port, host="127.0.0.1")
        with pytest.raises(PortInUseError):
            check_port_free(port)
    finally:
        server.stop(None).wait()
        executor.shutdown()


def test_port_is_free_again_after_the_listener_closes(listener):
    port = listener.getsockname()[1]
    listener.close()
    check_port_free(port, host="127.0.0.1")


def test_connections_left_in_time_wait_do_not_make_a_port_look_busy():
    # A server that just stopped (gRPC listens with SO_REUSEADDR) leaves its closed connections
    # in TIME_WAIT; restarting on the same port must not be refused.
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    accepted.close()  # the server side closes first, so it holds the TIME_WAIT
    server.close()
    time.sleep(0.1)
    client.close()
    time.sleep(0.1)
    check_port_free(port)


def test_out_of_range_port_is_refused():
    with pytest.raises(PortInUseError, match="between 1 and 65535"):
        check_port_free(70000)


def test_address_not_on_this_computer_is_explained():
    with pytest.raises(AddressError, match="this computer has no network address 192.0.2.1; use --host 0.0.0.0"):
        check_port_free(8080, host="192.0.2.1")


def test_find_free_port_skips_a_taken_port(listener):
    port = listener.getsockname()[1]
    found = find_free_port(port, host="127.0.0.1")
    assert found is not None and port < found < port + 50


def test_find_free_port_returns_start_when_free():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert find_free_port(port, host="127.0.0.1") == port


def test_find_free_port_gives_up(listener):
    port = listener.getsockname()[1]
    assert find_free_port(port, host="127.0.0.1", tries=1) is None
    assert find_free_port(65535, tries=0) is None


# --- name resolution ---------------------------------------------------------------------------


def test_resolve_localhost():
    ips = resolve(ServerAddress("localhost", 8080))
    assert ips and set(ips) & {"127.0.0.1", "::1"}
    assert len(ips) == len(set(ips))


def test_resolve_ip_needs_no_lookup():
    assert resolve(ServerAddress("192.0.2.7", 8080)) == ["192.0.2.7"]
    assert resolve(ServerAddress("fd7a::1", 8080)) == ["fd7a::1"]


def test_resolve_unknown_name_is_a_user_error():
    with pytest.raises(AddressError, match="cannot find server 'no-such-host.invalid'") as info:
        resolve(ServerAddress("no-such-host.invalid", 8080), timeout=10)
    assert "use its IP address" in str(info.value)


def test_local_addresses_are_classified_and_the_invite_address_is_one_of_them():
    from pumpfl_gui.fl.addresses import local_addresses, primary_address

    found = local_addresses()
    assert any(a.kind == "loopback" and a.ip == "127.0.0.1" for a in found)
    assert all(a.kind in {"LAN", "VPN", "public", "loopback"} for a in found)
    assert primary_address() in {a.ip for a in found}
    assert primary_address("127.0.0.1") == "127.0.0.1"  # a specific bind address is used as is
