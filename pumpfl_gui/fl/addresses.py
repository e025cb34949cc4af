"""Server addresses and ports: parse what a person types, check a port before serving (fl layer).

Pure parsing never touches the network: Flower's client kills the whole process on an address it
cannot parse, so every address is checked here first and only a `ServerAddress` reaches Flower.
Imports the standard library and ``pumpfl_gui.core.errors`` only; no Qt.
"""

from __future__ import annotations

import errno
import ipaddress
import re
import socket
import sys
import threading
from dataclasses import dataclass

from pumpfl_gui.core.errors import UserError

EXAMPLE = "192.168.1.100:8080"
_SCHEMES = ("http://", "https://", "grpc://", "grpcs://", "tcp://")
_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_HOSTNAME_CHARS = re.compile(r"^[A-Za-z0-9.-]+$")
_MAX_HOSTNAME = 253


class AddressError(UserError):
    """A server address that cannot be used as typed, or a name that does not resolve."""


class PortInUseError(UserError):
    """The port the server should listen on is taken (or not allowed for this user). The
    message suits any front end; ``free_port`` is one to suggest (the CLI says ``--port N``)."""

    def __init__(self, message: str, free_port: int | None = None) -> None:
        super().__init__(message)
        self.free_port = free_port


@dataclass(frozen=True)
class ServerAddress:
    """A checked host (name, IPv4 or IPv6 without brackets) and port."""

    host: str
    port: int

    @property
    def is_ipv6(self) -> bool:
        return ":" in self.host

    @property
    def target(self) -> str:
        """The ``host:port`` form gRPC expects, with IPv6 hosts in brackets."""
        host = f"[{self.host}]" if self.is_ipv6 else self.host
        return f"{host}:{self.port}"

    def __str__(self) -> str:
        return self.target


def parse_server_address(text: str, default_port: int = 8080) -> ServerAddress:
    """Turn what a person typed or pasted into a `ServerAddress`, or raise `AddressError`.

    Accepts ``host``, ``host:port``, IPv4, ``[v6]:port``, ``[v6]``, bare ``v6`` (which then
    takes the default port), tunnel and VPN names, a pasted ``http://``-style prefix and a
    trailing ``/``. Never resolves names.
    """
    if not 1 <= default_port <= 65535:
        raise ValueError(f"default_port must be 1..65535, got {default_port}")
    raw = (text or "").strip()
    if not raw:
        raise AddressError(f"no server address given; type the server's address, e.g. {EXAMPLE}")
    if any(ch.isspace() for ch in raw):
        raise AddressError(f"server address '{raw}' contains a space; type it without spaces, e.g. {EXAMPLE}")

    rest = _strip_scheme(raw)
    host_part, port_part = _split_host_port(raw, rest)
    port = default_port if port_part is None else _parse_port(raw, port_part)
    return ServerAddress(_check_host(raw, host_part), port)


def _strip_scheme(raw: str) -> str:
    lowered = raw.lower()
    for scheme in _SCHEMES:
        if lowered.startswith(scheme):
            rest = raw[len(scheme) :]
            break
    else:
        if "://" in raw:
            scheme = raw.split("://", 1)[0]
            raise AddressError(
                f"server address '{raw}' starts with '{scheme}://', which PumpFL does not use; "
                f"type just the server's host and port, e.g. {EXAMPLE}"
            )
        rest = raw
    if rest.endswith("/"):
        rest = rest[:-1]
    if "/" in rest or "?" in rest or "#" in rest:
        raise AddressError(
            f"server address '{raw}' has something after the host and port; type just the host and port, e.g. {EXAMPLE}"
        )
    if "@" in rest:
        raise AddressError(f"server address '{raw}' contains '@'; type just the server's host and port, e.g. {EXAMPLE}")
    return rest


