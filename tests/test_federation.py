"""Real federations on loopback: a Flower server runner and facility runners in threads."""

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pumpfl_gui.core.dataset import load_sensor_csv
from pumpfl_gui.core.detector import score_data
from pumpfl_gui.core.model_store import load_detector
from pumpfl_gui.fl import protocol as P
from pumpfl_gui.fl.addresses import ServerAddress, check_port_free, find_free_port
from pumpfl_gui.fl.client_runner import ClientOptions, ClientRunner
from pumpfl_gui.fl.invite import parse_invite
from pumpfl_gui.fl.loopback_federation import LoopbackFederation
from pumpfl_gui.fl.protocol import FederationSettings
from pumpfl_gui.fl.server_runner import ServerOptions, ServerRunner

from loopback import Run

FAST = dict(local_epochs=1, join_timeout=60, round_timeout=60)


def test_two_facilities_three_rounds_over_tls(plant, tmp_path):
    run = Run(tmp_path, FederationSettings(rounds=3, min_clients=2, **FAST))
    assert run.invite.fingerprint and run.invite.join_code
    run.add("small", plant / "client_0.csv", personalise=True)
    run.add("large", plant / "client_2.csv", personalise=True)
    run.join()
    assert run.results["server"].kind == "Finished" and run.results["server"].rounds_completed == 3
    rounds = run.of("server", "RoundFinished")
    assert [r.round for r in rounds] == [1, 2, 3]
    losses = [r.eval_loss for r in rounds]
    assert losses[2] < losses[0], losses
    assert all(set(r.per_client) == {"small", "large"} for r in rounds)
    history = json.loads((tmp_path / "server" / "history.json").read_text())["rounds"]
    assert [h["round"] for h in history] == [1, 2, 3]
    first = history[0]
    assert first["per_client"]["large"]["samples"] > first["per_client"]["small"]["samples"]
    assert first["bytes_sent"] > 0 and first["bytes_received"] > 0 and first["seconds"] > 0
    # Nothing sent twice: each facility receives the model once a round (round 1 only the global
    # model to evaluate: it built the starting model from the coordinator's seed) and sends its
    # update once.
    assert all(h["per_facility"]["received_x_model"] <= 1.1 for h in history), history
    assert all(h["per_facility"]["sent_x_model"] <= 1.1 for h in history), history
    # The global model scores any facility's file, calibrated on that file's own normal rows.
    model = load_detector(tmp_path / "server" / "global_model")
    assert model.scaler is None and model.threshold is None
    result = score_data(model, load_sensor_csv(plant / "client_0.csv", sensors=model.sensors))
    assert np.isfinite(result.threshold) and result.metrics["failures"]["failures"] == 1
    # Each facility keeps the final global model with its own threshold.
    for name in ("small", "large"):
        assert run.results[name].kind == "Finished" and run.results[name].rounds_completed == 3
        mine = load_detector(tmp_path / name)
        assert mine.threshold is not None and mine.scaler is not None
        assert mine.info["model"] == "personalised from round 3"
    assert [e.epoch for e in run.of("small", "EpochLoss")] == [1, 1, 1]
    check_port_free(run.port, "127.0.0.1")  # the port is free again


class ClaimsAnotherStart(ClientRunner):
    """A facility that says it built a starting model it did not build (another torch, a bug, a
    lie): the coordinator never takes its word, only the digest's match."""

    def _hello(self, config):
        reply = super()._hello(config)
        assert P.REPLY_START in reply  # it did build the model
        return {**reply, P.REPLY_START: "0" * len(reply[P.REPLY_START])}


def test_a_facility_without_the_starting_model_is_sent_it(plant, tmp_path):
    run = Run(tmp_path, FederationSettings(rounds=2, min_clients=2, **FAST))
    run.add("built", plant / "client_0.csv")
    run.add("other", plant / "client_1.csv", runner_class=ClaimsAnotherStart)
    run.join()
    assert run.results["server"].kind == "Finished" and run.results["other"].kind == "Finished"
    first = json.loads((tmp_path / "server" / "history.json").read_text())["rounds"][0]
    # Round 1: "other" got the starting model and the global one (about twice the model);
    # "built" only the global one. The per-facility figure is their mean.
    assert 1.4 < first["per_facility"]["sent_x_model"] < 1.7, first


