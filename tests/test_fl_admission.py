"""Admission on an open port: pre-proof limits, the mutual proof bound to TLS, named invites.

Attackers are raw gRPC streams on loopback (bounded in number and time) against a real server
runner; facilities are real runners. A coordinator's memory is measured in a child process.
"""

import os
import queue
import stat
import subprocess
import sys
import threading
import time

import grpc
import pandas as pd
import pytest
from flwr.common import Code, GetPropertiesRes, Status, serde
from flwr.proto.transport_pb2 import ClientMessage, ServerMessage

from pumpfl_gui.core.simulator import generate
from pumpfl_gui.fl import protocol as P
from pumpfl_gui.fl.addresses import ServerAddress, find_free_port
from pumpfl_gui.fl.client_runner import ClientOptions, ClientRunner
from pumpfl_gui.fl.flower.admission import GatedClientManager
from pumpfl_gui.fl.flower.wire import HANDSHAKE_DEADLINE, PENDING_SLOTS, PRE_PROOF_MESSAGE
from pumpfl_gui.fl.handshake import SERVER_NOT_PROVEN, Malformed, facility_hello, new_nonce, read_facility_hello
from pumpfl_gui.fl.invite import InviteError, parse_invite
from pumpfl_gui.fl.invites import REVOKED, Entry, InviteBook
from pumpfl_gui.fl.protocol import FederationSettings, clean_name
from pumpfl_gui.fl.security import (
    FACILITY,
    SERVER,
    SERVER_NAME,
    KnownServers,
    check_handshake_proof,
    fetch_certificate,
    handshake_proof,
    invite_key_id,
    load_or_make_identity,
)
from pumpfl_gui.fl.server_runner import ServerOptions, ServerRunner

from loopback import Run

FAST = dict(local_epochs=1, join_timeout=60, round_timeout=60)
CODE = "K7QM-2XPA-9WD3"
OTHER = "AAAA-BBBB-CCCC"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A small facility file: the default data's first 3,000 rows."""
    folder = tmp_path_factory.mktemp("site")
    generate(folder / "all")
    small = folder / "site.csv"
    pd.read_csv(folder / "all" / "client_0.csv", nrows=3000).to_csv(small, index=False)
    return small


# --- the pieces, without a network ----------------------------------------------------------


def test_names_from_peers_are_cleaned():
    assert clean_name("Plant\x1b[2J A\n\r\u202eevil\u200b") == "Plant [2J A evil"
    assert clean_name("x" * 500) == "x" * P.NAME_LIMIT
    assert clean_name(b"bytes") == "" and clean_name(None) == ""


def test_proofs_are_bound_to_role_nonces_and_the_certificate_seen():
    sn, fn, fp = b"\x01" * 16, b"\x02" * 16, "AB:" * 31 + "AB"
    proof = handshake_proof(CODE, FACILITY, sn, fn, fp)
    assert CODE.replace("-", "") not in proof.upper()
    assert check_handshake_proof("k7qm 2xpa 9wd3", FACILITY, sn, fn, fp, proof.upper())
    assert not check_handshake_proof(CODE, SERVER, sn, fn, fp, proof)  # the server cannot echo it back
    assert not check_handshake_proof(CODE, FACILITY, sn, fn, "CD:" * 31 + "CD", proof)  # relayed via another TLS channel
    assert not check_handshake_proof(CODE, FACILITY, b"\x03" * 16, fn, fp, proof)  # replayed to another nonce
    assert not check_handshake_proof(OTHER, FACILITY, sn, fn, fp, proof)
    assert not check_handshake_proof(CODE, FACILITY, sn, fn, fp, None)
    assert invite_key_id(CODE) == invite_key_id("k7qm2xpa9wd3") != invite_key_id(OTHER)
    assert CODE.replace("-", "").lower() not in invite_key_id(CODE)


