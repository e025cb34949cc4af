"""The ``pumpfl`` command as a user runs it: real processes, real files, exit codes, messages."""

import io
import json
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pandas as pd
import pytest

from pumpfl_gui.cli.main import main


def pumpfl(*args, env_extra=None, cwd=None):
    """``pumpfl ARGS`` in a fresh process, as a user runs it."""
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "pumpfl_gui.cli", *map(str, args)], capture_output=True, text=True, env=env, cwd=cwd, timeout=600
    )


def pumpfl_here(*args, env_extra=None, cwd=None):
    """``pumpfl ARGS`` through the same ``main()`` in this process: what it prints and the exit
    code a process would have, without starting an interpreter (2-3 s) for each of the many
    short refusals. ``pumpfl`` above keeps a real process for the cases that need one."""
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp, redirect_stdout(out), redirect_stderr(err):
        for name, value in (env_extra or {}).items():
            mp.setenv(name, value)
        if cwd is not None:
            mp.chdir(cwd)
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # argparse's refusals and --version
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def assert_user_error(proc, fragment):
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """Default data made on first use by the CLI itself, in a private folder."""
    folder = tmp_path_factory.mktemp("default-data")
    proc = pumpfl("data", "check", "0", env_extra={"PUMPFL_DATA_DIR": str(folder)})
    assert proc.returncode == 0, proc.stderr
    assert "schema: pump" in proc.stdout and "rows: 11,000" in proc.stdout
    assert sorted(p.name for p in folder.iterdir()) == [f"client_{i}.csv" for i in range(5)] + ["metadata.json"]
    return folder


def test_version():
    proc = pumpfl("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("pumpfl ")


def test_check_accepts_every_skab_file(skab_dir):
    files = sorted(skab_dir.rglob("*.csv"))
    assert len(files) == 4
    for f in files:  # the loader test checks what is read; here the command's output
        proc = pumpfl_here("data", "check", f)
        assert proc.returncode == 0, proc.stderr
        assert "schema: skab" in proc.stdout and "sensors used: 8" in proc.stdout
        # Read each second: windows of 60 rows; the files are long enough for them.
        assert "length: long enough to train and score: the model reads windows of 60 rows (one reading every 1 s)" in proc.stdout


def test_check_says_when_a_file_is_too_short_for_its_window(skab_dir, tmp_path):
    lines = (skab_dir / "valve1" / "0.csv").read_text().splitlines(keepends=True)
    short = tmp_path / "short.csv"
    short.write_text("".join(lines[:6]))  # five readings: the loader accepts them, no model could
    proc = pumpfl_here("data", "check", short)
    assert proc.returncode == 0, proc.stderr
    assert "length: too short to train: the model reads windows of 60 rows" in proc.stdout
    assert "needs 179 normal rows in a row; the longest stretch here is 5" in proc.stdout


def test_generate_writes_the_default_layout(data_dir, tmp_path):
    proc = pumpfl_here("data", "generate", "--out", tmp_path / "again")
    assert proc.returncode == 0, proc.stderr
    for name in ["client_0.csv", "client_4.csv", "metadata.json"]:
        assert (tmp_path / "again" / name).read_bytes() == (data_dir / name).read_bytes()


def test_train_then_score_a_default_facility(data_dir, skab_dir, tmp_path):
    env = {"PUMPFL_DATA_DIR": str(data_dir)}
    model = tmp_path / "model"
    proc = pumpfl("train", "0", "--out", model, "--epochs", "2", "--stride", "8", env_extra=env)
    assert proc.returncode == 0, proc.stderr
    assert "epoch 2/2" in proc.stderr and f"saved model to {model}" in proc.stdout
    out_csv, out_json = tmp_path / "scores.csv", tmp_path / "metrics.json"
    proc = pumpfl_here("score", "--model", model, "--data", data_dir / "client_0.csv", "--out", out_csv, "--json", out_json)
    assert proc.returncode == 0, proc.stderr
    assert "failures caught before BROKEN:" in proc.stdout and "ROC-AUC" in proc.stdout
    scores = pd.read_csv(out_csv)
    assert len(scores) == 11_000
    assert list(scores.columns) == ["timestamp", "row", "score", "threshold", "flagged", "event", "machine_status", "label"]
    metrics = json.loads(out_json.read_text())
    assert metrics["failures"]["failures"] == 1
    # Judged from the row where the first full smoothing span of windows ends (a 32-row window;
    # a long history smooths over three windows): 32 + 96 - 2 rows are not scored.
    assert metrics["pointwise"]["rows"] == 11_000 - (32 + 96 - 2)
    # A model trained on the pump schema refuses a file without its sensors, clearly.
    assert_user_error(pumpfl_here("score", "--model", model, "--data", skab_dir / "valve1" / "0.csv"), "sensor_00")


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["data", "check", "/nonexistent/readings.csv"], "no such file"),
        (["data", "check", "7"], "client number 7 does not exist"),
        (["data", "check", "."], "folder"),
        (["score", "--model", "/nonexistent/model", "--data", "0"], "does not exist"),
        (["train", "0", "--out", "m", "--epochs", "0"], "must be at least 1"),
        (["train", "0", "--out", "m", "--window", "30"], "multiple of 4"),
        (["train", "0", "--out", "m", "--lr", "fast"], "not a number"),
        (["data", "partition", "/nonexistent/sensor.csv", "--out", "x"], "sensor.csv"),
        (["frobnicate"], "invalid choice"),
        (["client", "0", "bad host:8080"], "contains a space"),
        (["client", "0", "10.0.0.1:99999"], "port"),
        (["client", "0", "127.0.0.1:8080"], "needs a join code"),
        (["client", "0", "@no-such-invite.txt"], "cannot read the invite file"),
        (["client", "0", "pumpfl://127.0.0.1:8080/?code=ABCD-EFGH-JKMN&fp=12"], "fingerprint"),
        (["server", "--port", "70000"], "not a port"),
        (["server", "0"], "must be at least 1"),
        (["server", "--advertise", "2.tcp.example.io:0"], "port"),
        (["server", "--strategy", "median", "10", "2"], "at least 3 facilities"),
        (["server", "--strategy", "krum"], "invalid choice"),
        (["server", "--mu", "0.1"], "add --strategy fedprox"),
        (["server", "--strategy", "fedadam", "--dp-noise", "1"], "FedAvg or FedProx"),
        (["demo", "--dp-clip", "2"], "turn it on with --dp-noise"),
        (["demo", "--strategy", "trimmed", "--clients", "3", "--trim", "0.6"], "below 0.5"),
        ([], "required"),
    ],
)
def test_user_mistakes_give_one_error_line_and_exit_2(args, fragment, data_dir, tmp_path):
    assert_user_error(pumpfl_here(*args, env_extra={"PUMPFL_DATA_DIR": str(data_dir)}, cwd=tmp_path), fragment)