def test_wrong_join_code_is_refused_while_the_others_train(plant, tmp_path):
    run = Run(tmp_path, FederationSettings(rounds=2, min_clients=2, **FAST))
    run.add("intruder", plant / "client_4.csv", join_code="AAAA-BBBB-CCCC")
    run.add("a", plant / "client_0.csv")
    run.add("b", plant / "client_0.csv")
    run.join()
    refused = run.of("server", "ClientRefused")
    assert [r.name for r in refused] == ["intruder"] and "wrong join code" in refused[0].reason
    assert run.results["intruder"].kind == "Failed" and "wrong join code" in run.results["intruder"].message
    assert not run.of("intruder", "FitResult") and not run.of("intruder", "EvaluateResult")  # never got parameters
    assert all(set(r.per_client) == {"a", "b"} for r in run.of("server", "RoundFinished"))
    assert run.results["server"].rounds_completed == 2


def test_a_facility_with_other_sensors_is_refused_on_both_sides(plant, tmp_path):
    frame = pd.read_csv(plant / "client_0.csv").drop(columns=["sensor_01", "sensor_02"])
    odd = tmp_path / "odd.csv"
    frame.to_csv(odd, index=False)
    run = Run(tmp_path, FederationSettings(rounds=1, min_clients=2, **FAST))
    run.add("a", plant / "client_0.csv")
    while not run.of("server", "ClientJoined"):
        time.sleep(0.05)  # "a" defines the federation's sensors
    run.add("odd", odd)
    run.add("b", plant / "client_0.csv")
    run.join()
    reason = run.of("server", "ClientRefused")[0].reason
    assert "odd" in reason and "sensor_01" in reason
    assert run.results["odd"].kind == "Failed" and "sensor_01" in run.results["odd"].message
    assert run.results["server"].rounds_completed == 1


def test_a_plaintext_client_cannot_join_a_tls_server(plant, tmp_path):
    run = Run(tmp_path, FederationSettings(rounds=1, min_clients=1, **FAST))
    run.add("plain", plant / "client_0.csv", insecure=True, join_code="", fingerprint=None)
    deadline = time.monotonic() + 30
    while "plain" not in run.results and time.monotonic() < deadline:
        time.sleep(0.1)
    assert run.results["plain"].kind == "Failed"
    assert "uses encryption (TLS)" in run.results["plain"].message
    assert not run.of("server", "ClientJoined")
    run.server.stop()
    run.join()


def test_stop_mid_round_leaves_no_thread_and_frees_the_port(plant, tmp_path):
    run = Run(tmp_path, FederationSettings(rounds=50, min_clients=2, local_epochs=3, join_timeout=60, round_timeout=60))
    run.add("a", plant / "client_2.csv")
    run.add("b", plant / "client_0.csv")
    deadline = time.monotonic() + 60
    while not run.of("a", "EpochLoss") and time.monotonic() < deadline:
        time.sleep(0.05)
    t0 = time.monotonic()
    run.server.stop()
    for c in run.clients.values():
        c.stop()
    run.join(timeout=20)
    assert time.monotonic() - t0 < 15
    assert run.results["server"].kind == "Finished" and "stopped" in run.results["server"].message
    check_port_free(run.port, "127.0.0.1")


def _client_process(csv: Path, invite: str, *extra) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "pumpfl_gui.cli", "client", str(csv), invite, *map(str, extra)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_a_facility_killed_mid_round_does_not_stop_the_others(plant, tmp_path):
    run = Run(tmp_path, FederationSettings(rounds=3, min_clients=2, local_epochs=3, join_timeout=120, round_timeout=120))
    victim = _client_process(plant / "client_2.csv", run.invite.to_text(), "--name", "victim")
    try:
        deadline = time.monotonic() + 60
        while not run.of("server", "ClientJoined") and time.monotonic() < deadline:
            time.sleep(0.05)  # the victim is in before the rounds can start
        run.add("a", plant / "client_0.csv")
        run.add("b", plant / "client_0.csv")
        deadline = time.monotonic() + 120
        while not [e for e in run.of("server", "RoundStarted") if e.round == 2] and time.monotonic() < deadline:
            time.sleep(0.02)
        assert "victim" in run.of("server", "RoundStarted")[-1].participants
        time.sleep(0.3)  # inside round 2's training
        victim.send_signal(signal.SIGKILL)
        run.join()
    finally:
        victim.kill()
        victim.communicate()
    assert run.results["server"].kind == "Finished" and run.results["server"].rounds_completed == 3
    assert [e.name for e in run.of("server", "ClientLeft")][0] == "victim"
    last = run.of("server", "RoundFinished")[-1]
    assert set(last.per_client) == {"a", "b"}


