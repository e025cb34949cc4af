"""Step-by-step connection check behind the client's "Test connection" button (fl layer; no Qt).

Each step (name, ping, TCP port, TLS and fingerprint, join code) gives a `CheckResult` that says
what was seen and, when something is wrong, what to do in plain words: plant engineers read it,
not programmers. Steps that depend on a failed one are reported as skipped, with the reason.
Imports the standard library and sibling ``fl`` modules only.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from pumpfl_gui.core.errors import UserError
from pumpfl_gui.fl.addresses import AddressError, ServerAddress, resolve
from pumpfl_gui.fl.security import (
    FingerprintMismatch,
    TlsError,
    fetch_certificate,
    judge_certificate,
    normalise_fingerprint,
    short_fingerprint,
)

log = logging.getLogger(__name__)

OK = "ok"
FAILED = "failed"
WARNING = "warning"
SKIPPED = "skipped"

STEP_NAME = "Name resolves"
STEP_PING = "Ping"
STEP_TLS = "Encryption (TLS) and fingerprint"
STEP_JOIN = "Join code"
STEP_COUNT = 5

PING_WAIT_S = 2  # how long ping itself waits for its one reply
_PING_TIME = re.compile(r"[=<]\s*(\d+(?:[.,]\d+)?)\s*ms\b", re.IGNORECASE)
_PING_DENIED = ("not permitted", "permission denied", "cap_net_raw", "access denied")
_WAITING_HINT = "the server app is running and shows 'Waiting for facilities'"
_TUNNEL_HINT = (
    "if the server is on another network (another site, at home), connect through the VPN or "
    "tunnel you share with it (Tailscale, ZeroTier, ngrok) and use the address it gives"
)


@dataclass(frozen=True)
class CheckResult:
    """One row of the connection check."""

    step: str  # short title, e.g. "TCP port 8080"
    status: str  # "ok" | "failed" | "warning" | "skipped"
    detail: str  # what was seen, e.g. "192.168.1.100 answered in 3 ms"
    fix: str = ""  # for failed/warning: what to do, in plain words


ProbeJoin = Callable[[ServerAddress, "bytes | None", str], CheckResult]


def tcp_step(port: int) -> str:
    return f"TCP port {port}"


def step_titles(address: ServerAddress) -> list[str]:
    """The titles of all steps in order, so a screen can lay out the rows before they run."""
    return [STEP_NAME, STEP_PING, tcp_step(address.port), STEP_TLS, STEP_JOIN]


def run_checks(
    address: ServerAddress,
    *,
    insecure: bool,
    fingerprint: str | None,
    join_code: str,
    known_servers=None,
    probe_join: ProbeJoin | None = None,
    on_result: Callable[[CheckResult], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    timeout: float = 3.0,
) -> list[CheckResult]:
    """Run every step against ``address`` and return their results in order.

    Each result goes to ``on_result`` as soon as it is known. ``should_stop`` is asked before
    each step; when it returns True the check ends there and returns what it has so far.
    ``known_servers`` is anything with ``get(address) -> fingerprint | None`` (a `KnownServers`).
    """
    results: list[CheckResult] = []

    def report(result: CheckResult) -> CheckResult:
        log.debug("connection check %s: %s (%s)", result.step, result.status, result.detail)
        results.append(result)
        if on_result is not None:
            on_result(result)
        return result

    def stopped() -> bool:
        return should_stop is not None and should_stop()

    def skip(steps, why: str) -> list[CheckResult]:
        """Report the remaining steps as skipped (unless asked to stop) and finish."""
        for step in steps:
            if stopped():
                break
            report(CheckResult(step, SKIPPED, why))
        return results

    if stopped():
        return results
    ips, name_result = _check_name(address, timeout)
    report(name_result)
    if not ips:
        return skip(step_titles(address)[1:], "not checked because the server's name did not resolve")

    if stopped():
        return results
    report(_check_ping(ips[0], timeout))

    if stopped():
        return results
    tcp = report(_check_tcp(address, timeout))
    if tcp.status == FAILED:
        return skip((STEP_TLS, STEP_JOIN), f"not checked because nothing answered on port {address.port}")

    if stopped():
        return results
    root_cert, tls = _check_tls(address, insecure, fingerprint, known_servers, timeout)
    report(tls)
    if tls.status == FAILED:
        return skip((STEP_JOIN,), "not checked because the encryption check failed")

    if stopped():
        return results
    report(_check_join(address, root_cert, join_code, probe_join, insecure))
    return results


def summary(results: list[CheckResult]) -> tuple[str, str]:
    """Overall status ("ok" / "warning" / "failed") and one sentence for the user."""
    failed = next((r for r in results if r.status == FAILED), None)
    if failed is not None:
        return FAILED, f"This computer cannot use the server yet: the step '{failed.step}' failed; follow the advice shown there."
    if len(results) < STEP_COUNT:
        return WARNING, "The check was stopped before it finished."
    warnings = [r.step for r in results if r.status == WARNING]
    skipped = [r.step for r in results if r.status == SKIPPED]
    if warnings:
        named = ", ".join(f"'{step}'" for step in warnings)
        return WARNING, f"The server can be reached, but read the note at {named}."
    if skipped:
        named = ", ".join(f"'{step}'" for step in skipped)
        return OK, f"The server can be reached; not checked: {named}."
    return OK, "Everything checked works: this computer can reach the server and join it."


# --- steps -------------------------------------------------------------------------------------


def _check_name(address: ServerAddress, timeout: float) -> tuple[list[str], CheckResult]:
    if _is_ip(address.host):
        return [address.host], CheckResult(STEP_NAME, OK, f"{address.host} is an IP address: no lookup needed")
    try:
        ips = resolve(address, timeout=timeout)
    except AddressError as exc:
        return [], CheckResult(
            STEP_NAME,
            FAILED,
            str(exc),
            "Check the spelling of the server's name, or type its IP address instead (the server app shows "
            "it, e.g. 192.168.1.100:8080); a VPN name (Tailscale, ZeroTier) is only found while the VPN is connected.",
        )
    shown = ", ".join(ips[:3]) + (" and more" if len(ips) > 3 else "")
    return ips, CheckResult(STEP_NAME, OK, f"{address.host} is {shown}")


def _ping_command(ip: str) -> list[str] | None:
    """The system's command for one ping to ``ip``, or None when no ping program is installed."""
    v6 = ":" in ip
    if sys.platform == "win32":
        program = shutil.which("ping")
        return [program, "-n", "1", "-w", str(PING_WAIT_S * 1000), ip] if program else None
    if sys.platform == "darwin":
        # macOS: -W counts milliseconds and only affects printing; -t bounds the whole run.
        if v6:
            program = shutil.which("ping6") or shutil.which("ping")
            return [program, "-c", "1", ip] if program else None
        program = shutil.which("ping")
        return [program, "-c", "1", "-t", str(PING_WAIT_S), ip] if program else None
    program = shutil.which("ping")
    if program:
        return [program, *(["-6"] if v6 else []), "-c", "1", "-W", str(PING_WAIT_S), ip]
    program = shutil.which("ping6") if v6 else None
    return [program, "-c", "1", "-W", str(PING_WAIT_S), ip] if program else None