def test_a_refusal_from_a_real_process_is_one_line_and_exit_2(tmp_path):
    # The in-process runs above share main() with the process; this one proves the entry point.
    assert_user_error(pumpfl("data", "check", tmp_path / "nothing.csv"), "no such file")


def test_broken_csv_gives_one_error_line(tmp_path):
    bad = tmp_path / "export.csv"
    bad.write_text("timestamp,flow,pressure\n2024-01-01 00:00:00,1.0,2.0\n2024-01-01 00:00:01,ERR,2.1\n")
    assert_user_error(pumpfl_here("data", "check", bad), "'flow'")


def test_generate_into_a_file_is_refused(tmp_path):
    target = tmp_path / "a_file"
    target.write_text("keep me")
    assert_user_error(pumpfl_here("data", "generate", "--out", target), "is a file")
    assert target.read_text() == "keep me"  # nothing lost


def test_server_on_a_taken_port_names_the_way_out(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = pumpfl_here("server", "--port", port, "--out", tmp_path / "run")
    assert_user_error(proc, f"port {port} is already in use")
    assert "--port" in proc.stderr


@pytest.mark.federation
def test_demo_runs_a_whole_federation_on_this_computer(data_dir, tmp_path):
    proc = pumpfl(
        "demo",
        "--rounds",
        "2",
        "--clients",
        "2",
        "--local-epochs",
        "1",
        "--out",
        tmp_path / "demo",
        env_extra={"PUMPFL_DATA_DIR": str(data_dir)},
    )
    assert proc.returncode == 0, proc.stderr
    assert "demo finished: 2 rounds" in proc.stdout
    assert "round  2: eval loss" in proc.stdout
    assert (tmp_path / "demo" / "server" / "global_model" / "model.json").is_file()
    assert (tmp_path / "demo" / "client_1" / "model.json").is_file()
    # Each facility also trained alone: both models saved, compared on its own file, one kept.
    for facility in ("client_0", "client_1"):
        comparison = json.loads((tmp_path / "demo" / facility / "comparison.json").read_text())
        assert comparison["alone"]["failures"] == comparison["federated"]["failures"] >= 1
        assert comparison["keep"] in ("alone", "federated") and comparison["why"]
        assert (Path(comparison["kept_model"]) / "model.json").is_file()
        assert (tmp_path / "demo" / facility / "alone" / "model.json").is_file()
        assert f"{facility}: alone vs federated on {facility}.csv (2 rounds each)" in proc.stdout
    assert proc.stdout.count("Kept for Monitor: the ") == 2
    # The federation's global model scores a facility's file from the command line.
    scored = pumpfl_here("score", "--model", tmp_path / "demo" / "server" / "global_model", "--data", data_dir / "client_0.csv")
    assert scored.returncode == 0, scored.stderr
    assert "failures caught before BROKEN" in scored.stdout


@pytest.mark.federation
def test_demo_with_privacy_and_shared_scaling_states_epsilon_and_the_agreed_threshold(data_dir, tmp_path):
    from pumpfl_gui.core.model_store import load_detector
    from pumpfl_gui.fl.privacy import epsilon

    proc = pumpfl(
        "demo",
        "--rounds",
        "2",
        "--clients",
        "2",
        "--local-epochs",
        "1",
        "--strategy",
        "fedprox",
        "--mu",
        "0.05",
        "--dp-noise",
        "2",
        "--dp-clip",
        "0.5",
        "--shared-scaling",
        "--out",
        tmp_path / "demo",
        env_extra={"PUMPFL_DATA_DIR": str(data_dir)},
    )
    assert proc.returncode == 0, proc.stderr
    assert "strategy FedProx (proximal term mu 0.05)" in proc.stderr
    assert "noise multiplier 2, clipping norm 0.5, delta 1e-05" in proc.stderr
    assert f"privacy: epsilon {epsilon([2.0, 2.0], 1e-5):.2f} for delta 1e-05 after 2 rounds" in proc.stdout
    agreed = load_detector(tmp_path / "demo" / "client_0").threshold
    assert f"agreed threshold {agreed:.5f}" in proc.stdout
    assert load_detector(tmp_path / "demo" / "client_1").threshold == agreed


def test_demo_refuses_more_facilities_than_the_default_data_has(data_dir):
    assert_user_error(pumpfl_here("demo", "--clients", "6", env_extra={"PUMPFL_DATA_DIR": str(data_dir)}), "use --clients 1 to 5")