def _split_host_port(raw: str, rest: str) -> tuple[str, str | None]:
    """Split into host and port text (port None when absent); brackets removed from IPv6."""
    if rest.startswith("["):
        close = rest.find("]")
        if close < 0 or rest.count("[") != 1 or rest.count("]") != 1:
            raise AddressError(
                f"server address '{raw}' has unbalanced brackets; "
                "write an IPv6 address as [address]:port, e.g. [fd7a:115c::1]:8080"
            )
        host, after = rest[1:close], rest[close + 1 :]
        if not host:
            raise AddressError(f"server address '{raw}' has nothing between the brackets; type e.g. [::1]:8080")
        _check_ipv6(raw, host)
        if not after:
            return host, None
        if not after.startswith(":"):
            raise AddressError(
                f"server address '{raw}' has '{after}' after the closing bracket; "
                "type a colon and the port after it, e.g. [::1]:8080"
            )
        return host, after[1:]
    if "[" in rest or "]" in rest:
        raise AddressError(
            f"server address '{raw}' has unbalanced brackets; write an IPv6 address as [address]:port, e.g. [fd7a:115c::1]:8080"
        )
    colons = rest.count(":")
    if colons == 0:
        return rest, None
    if colons == 1:
        host, port = rest.split(":")
        if not host:
            raise AddressError(f"server address '{raw}' has a port but no host; type the host before the colon, e.g. {EXAMPLE}")
        return host, port
    # Several colons without brackets: only a bare IPv6 address (default port) makes sense.
    if _is_ipv6(rest):
        _check_ipv6(raw, rest)
        return rest, None
    raise AddressError(
        f"server address '{raw}' has more than one ':'; type host:port, e.g. {EXAMPLE} "
        "(put an IPv6 address in brackets, e.g. [::1]:8080)"
    )


def _parse_port(raw: str, text: str) -> int:
    if not text:
        raise AddressError(f"server address '{raw}' ends with ':' but no port; type the port after it, e.g. {EXAMPLE}")
    if not text.isascii() or not text.isdigit():
        raise AddressError(f"port '{text}' in '{raw}' is not a number; type a port between 1 and 65535, e.g. {EXAMPLE}")
    port = int(text)
    if not 1 <= port <= 65535:
        raise AddressError(f"port {port} in '{raw}' is out of range; type a port between 1 and 65535, e.g. {EXAMPLE}")
    return port


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _check_ipv6(raw: str, host: str) -> None:
    if "%" in host:
        raise AddressError(
            f"server address '{raw}' names a network interface ('%...'); "
            "use the server's global IPv6 address, its IPv4 address or its name instead"
        )
    if not _is_ipv6(host):
        raise AddressError(
            f"'{host}' in '{raw}' is not a valid IPv6 address; check it, or use the server's IPv4 address or name, e.g. {EXAMPLE}"
        )


def _check_host(raw: str, host: str) -> str:
    """Return the host in a canonical form (IPv6 compressed, names lower-case) or raise."""
    if _is_ipv6(host):
        return ipaddress.IPv6Address(host).compressed
    name = host[:-1] if host.endswith(".") and len(host) > 1 else host
    if not _HOSTNAME_CHARS.match(name):
        bad = next(ch for ch in name if not (ch.isascii() and (ch.isalnum() or ch in ".-")))
        raise AddressError(
            f"'{host}' cannot be a server name because it contains '{bad}'; "
            "use only letters, digits, hyphens and dots, or type the server's IP address"
        )
    labels = name.split(".")
    if labels[-1].isdigit():
        # RFC 1123: a name whose last part is a number is meant as an IPv4 address.
        try:
            return str(ipaddress.IPv4Address(name))
        except ValueError:
            raise AddressError(
                f"'{host}' is not a valid IPv4 address; type four numbers from 0 to 255 separated by dots, e.g. {EXAMPLE}"
            ) from None
    if len(name) > _MAX_HOSTNAME:
        raise AddressError(f"server name '{host[:40]}...' is longer than {_MAX_HOSTNAME} characters; check what was pasted")
    for label in labels:
        if not label:
            raise AddressError(
                f"server name '{host}' has an empty part (two dots in a row or a dot at the start); check the spelling"
            )
        if len(label) > 63:
            raise AddressError(f"server name '{host}' has a part longer than 63 characters; check what was pasted")
        if not _LABEL.match(label):
            raise AddressError(f"server name '{host}' has a part that starts or ends with a hyphen; check the spelling")
    return name.lower()


# --- ports -------------------------------------------------------------------------------------