def _good_hello(**changes):
    props = facility_hello(CODE, b"\x01" * 16, new_nonce(), "", "Plant A")
    props.update(changes)
    return props


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({P.HELLO_PROTOCOL: "2"}, "incompatible PumpFL version"),
        ({P.HELLO_PROTOCOL: 2.0}, "incompatible PumpFL version"),
        ({P.HELLO_PROTOCOL: True}, "incompatible PumpFL version"),
        ({P.HELLO_PROTOCOL: 1}, "incompatible PumpFL version"),
        ({P.REPLY_NONCE: "zz" * 16}, "malformed handshake nonce"),
        ({P.REPLY_NONCE: b"\x00" * 16}, "malformed handshake nonce"),
        ({P.REPLY_KEY_ID: "not hex!"}, "malformed invite key id"),
        ({P.REPLY_KEY_ID: "a" * 10_000}, "key id"),
        ({P.REPLY_PROOF: 12345}, "proof"),
        ({P.REPLY_NAME: 7}, "not text"),
        ({P.REPLY_PROBE: "yes"}, "probe flag"),
    ],
)
def test_a_malformed_hello_is_a_refusal_in_words(changes, fragment):
    with pytest.raises(Malformed, match=fragment):
        read_facility_hello(_good_hello(**changes))
    assert read_facility_hello(_good_hello(**{P.REPLY_NAME: "\x07" + "n" * 5000})).name == "n" * P.NAME_LIMIT


def test_invite_book_binds_names_and_revokes_one():
    book = InviteBook(CODE)
    assert book.find(invite_key_id(CODE)) == Entry(CODE, None)
    a = book.add("Plant A")
    b = book.add("  Plant\tB ")
    assert (a.name, b.name) == ("Plant A", "Plant B") and len({a.code, b.code, CODE}) == 3
    for bad, fragment in [
        ("plant a", "already an invite for plant a"),
        ("", "needs the facility's name"),
        ("\n\t", "needs the facility's name"),
        ("x" * 65, "at most 64"),
    ]:
        with pytest.raises(ValueError, match=fragment):
            book.add(bad)
    assert book.revoke("PLANT B") == b
    assert book.find(invite_key_id(b.code)) is None and book.revoked(invite_key_id(b.code))
    assert book.find(invite_key_id(a.code)) == a and book.is_named("plant a") and not book.is_named("Plant B")
    with pytest.raises(ValueError, match="no invite for Plant B"):
        book.revoke("Plant B")


def test_invites_carry_a_name_and_need_a_fingerprint_with_a_code():
    fp = "AB" * 32
    invite = parse_invite(f"pumpfl://10.0.0.5:8080/?code={CODE}&fp={fp}&name=Plant+A")
    assert invite.name == "Plant A" and parse_invite(invite.to_text()) == invite
    assert CODE not in repr(invite)
    with pytest.raises(InviteError, match="join code but no certificate fingerprint"):
        parse_invite(f"pumpfl://10.0.0.5:8080/?code={CODE}")
    with pytest.raises(InviteError, match="name="):
        parse_invite(f"pumpfl://10.0.0.5:8080/?code={CODE}&fp={fp}&name=" + "x" * 65)


def test_the_identity_folder_and_key_are_private_and_made_so_on_load(tmp_path):
    folder = tmp_path / "identity"
    cert, key = load_or_make_identity(folder)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "server.key").stat().st_mode) == 0o600
    os.chmod(folder, 0o755)
    os.chmod(folder / "server.key", 0o644)
    assert load_or_make_identity(folder) == (cert, key)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "server.key").stat().st_mode) == 0o600


# --- raw streams on loopback ------------------------------------------------------------------


def _reply(props: dict) -> bytes:
    res = GetPropertiesRes(Status(code=Code.OK, message="ok"), props)
    return ClientMessage(get_properties_res=serde.get_properties_res_to_proto(res)).SerializeToString()