def ping_round_trip_ms(output: str) -> float | None:
    """The round-trip time a ping printed (``time=0.05 ms``, ``time<1ms``, ``Zeit=3ms``), if any."""
    match = _PING_TIME.search(output)
    if match is None:
        return None
    return float(match.group(1).replace(",", "."))


def _check_ping(ip: str, timeout: float) -> CheckResult:
    command = _ping_command(ip)
    if command is None:
        return CheckResult(
            STEP_PING,
            WARNING,
            "ping is not available on this computer",
            "Nothing to do: the next step tests the connection itself.",
        )
    no_reply = CheckResult(
        STEP_PING,
        WARNING,
        f"no reply to ping from {ip} — many networks and firewalls block ping, so this alone is not a "
        "problem; the next step tells",
        "Nothing to do unless the next step fails too.",
    )
    env = None if sys.platform == "win32" else {**os.environ, "LC_ALL": "C"}  # English output to parse
    try:
        done = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=PING_WAIT_S + timeout,
            env=env,
            # The GUI has no console; without this, Windows flashes one up for ping.
            creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
            check=False,
        )
    except subprocess.TimeoutExpired:
        return no_reply
    except PermissionError:
        return _ping_not_allowed()
    except OSError as exc:
        return CheckResult(
            STEP_PING,
            WARNING,
            f"ping could not be started ({exc.strerror or exc})",
            "Nothing to do: the next step tests the connection itself.",
        )
    output = done.stdout.decode("utf-8", errors="replace")
    if any(words in output.lower() for words in _PING_DENIED):
        return _ping_not_allowed()
    rtt = ping_round_trip_ms(output)
    # Windows ping exits 0 on "Destination host unreachable" too; a real reply prints a time.
    replied = done.returncode == 0 and (sys.platform != "win32" or rtt is not None or "ttl=" in output.lower())
    if not replied:
        return no_reply
    if rtt is None:
        return CheckResult(STEP_PING, OK, f"{ip} answered")
    return CheckResult(STEP_PING, OK, f"{ip} answered in {_ms(rtt)}")