def test_a_facility_says_so_when_the_server_vanishes(plant, tmp_path):
    port = find_free_port(21000, "127.0.0.1")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pumpfl_gui.cli",
            "server",
            "50",
            "1",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--out",
            str(tmp_path / "srv"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        invite = parse_invite(server.stdout.readline())
        events = []
        runner = ClientRunner(
            plant / "client_0.csv",
            invite.address,
            ClientOptions(join_code=invite.join_code, fingerprint=invite.fingerprint, max_wait=6),
            events.append,
        )
        t = threading.Thread(target=runner.run)
        t.start()
        deadline = time.monotonic() + 60
        while not any(e.kind == "EvaluateResult" for e in events) and time.monotonic() < deadline:
            time.sleep(0.05)
        server.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        while not any(e.kind == "ConnectionState" and e.state == "reconnecting" for e in events):
            assert time.monotonic() - killed < 12, "the facility did not notice within about 10 s"
            time.sleep(0.05)
        lost = next(e for e in events if e.kind == "ConnectionState" and e.state == "reconnecting")
        assert "lost the server" in lost.detail and "retrying" in lost.detail
        t.join(60)
        assert not t.is_alive()
        assert events[-1].kind == "Failed" and "no server at" in events[-1].message
    finally:
        server.kill()
        server.communicate()


def test_resume_continues_after_the_last_saved_round(plant, tmp_path):
    run = Run(tmp_path, FederationSettings(rounds=2, min_clients=1, **FAST))
    run.add("a", plant / "client_0.csv")
    run.join()
    first = json.loads((tmp_path / "server" / "history.json").read_text())["rounds"]
    assert [h["round"] for h in first] == [1, 2]
    again = tmp_path / "again"
    again.mkdir()
    events = []
    port = find_free_port(22000, "127.0.0.1")
    server = ServerRunner(
        FederationSettings(rounds=4, min_clients=1, **FAST),
        ServerOptions(host="127.0.0.1", port=port, out_dir=tmp_path / "server", resume=tmp_path / "server"),
        on_event=events.append,
    )
    st = threading.Thread(target=server.run)
    st.start()
    assert server.ready.wait(20)
    inv = server.invite
    client = ClientRunner(
        plant / "client_0.csv",
        inv.address,
        ClientOptions(join_code=inv.join_code, fingerprint=inv.fingerprint, name="a", max_wait=20),
    )
    ct = threading.Thread(target=client.run)
    ct.start()
    st.join(120)
    ct.join(60)
    assert [e.round for e in events if e.kind == "RoundStarted"] == [3, 4]
    history = json.loads((tmp_path / "server" / "history.json").read_text())["rounds"]
    assert [h["round"] for h in history] == [1, 2, 3, 4]
    assert history[0] == first[0]  # the earlier rounds are kept as they were


@pytest.mark.parametrize("shared_scaling", [False, True], ids=["own-scaling", "shared-scaling"])
def test_a_facility_sends_only_parameters_and_whitelisted_scalars(plant, tmp_path, shared_scaling):
    from flwr.common import parameters_to_ndarrays, serde

    from pumpfl_gui.core.model import build_model, get_parameters
    from pumpfl_gui.core.model_spec import ModelSpec
    from pumpfl_gui.core.pooling import SKETCH_PROBS
    from pumpfl_gui.fl import protocol as P

    seen = []
    port = find_free_port(23000, "127.0.0.1")
    server = ServerRunner(
        FederationSettings(rounds=2, min_clients=1, shared_scaling=shared_scaling, **FAST),
        ServerOptions(host="127.0.0.1", port=port, out_dir=tmp_path / "server"),
        tap=seen.append,
    )
    st = threading.Thread(target=server.run)
    st.start()
    assert server.ready.wait(20)
    inv = server.invite
    csv = plant / "client_0.csv"
    client = ClientRunner(csv, inv.address, ClientOptions(join_code=inv.join_code, fingerprint=inv.fingerprint, max_wait=20))
    ct = threading.Thread(target=client.run)
    ct.start()
    st.join(120)
    ct.join(60)
    data = load_sensor_csv(csv)
    shapes = [p.shape for p in get_parameters(build_model(ModelSpec(sensors=len(data.sensors))))]
    readings = set(np.round(data.values[:, :5].ravel().astype(np.float64), 6).tolist())
    # Window counts are the facility's own figures (one may equal a reading by chance).
    fac = client.facility
    counts = {fac.samples, len(fac.train_pool[:: FederationSettings(**FAST).stride]), len(fac.eval_starts)}
    kinds = [m.WhichOneof("msg") for m in seen]
    assert kinds.count("fit_res") == 2 and kinds.count("evaluate_res") == 2 and "get_properties_res" in kinds
    summaries = sketches = acks = 0
    for msg in seen:
        kind = msg.WhichOneof("msg")
        if kind == "fit_res":
            res = serde.fit_res_from_proto(msg.fit_res)
            assert [a.shape for a in parameters_to_ndarrays(res.parameters)] == shapes
            assert set(res.metrics) <= P.FIT_METRICS
            scalars = list(res.metrics.values()) + [res.num_examples]
        elif kind == "evaluate_res":
            res = serde.evaluate_res_from_proto(msg.evaluate_res)
            assert set(res.metrics) <= P.EVAL_METRICS
            if P.CFG_SKETCH in res.metrics:  # quantiles of its training scores: an aggregate, never a reading
                sketch = json.loads(res.metrics.pop(P.CFG_SKETCH))
                assert (
                    set(sketch) == {"n", "p", "v", "rule"}
                    and sketch["p"] == list(SKETCH_PROBS)
                    and len(sketch["v"]) == len(SKETCH_PROBS)
                )
                assert len(sketch["rule"]) == 2  # its threshold rule: a quantile and a factor
                sketches += 1
            scalars = list(res.metrics.values()) + [res.loss, res.num_examples]
        elif kind == "get_properties_res":
            res = serde.get_properties_res_from_proto(msg.get_properties_res)
            assert set(res.properties) <= P.PROPERTY_KEYS
            if not res.properties:  # the facility's "received" for the agreed threshold or the run's end
                acks += 1
                continue
            if P.REPLY_PROOF in res.properties:  # handshake message 2: which invite, a nonce, a name, a proof
                assert set(res.properties) == {
                    P.HELLO_PROTOCOL,
                    P.REPLY_KEY_ID,
                    P.REPLY_NONCE,
                    P.REPLY_NAME,
                    P.REPLY_PROOF,
                    P.REPLY_PROBE,
                }
                continue
            assert json.loads(res.properties[P.REPLY_SENSORS]) == data.sensors  # names, not values
            if P.REPLY_STATS in res.properties:  # per sensor: counts, means, variances — never a row
                stats = json.loads(res.properties.pop(P.REPLY_STATS))
                assert {k: len(v) if isinstance(v, list) else "count" for k, v in stats.items()} == {
                    "rows": "count",
                    "steps": "count",
                    **{k: len(data.sensors) for k in ("mean", "var", "within_var", "step_mean", "step_var")},
                }
                summaries += 1
            scalars = [v for v in res.properties.values() if isinstance(v, (int, float))]
        else:
            raise AssertionError(f"a facility sent an unexpected {kind}")
        assert all(isinstance(v, (int, float)) for v in scalars)
        assert not {round(float(v), 6) for v in scalars if v not in counts} & readings - {0.0, 1.0, 2.0, 3.0}
    # With shared scaling: one summary at the handshake, one sketch after the last round, one
    # "received"; and always one "received" for the server's word on why the run ends.
    assert (summaries, sketches, acks) == ((1, 1, 2) if shared_scaling else (0, 0, 1))


def test_trust_on_first_use_pins_the_server_and_catches_a_changed_one(plant, tmp_path):
    from pumpfl_gui.fl.security import KnownServers

    known = KnownServers(tmp_path / "known.json")
    port = find_free_port(24000, "127.0.0.1")

    def one_run(folder):
        events = []
        server = ServerRunner(
            FederationSettings(rounds=1, min_clients=1, **FAST),
            ServerOptions(host="127.0.0.1", port=port, out_dir=folder, identity_dir=folder / "identity"),
        )
        st = threading.Thread(target=server.run)
        st.start()
        assert server.ready.wait(20)
        client = ClientRunner(
            plant / "client_0.csv",
            ServerAddress("127.0.0.1", port),
            ClientOptions(join_code=server.invite.join_code, known_servers=known, max_wait=10),
            events.append,
        )
        result = client.run()
        server.stop()
        st.join(30)
        return result, events, server.invite

    result, events, invite = one_run(tmp_path / "first")
    assert result.kind == "Finished"
    trusted = [e for e in events if e.kind == "ConnectionState" and e.state == "trusted"]
    assert len(trusted) == 1 and invite.fingerprint[:11] in trusted[0].detail
    assert known.get(ServerAddress("127.0.0.1", port)) == invite.fingerprint
    # A new server on the same address has a new certificate: refused, never trusted silently.
    result, events, _ = one_run(tmp_path / "second")
    assert result.kind == "Failed" and "another certificate" in result.message


def test_insecure_mode_runs_without_tls_or_join_code(plant, tmp_path):
    run = Run(tmp_path, FederationSettings(rounds=1, min_clients=2, **FAST), insecure=True)
    assert run.invite.insecure and run.invite.fingerprint is None and run.invite.join_code == ""
    assert not (tmp_path / "server" / "server.crt").exists()
    run.add("a", plant / "client_0.csv")
    run.add("b", plant / "client_0.csv")
    run.join()
    assert run.results["server"].rounds_completed == 1


def test_the_server_keeps_its_certificate_across_restarts(plant, tmp_path):
    fingerprints = []
    for attempt in range(2):
        server = ServerRunner(
            FederationSettings(rounds=1, min_clients=1, join_timeout=1),
            ServerOptions(
                host="127.0.0.1",
                port=find_free_port(25000, "127.0.0.1"),
                out_dir=tmp_path / f"run{attempt}",
                identity_dir=tmp_path / "identity",
            ),
        )
        st = threading.Thread(target=server.run)
        st.start()
        assert server.ready.wait(20)
        fingerprints.append(server.invite.fingerprint)
        server.stop()
        st.join(30)
    assert fingerprints[0] == fingerprints[1]
    assert oct((tmp_path / "identity" / "server.key").stat().st_mode & 0o777) == "0o600"


def test_the_invite_carries_a_tunnel_address_when_told(tmp_path):
    server = ServerRunner(
        FederationSettings(rounds=1, min_clients=1, join_timeout=1),
        ServerOptions(
            host="127.0.0.1",
            port=find_free_port(26000, "127.0.0.1"),
            out_dir=tmp_path,
            advertise="2.tcp.example.io:15432",
            identity_dir=tmp_path / "id",
        ),
    )
    st = threading.Thread(target=server.run)
    st.start()
    assert server.ready.wait(20)
    server.stop()
    st.join(30)
    invite = parse_invite((tmp_path / "invite.txt").read_text())
    assert invite.address == ServerAddress("2.tcp.example.io", 15432)


def _server_process(port, out, *args):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pumpfl_gui.cli",
            "server",
            *map(str, args),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--out",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    return proc, parse_invite(proc.stdout.readline())


def test_a_restarted_server_resumes_and_the_facility_comes_back(plant, tmp_path):
    port = find_free_port(27000, "127.0.0.1")
    out = tmp_path / "run"
    first, invite = _server_process(port, out, 4, 1, "--local-epochs", "1")
    events = []
    runner = ClientRunner(
        plant / "client_0.csv",
        invite.address,
        ClientOptions(join_code=invite.join_code, fingerprint=invite.fingerprint, max_wait=90, out_dir=tmp_path / "mine"),
        events.append,
    )
    t = threading.Thread(target=runner.run)
    t.start()
    second = None
    try:
        deadline = time.monotonic() + 90
        while not (out / "state.json").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.communicate()
        saved = json.loads((out / "state.json").read_text())["round"]
        second, again = _server_process(port, out, 4, 1, "--local-epochs", "1", "--resume", out)
        assert again.join_code == invite.join_code and again.fingerprint == invite.fingerprint
        t.join(120)
        assert not t.is_alive()
        assert second.wait(60) == 0
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
            if proc is not None and not proc.stdout.closed:
                proc.communicate()
    assert any(e.kind == "ConnectionState" and e.state == "reconnecting" for e in events)
    assert events[-1].kind == "Finished" and events[-1].rounds_completed == 4
    history = json.loads((out / "history.json").read_text())["rounds"]
    assert [h["round"] for h in history] == [1, 2, 3, 4]
    assert saved >= 1


def test_a_join_code_probe_is_answered_but_never_enrolled(plant, tmp_path):
    from pumpfl_gui.fl.join_probe import probe_join_code
    from pumpfl_gui.fl.security import fetch_certificate

    run = Run(tmp_path, FederationSettings(rounds=1, min_clients=1, **FAST))
    root = fetch_certificate("127.0.0.1", run.port)
    address = ServerAddress("127.0.0.1", run.port)
    assert probe_join_code(address, root, run.invite.join_code) == (True, "the server accepted the join code")
    accepted, detail = probe_join_code(address, root, "AAAA-BBBB-CCCC")
    assert not accepted and "wrong join code" in detail
    assert not run.of("server", "ClientJoined") and not run.of("server", "ClientRefused")
    run.server.stop()
    run.join()


def test_the_loopback_federation_moves_to_another_port_when_its_own_is_taken_before_it_listens(skab_dir, tmp_path):
    # Found free, then taken by another program before the server bound it: the engine of
    # `pumpfl demo`, the self-test and the benchmarks takes the next free port instead.
    with socket.socket() as squatter:
        # As a server would bind it: a port another test's run just left (its connections in
        # TIME_WAIT) is free to listen on again.
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        for _ in range(10):  # another test's server may take the port first: choose again
            fed = LoopbackFederation(
                FederationSettings(rounds=1, min_clients=1, **FAST), [skab_dir / "valve1" / "0.csv"], tmp_path
            )
            chosen = fed.port
            try:
                squatter.bind(("127.0.0.1", chosen))
                break
            except OSError:
                continue
        else:
            pytest.fail("no port the federation chose could be taken first")
        squatter.listen()
        result = fed.run()
    assert result.kind == "Finished" and result.complete, result
    assert fed.port != chosen and (tmp_path / "0").is_dir()
    # A port the caller named is the caller's: taken, the run fails and says so.
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        named = LoopbackFederation(
            FederationSettings(rounds=1, min_clients=1, **FAST), [skab_dir / "valve1" / "0.csv"], tmp_path / "named", port=port
        )
        result = named.run()
    assert result.kind == "Failed" and f"port {port} is already in use" in result.message


def test_a_facility_you_stop_after_a_round_keeps_the_last_global_model_marked_incomplete(plant, tmp_path):
    run = Run(tmp_path, FederationSettings(rounds=20, min_clients=2, **FAST))
    run.add("a", plant / "client_0.csv", personalise=True)  # a stop saves at once all the same
    run.add("b", plant / "client_0.csv")
    run.stop_after("a")
    result = run.results["a"]
    assert result.kind == "Finished" and result.message == "stopped" and not result.complete
    assert result.out_dir == str(tmp_path / "a") and result.rounds_planned == 20
    assert [e.detail for e in run.of("a", "ConnectionState") if e.state == "finishing"] == [
        "calibrating the federation's model on this facility's rows"
    ]
    model = load_detector(tmp_path / "a")
    assert model.info["incomplete_run"] == {"rounds": result.rounds_completed, "of": 20} and result.rounds_completed >= 1
    assert "personalised" not in model.info["model"] and np.isfinite(model.threshold)