class Intruder:
    """One stream from someone without the join code: what it was sent, and how it ended.

    ``answer(config)`` makes the bytes it sends back to the server's first message (None: it
    stays silent). The channel may send any size, as an attacker's would."""

    def __init__(self, port: int, root: bytes, answer=None) -> None:
        creds = grpc.ssl_channel_credentials(root_certificates=root)
        self.channel = grpc.secure_channel(
            f"127.0.0.1:{port}",
            creds,
            options=[("grpc.ssl_target_name_override", SERVER_NAME), ("grpc.max_send_message_length", -1)],
        )
        join = self.channel.stream_stream(
            "/flwr.proto.FlowerService/Join", request_serializer=None, response_deserializer=ServerMessage.FromString
        )
        self.outbox: queue.Queue = queue.Queue()
        self.answer = answer
        self.received: list[dict] = []
        self.opened = time.monotonic()
        self.answered = self.ended = None
        self.code = self.details = None
        self._stream = join(iter(self.outbox.get, None))
        self._thread = threading.Thread(target=self._follow, name="test-intruder")
        self._thread.start()

    def _follow(self):
        try:
            for msg in self._stream:
                self.received.append(dict(serde.get_properties_ins_from_proto(msg.get_properties_ins).config))
                if self.answer is not None and len(self.received) == 1:
                    self.outbox.put(self.answer(self.received[0]))
                    self.answered = time.monotonic()
            self.code = grpc.StatusCode.OK
        except grpc.RpcError as exc:
            self.code, self.details = exc.code(), exc.details()
        self.ended = time.monotonic()

    def wait(self, timeout: float) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def close(self):
        self.outbox.put(None)
        self.channel.close()
        self._thread.join(10)


def _wrong_proof(config):
    return _reply(facility_hello(OTHER, bytes.fromhex(config[P.HELLO_NONCE]), new_nonce(), "", "intruder"))


def _malformed(**changes):
    def answer(config):
        props = facility_hello(OTHER, bytes.fromhex(config[P.HELLO_NONCE]), new_nonce(), "", "intruder")
        props.update(changes)
        return _reply(props)

    return answer


def _only_the_first_hello(intruder: Intruder) -> bool:
    """Nothing about the federation (sensors, spec) before the proof: one message, two keys."""
    return [set(c) for c in intruder.received] in ([], [{P.HELLO_PROTOCOL, P.HELLO_NONCE}])


class _Stamped(list):
    """Run.events that also notes when the server's run ended."""

    server_ended = float("inf")

    def append(self, item):
        who, event = item
        if who == "server" and event.kind in ("Finished", "Failed"):
            self.server_ended = time.monotonic()
        super().append(item)