def _ping_not_allowed() -> CheckResult:
    return CheckResult(
        STEP_PING,
        WARNING,
        "this computer does not let this user send ping",
        "Nothing to do: the next step tests the connection itself.",
    )


def _check_tcp(address: ServerAddress, timeout: float) -> CheckResult:
    step = tcp_step(address.port)
    start = time.perf_counter()
    try:
        with socket.create_connection((address.host, address.port), timeout=timeout) as conn:
            elapsed = (time.perf_counter() - start) * 1000
            peer = conn.getpeername()[0]
    except ConnectionRefusedError:
        return CheckResult(
            step,
            FAILED,
            f"{address.host} refused the connection on port {address.port}: nothing is listening there",
            f"Check that {_WAITING_HINT}, and that port {address.port} is the port the server shows; "
            "start the server or correct the port.",
        )
    except TimeoutError:
        return CheckResult(
            step,
            FAILED,
            f"no answer from {address.host} on port {address.port} within {timeout:g} s",
            f"Check that {_WAITING_HINT}; if it runs, allow port {address.port} in the server's firewall "
            f"(inbound TCP); check that the address is right; {_TUNNEL_HINT}.",
        )
    except socket.gaierror:
        return CheckResult(
            step,
            FAILED,
            f"the name {address.host} stopped resolving",
            "Check the network connection (and the VPN, if the name belongs to one), then try again.",
        )
    except OSError as exc:
        return CheckResult(
            step,
            FAILED,
            f"cannot reach {address.host} on port {address.port} ({exc.strerror or exc})",
            f"This computer has no way to that address: check its network cable or Wi-Fi and the address; {_TUNNEL_HINT}.",
        )
    return CheckResult(step, OK, f"{peer} accepted a connection on port {address.port} in {_ms(elapsed)}")