def _bind_error(port: int, host: str) -> int | None:
    """Try to bind ``host:port``; return the errno on failure, None when the port is free."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        if sys.platform.startswith("linux"):
            # Linux refuses SO_REUSEADDR binds over a listening socket, so this hides no server;
            # without it, connections in TIME_WAIT from a server that just stopped (gRPC sets
            # SO_REUSEADDR) would make a free port look busy for a minute.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        elif sys.platform == "win32":
            # On Windows SO_REUSEADDR would let us bind over a listener; ask for exclusivity.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1)  # type: ignore[attr-defined]
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc.errno or errno.EADDRINUSE
    return None


def find_free_port(start: int, host: str = "0.0.0.0", tries: int = 50) -> int | None:
    """Return the first port from ``start`` on (at most ``tries`` ports) that ``host`` can bind."""
    for port in range(max(start, 1), min(start + tries, 65536)):
        if _bind_error(port, host) is None:
            return port
    return None


def check_port_free(port: int, host: str = "0.0.0.0") -> None:
    """Raise `PortInUseError` (or `AddressError`) unless a server could listen on ``host:port``."""
    if not 1 <= port <= 65535:
        raise PortInUseError(f"port {port} is out of range; choose a port between 1 and 65535, e.g. 8080", 8080)
    code = _bind_error(port, host)
    if code is None:
        return
    if code in (errno.EACCES, errno.EPERM):
        raise PortInUseError(
            f"port {port} is reserved for administrators on this computer; choose a port from 1024 up, e.g. 8080", 8080
        )
    if code == errno.EADDRNOTAVAIL:
        raise AddressError(f"this computer has no network address {host}; use --host 0.0.0.0 to listen on all of its networks")
    suggestion = find_free_port(port + 1, host) if port < 65535 else None
    hint = f"choose another port, e.g. {suggestion}" if suggestion else "choose another port"
    raise PortInUseError(f"port {port} is already in use by another program; stop that program or {hint}", suggestion)


# --- name resolution ---------------------------------------------------------------------------


def resolve(address: ServerAddress, timeout: float = 5.0) -> list[str]:
    """Resolve the address's host to IP addresses (deduplicated, resolver order).

    The lookup runs in a daemon thread so a hanging resolver cannot hold the caller (or the
    process at exit) longer than ``timeout`` seconds.
    """
    try:
        return [str(ipaddress.ip_address(address.host))]
    except ValueError:
        pass
    outcome: dict[str, object] = {}

    def lookup() -> None:
        try:
            outcome["infos"] = socket.getaddrinfo(address.host, address.port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=lookup, name=f"resolve {address.host}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise AddressError(
            f"cannot find server '{address.host}' (looking up the name took longer than {timeout:g} s); "
            "check the network connection or use its IP address"
        )
    infos = outcome.get("infos")
    if not infos:
        raise AddressError(
            f"cannot find server '{address.host}' (name does not resolve); check the spelling or use its IP address"
        )
    ips: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:  # type: ignore[union-attr]
        ip = str(sockaddr[0])
        if ip not in ips:
            ips.append(ip)
    return ips


@dataclass(frozen=True)
class LocalAddress:
    interface: str
    ip: str
    kind: str  # "LAN" | "VPN" | "loopback" | "public"


_TAILSCALE = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT range Tailscale uses
_VPN_INTERFACES = ("tailscale", "zt", "utun", "wg", "tun", "ppp")


def local_addresses() -> list[LocalAddress]:
    """This machine's IPv4 and global IPv6 addresses on interfaces that are up, with their kind."""
    import psutil

    stats = psutil.net_if_stats()
    found = []
    for name, addrs in psutil.net_if_addrs().items():
        if name in stats and not stats[name].isup:
            continue
        for a in addrs:
            if a.family not in (socket.AF_INET, socket.AF_INET6):
                continue
            try:
                ip = ipaddress.ip_address(a.address.split("%")[0])
            except ValueError:
                continue
            if ip.is_link_local:
                continue
            if ip.is_loopback:
                kind = "loopback"
            elif ip in _TAILSCALE or name.lower().startswith(_VPN_INTERFACES):
                kind = "VPN"
            elif ip.is_private:
                kind = "LAN"
            else:
                kind = "public"
            found.append(LocalAddress(name, str(ip), kind))
    order = {"LAN": 0, "VPN": 1, "public": 2, "loopback": 3}
    return sorted(found, key=lambda x: (order[x.kind], x.ip.count(":") > 0, x.interface))


def primary_address(bind_host: str = "0.0.0.0") -> str:
    """The address to put in an invite: the bind address if specific, else the best local one.

    A LAN IPv4 address first, then VPN, then public, then loopback. Sites on other networks
    need a tunnel or VPN address instead, given with ``--advertise``.
    """
    if bind_host not in ("0.0.0.0", "::", ""):
        return bind_host
    addresses = local_addresses()
    return addresses[0].ip if addresses else "127.0.0.1"