def test_junk_streams_never_lock_facilities_out(site, tmp_path, capfd, caplog):
    run = Run(tmp_path, FederationSettings(rounds=1, min_clients=2, **FAST))
    run.events = _Stamped()
    root = fetch_certificate("127.0.0.1", run.port)
    intruders = []
    try:
        # Malformed fields, one after another: each a refusal in words, at once, no traceback.
        cases = [
            (_malformed(**{P.HELLO_PROTOCOL: "two"}), grpc.StatusCode.PERMISSION_DENIED, "incompatible PumpFL version"),
            (_malformed(**{P.REPLY_NONCE: "not hex"}), grpc.StatusCode.PERMISSION_DENIED, "malformed handshake nonce"),
            (_malformed(**{P.REPLY_KEY_ID: b"\x01"}), grpc.StatusCode.PERMISSION_DENIED, "key id"),
            (_malformed(**{P.REPLY_NAME: "\x1b[31m" + "N" * 100_000}), grpc.StatusCode.PERMISSION_DENIED, "wrong join code"),
            (lambda c: b"\xff\xff not protobuf", grpc.StatusCode.INVALID_ARGUMENT, "not a Flower message"),
            (lambda c: ClientMessage().SerializeToString(), grpc.StatusCode.PERMISSION_DENIED, "incompatible PumpFL version"),
            (_malformed(**{P.REPLY_NAME: "x" * (PRE_PROOF_MESSAGE + 1)}), grpc.StatusCode.RESOURCE_EXHAUSTED, "over the"),
        ]
        for answer, code, fragment in cases:
            intruder = Intruder(run.port, root, answer)
            intruders.append(intruder)
            assert intruder.wait(HANDSHAKE_DEADLINE / 2), "a malformed hello must be refused at once"
            assert intruder.code == code and fragment in intruder.details
            assert _only_the_first_hello(intruder)
        refused_names = [e.name for e in run.of("server", "ClientRefused")]
        assert all(len(n) <= P.NAME_LIMIT and n.isprintable() for n in refused_names)

        # 70 streams at once: 35 answer with a wrong proof and then stay, 35 stay silent.
        junk = [Intruder(run.port, root, _wrong_proof if i % 2 else None) for i in range(70)]
        intruders += junk
        time.sleep(1.0)
        held = [i for i in junk if i.ended is None]
        assert held, "some junk streams should still be held at this point (the silent ones)"
        name = "Plant\x1b[2J A\u202e" + "x" * 80
        run.add(name, site, out_dir=tmp_path / "a")
        run.add("b", site)
        run.join(180)
        assert all(i.wait(HANDSHAKE_DEADLINE + 5) for i in junk)
    finally:
        for intruder in intruders:
            intruder.close()

    assert run.results["server"].kind == "Finished", run.results["server"]
    assert run.results[name].kind == "Finished" and run.results["b"].kind == "Finished"
    joined = sorted(e.name for e in run.of("server", "ClientJoined"))
    assert joined == sorted(["b", clean_name(name)]) and len(clean_name(name)) == P.NAME_LIMIT
    # A silent stream still within its deadline when the run ends is closed with the server.
    closing = [i for i in junk if i.code == grpc.StatusCode.UNAVAILABLE]
    assert all(i.answer is None and i.ended >= run.events.server_ended - 0.5 for i in closing)
    statuses = {i.code for i in junk if i not in closing}
    assert statuses <= {grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED}
    beyond = [i for i in junk if i.code == grpc.StatusCode.RESOURCE_EXHAUSTED]  # no handshake slot left for them
    assert beyond and all("busy" in i.details or "limit" in i.details for i in beyond)
    silent_held = [i for i in junk if i.code == grpc.StatusCode.DEADLINE_EXCEEDED]
    assert 0 < len(silent_held) + len(closing) <= PENDING_SLOTS
    for intruder in junk:
        assert _only_the_first_hello(intruder)
        if intruder.code == grpc.StatusCode.PERMISSION_DENIED:  # refused: closed at once, not at the deadline
            assert intruder.answer is not None and "wrong join code" in intruder.details
            assert intruder.ended - intruder.answered < HANDSHAKE_DEADLINE / 2
        if intruder.code == grpc.StatusCode.DEADLINE_EXCEEDED:  # silent: closed within the deadline
            assert intruder.answer is None and intruder.ended - intruder.opened < HANDSHAKE_DEADLINE + 3
    assert any(i.code == grpc.StatusCode.PERMISSION_DENIED for i in junk)
    assert "Traceback" not in capfd.readouterr().err
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


_COORDINATOR = """
import resource, sys, threading
from pathlib import Path
from pumpfl_gui.fl.protocol import FederationSettings
from pumpfl_gui.fl.server_runner import ServerOptions, ServerRunner
port, out = int(sys.argv[1]), Path(sys.argv[2])
runner = ServerRunner(FederationSettings(rounds=1, min_clients=1, join_timeout=300),
                      ServerOptions(host="127.0.0.1", port=port, out_dir=out, identity_dir=out / "identity"))
thread = threading.Thread(target=runner.run)
thread.start()
runner.ready.wait(60)
scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, kilobytes elsewhere
peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
print("ready", peak(), flush=True)
sys.stdin.readline()
print("peak", peak(), flush=True)
runner.stop()
thread.join(60)
"""