def _check_tls(
    address: ServerAddress, insecure: bool, expected: str | None, known_servers, timeout: float
) -> tuple[bytes | None, CheckResult]:
    if insecure:
        return None, CheckResult(STEP_TLS, SKIPPED, "insecure mode: no encryption")
    if expected is not None:
        try:
            expected = normalise_fingerprint(expected)
        except FingerprintMismatch:
            return None, CheckResult(
                STEP_TLS,
                FAILED,
                "the certificate fingerprint in the invite is not valid",
                "Copy the whole invite again from the server app and paste it as one line.",
            )
    try:
        cert = fetch_certificate(address.host, address.port, timeout=timeout)
    except TlsError as exc:
        return None, _tls_failure(address, exc)
    try:
        trust = judge_certificate(cert, address, expected, known_servers)
    except UserError as exc:  # the list of trusted servers cannot be read
        return None, CheckResult(STEP_TLS, FAILED, "encrypted, but the list of trusted servers cannot be read", str(exc))
    short = short_fingerprint(trust.actual)
    do_not_proceed = (
        "Do not connect: this may not be the server you mean, or someone may be listening in between. "
        "Ask the server's operator for a fresh invite and compare the fingerprint the server app shows."
    )
    if trust.basis == "invite":
        if not trust.matches:
            return None, CheckResult(
                STEP_TLS,
                FAILED,
                f"the server's certificate ({short}…) is not the one the invite names ({short_fingerprint(trust.expected)}…)",
                do_not_proceed,
            )
        return cert, CheckResult(STEP_TLS, OK, f"encrypted; the certificate ({short}…) matches the invite")
    if trust.basis == "pinned":
        if not trust.matches:
            return None, CheckResult(
                STEP_TLS,
                FAILED,
                f"the server's certificate ({short}…) differs from the one this computer trusted before "
                f"({short_fingerprint(trust.expected)}…)",
                do_not_proceed + " Only if the operator confirms the server was set up anew, connect with that new invite.",
            )
        return cert, CheckResult(STEP_TLS, OK, f"encrypted; the certificate ({short}…) is the one this computer trusted before")
    return cert, CheckResult(
        STEP_TLS, OK, f"encrypted; first connection: the certificate ({short}…) will be trusted and remembered"
    )


def _tls_failure(address: ServerAddress, exc: TlsError) -> CheckResult:
    # fetch_certificate raises "from None", which hides the low-level cause from tracebacks but
    # keeps it in __context__; it tells a plaintext server from one that went away or hangs.
    cause = exc.__context__
    if isinstance(cause, (ssl.SSLError, ConnectionResetError, ConnectionAbortedError, BrokenPipeError)):
        return CheckResult(
            STEP_TLS,
            FAILED,
            f"the server at {address} answered without encryption",
            "The server runs without encryption (--insecure); tick 'Insecure' only if you trust this network, "
            "otherwise ask its operator to start it without --insecure and send a new invite.",
        )
    if isinstance(cause, ConnectionRefusedError):
        return CheckResult(
            STEP_TLS,
            FAILED,
            f"the server at {address} stopped accepting connections",
            f"Check that {_WAITING_HINT}, then test again.",
        )
    if isinstance(cause, TimeoutError):
        return CheckResult(
            STEP_TLS,
            FAILED,
            f"the program on port {address.port} accepted the connection but did not answer",
            f"Check that port {address.port} belongs to the PumpFL server and not to another program, and that {_WAITING_HINT}.",
        )
    return CheckResult(STEP_TLS, FAILED, str(exc), "Check the address and the network, then test again.")


def _check_join(
    address: ServerAddress, root_cert: bytes | None, join_code: str, probe_join: ProbeJoin | None, insecure: bool = False
) -> CheckResult:
    if probe_join is None:
        return CheckResult(STEP_JOIN, SKIPPED, "not checked")
    if not join_code and not insecure:  # a secured server needs one: say so rather than fail
        return CheckResult(
            STEP_JOIN, WARNING, "no join code to check", "paste the whole invite, or type the join code the server app shows"
        )
    try:
        return probe_join(address, root_cert, join_code)
    except UserError as exc:
        return CheckResult(STEP_JOIN, FAILED, str(exc), "Check the join code against the one the server app shows.")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _ms(value: float) -> str:
    return "under 1 ms" if value < 1 else f"{value:.0f} ms"