@pytest.mark.federation
def test_huge_unauthenticated_messages_cost_the_coordinator_little_memory(tmp_path):
    port = find_free_port(28500, "127.0.0.1")
    child = subprocess.Popen(
        [sys.executable, "-c", _COORDINATOR, str(port), str(tmp_path / "run")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        word, before = child.stdout.readline().split()
        assert word == "ready"
        root = fetch_certificate("127.0.0.1", port)
        huge = _reply({P.HELLO_PROTOCOL: P.PROTOCOL_VERSION, P.REPLY_NAME: "x" * (150 * 1024 * 1024)})
        intruders = [Intruder(port, root, lambda c: huge) for _ in range(3)]
        for intruder in intruders:
            assert intruder.wait(60)
            intruder.close()
        child.stdin.write("report\n")
        child.stdin.flush()
        word, after = child.stdout.readline().split()
        assert word == "peak"
    finally:
        child.stdin.close()
        child.wait(60)
    assert {i.code for i in intruders} == {grpc.StatusCode.RESOURCE_EXHAUSTED}
    rise = int(after) - int(before)
    print(f"coordinator peak memory {int(before) / 2**20:.0f} MB -> {int(after) / 2**20:.0f} MB")
    assert rise < 300 * 2**20, f"three huge messages raised the coordinator's peak memory by {rise / 2**20:.0f} MB"


# --- the mutual proof and named invites, with real facilities ---------------------------------


def _until(predicate, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_a_rogue_server_is_caught_before_anything_is_sent_or_pinned(site, tmp_path, monkeypatch):
    port = find_free_port(28700, "127.0.0.1")
    address = ServerAddress("127.0.0.1", port)
    known = KnownServers(tmp_path / "known.json")

    def serve(code, folder, tap=None, invites=()):
        server = ServerRunner(
            FederationSettings(rounds=1, min_clients=1, **FAST),
            ServerOptions(
                host="127.0.0.1",
                port=port,
                out_dir=tmp_path / folder,
                join_code=code,
                identity_dir=tmp_path / folder / "identity",
                invites=invites,
            ),
            tap=tap,
        )
        thread = threading.Thread(target=server.run, name=f"test-{folder}")
        thread.start()
        assert server.ready.wait(20)
        return server, thread

    def join(folder):
        events = []
        options = ClientOptions(join_code=CODE, known_servers=known, name="Plant A", out_dir=tmp_path / folder, max_wait=10)
        return ClientRunner(site, address, options, events.append).run(), events

    # A server with another join code refuses the facility's proof; nothing is pinned.
    rogue, thread = serve(OTHER, "rogue")
    result, _ = join("first")
    rogue.stop()
    thread.join(30)
    assert result.kind == "Failed" and "wrong join code" in result.message
    assert known.get(address) is None

    # A rogue that waves any proof through still cannot prove it knows the facility's code: the
    # facility stops with a plain message, sends no sensors or samples, and pins nothing.
    seen = []
    monkeypatch.setattr(GatedClientManager, "_identify", lambda self, hello, nonce: Entry(OTHER))
    rogue, thread = serve(OTHER, "waving", tap=seen.append)
    result, events = join("second")
    rogue.stop()
    thread.join(30)
    monkeypatch.undo()
    assert result.kind == "Failed" and result.message == SERVER_NOT_PROVEN
    assert known.get(address) is None
    sent = [dict(serde.get_properties_res_from_proto(m.get_properties_res).properties) for m in seen]
    assert sent and all(not {P.REPLY_SENSORS, P.REPLY_SAMPLES, P.REPLY_STATS, P.REPLY_SPEC} & set(p) for p in sent)
    assert not [e for e in events if e.kind == "ConnectionState" and e.state in ("trusted", "connected")]

    # The real coordinator at the same address, with its own certificate, is accepted and pinned.
    real, thread = serve(CODE, "real", invites=("Plant C",))
    result, events = join("third")
    thread.join(60)
    assert result.kind == "Finished", result
    assert known.get(address) == real.invite.fingerprint
    assert [e.state for e in events if e.kind == "ConnectionState"].index("trusted") < [
        e.state for e in events if e.kind == "ConnectionState"
    ].index("connected")
    # Invites named at start are written privately, beside a private shared invite.
    invite_file = tmp_path / "real" / "invites" / "Plant_C.txt"
    assert parse_invite(invite_file.read_text()) == real.invites()["Plant C"]
    assert stat.S_IMODE(invite_file.stat().st_mode) == 0o600 and stat.S_IMODE(invite_file.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "real" / "invite.txt").stat().st_mode) == 0o600
    # A resumed run keeps its named invites' codes, so those facilities get back in.
    resumed = ServerRunner(
        FederationSettings(rounds=2, min_clients=1, **FAST),
        ServerOptions(
            host="127.0.0.1",
            port=port,
            out_dir=tmp_path / "resumed",
            resume=tmp_path / "real",
            identity_dir=tmp_path / "real" / "identity",
        ),
    )
    thread = threading.Thread(target=resumed.run, name="test-resumed")
    thread.start()
    assert resumed.ready.wait(20)
    resumed.stop()
    thread.join(30)
    assert resumed.invites() == real.invites() and resumed.invite.join_code == real.invite.join_code
    assert parse_invite((tmp_path / "resumed" / "invites" / "Plant_C.txt").read_text()) == real.invites()["Plant C"]


def test_named_invites_bind_the_name_admit_one_session_and_revoke_one(site, tmp_path):
    run = Run(tmp_path, FederationSettings(rounds=1, min_clients=3, **FAST))
    server = run.server
    a, b = server.add_invite("Plant A"), server.add_invite("Plant B")
    with pytest.raises(ValueError, match="already an invite for plant a"):
        server.add_invite("plant a")
    assert set(server.invites()) == {"Plant A", "Plant B"} and a.name == "Plant A" and a.join_code != b.join_code
    assert parse_invite((tmp_path / "server" / "invites" / "Plant_B.txt").read_text()) == b

    def refused(name, fragment):
        return _until(lambda: any(e.name == name and fragment in e.reason for e in run.of("server", "ClientRefused")))

    def joined():
        return sorted(e.name for e in run.of("server", "ClientJoined"))

    def with_code(invite):
        return dict(join_code=invite.join_code, fingerprint=invite.fingerprint)

    # The name is bound to the code: whatever the facility calls itself, it is Plant A.
    run.add("impostor", site, **with_code(a))
    assert _until(lambda: joined() == ["Plant A"])
    # One live session per invite: a second one is refused with the reason.
    run.add("second", site, **with_code(a))
    assert refused("Plant A", "already connected")
    run.clients["second"].stop()
    run.add("b", site, **with_code(b))
    assert _until(lambda: joined() == ["Plant A", "Plant B"])

    # Revoking Plant B ends its session at once and refuses it later; Plant A stays.
    server.revoke_invite("Plant B")
    assert _until(lambda: "b" in run.results)
    assert run.results["b"].kind == "Failed" and REVOKED in run.results["b"].message
    assert [e.name for e in run.of("server", "ClientLeft")] == ["Plant B"]
    assert set(server.invites()) == {"Plant A"} and not (tmp_path / "server" / "invites" / "Plant_B.txt").exists()
    run.add("b again", site, **with_code(b))
    assert _until(lambda: "b again" in run.results) and REVOKED in run.results["b again"].message

    # The shared trial code: two live facilities of the same name are refused.
    run.add("trial", site)
    assert _until(lambda: "trial" in joined())
    twin = ClientRunner(
        site,
        ServerAddress("127.0.0.1", run.port),
        ClientOptions(
            join_code=run.invite.join_code,
            fingerprint=run.invite.fingerprint,
            name="trial",
            out_dir=tmp_path / "twin",
            max_wait=10,
        ),
    )
    result = twin.run()
    assert result.kind == "Failed" and "a facility named trial is already connected" in result.message

    run.add("c", site)  # the third member: the round runs with Plant A, trial and c
    run.join(180)
    assert run.results["server"].kind == "Finished", run.results["server"]
    assert all(run.results[k].kind == "Finished" for k in ("impostor", "trial", "c"))
    assert [e.participants for e in run.of("server", "RoundStarted")][-1] == ["Plant A", "trial", "c"]


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({P.REPLY_SAMPLES: 10**12}, "no usable sample count"),  # would later let it claim 10^12 windows
        ({P.REPLY_SAMPLES: -1}, "no usable sample count"),
        ({P.REPLY_SPEC: '{"window": 64, "channels": [100000, 16], "kernel": 7}'}, "channel count 100000"),
        ({P.REPLY_SPEC: '{"window": 64}'}, "no usable model shape"),
    ],
)
def test_a_proven_facility_describing_absurd_data_is_refused_in_words(changes, fragment):
    from pumpfl_gui.fl.flower.admission import GatedClientManager

    manager = GatedClientManager(None, {}, lambda event: None)
    props = {
        P.REPLY_SENSORS: '["a", "b"]',
        P.REPLY_SAMPLES: 500,
        P.REPLY_SPEC: '{"window": 64, "channels": [32, 16], "kernel": 7}',
        P.REPLY_PROBLEM: "",
    }
    assert manager._judge(dict(props), "Plant A") is None  # the sound description is admitted ...
    manager.sensors = None
    reason = manager._judge({**props, **changes}, "Plant A")  # ... each absurd one is refused, in words
    assert reason is not None and fragment in reason
