"""``pumpfl bench …`` as a user runs it, on small data made here: each command once, then
the report.

These are smoke runs (one round, one epoch, a few files) that prove the commands work end to
end — a real Flower federation on loopback included — and that their figures agree with
their own counts. The full benchmarks are ``pumpfl bench report`` (docs/BENCHMARKS.md).
"""

import json
import shutil

import numpy as np
import pytest
from test_cli import assert_user_error, pumpfl, pumpfl_here

from pumpfl_gui.bench.rounds import federate
from pumpfl_gui.bench.skab import SkabSettings
from pumpfl_gui.bench.variants import run_pump_variants, run_skab_variants
from pumpfl_gui.core.errors import UserError
from pumpfl_gui.core.simulator import generate
from pumpfl_gui.core.skab_simulator import write_anomaly_free_csv, write_skab_csv
from pumpfl_gui.fl.protocol import FederationSettings

FAST = ("--rounds", "1", "--local-epochs", "1")


VALVE1_ROWS = 1147  # valve1/0.csv here is as long as SKAB's own (its files run 995-1,154 rows)


@pytest.fixture(scope="module")
def skab_sites(tmp_path_factory):
    """Two facilities of SKAB-format files: one labelled file each, plus a short
    anomaly-free run."""
    folder = tmp_path_factory.mktemp("skab")
    write_skab_csv(folder / "valve1" / "0.csv", rows=VALVE1_ROWS, anomaly_start=573, anomaly_rows=401, seed=1)
    write_skab_csv(folder / "valve2" / "1.csv", rows=1063, anomaly_start=560, anomaly_rows=333, seed=2)
    write_anomaly_free_csv(folder / "valve2" / "normal.csv", rows=1200, seed=3)
    return folder


@pytest.fixture(scope="module")
def plant_dir(tmp_path_factory):
    """Two pump-schema facilities cut from the default data (client_0's failure in the second)."""
    full = tmp_path_factory.mktemp("full")
    generate(full)
    lines = (full / "client_0.csv").read_text().splitlines(keepends=True)
    folder = tmp_path_factory.mktemp("plant")
    (folder / "client_0.csv").write_text(lines[0] + "".join(lines[1:5001]))
    (folder / "client_1.csv").write_text(lines[0] + "".join(lines[5001:11001]))
    return folder


@pytest.fixture(scope="module")
def results(tmp_path_factory, skab_sites, plant_dir):
    """Every bench command once, its JSON in one folder (the layout ``report --reuse`` reads)."""
    out = tmp_path_factory.mktemp("docs") / "bench"
    runs = {
        f"skab_{mode}": ("skab", "--data", skab_sites, "--mode", mode, *FAST) for mode in ("local", "federated", "centralized")
    }
    for mode in ("local", "federated"):  # the report's seeds table; centralized keeps seed 0 only
        runs[f"skab_{mode}_seed1"] = ("skab", "--data", skab_sites, "--mode", mode, "--seed", "1", *FAST)
    runs["pump"] = ("pump", "--data", plant_dir, *FAST)
    runs["speed"] = ("speed", "--data", plant_dir / "client_1.csv", "--max-rows", "3000")
    runs["scale-3"] = ("scale", "--facilities", "3", "--rounds", "2")
    runs["rows"] = ("rows", "--rows", "20000", "--data", plant_dir / "client_1.csv")
    printed = {}
    for name, args in runs.items():
        proc = pumpfl_here("bench", *args, "--out", out / f"{name}.json")
        assert proc.returncode == 0, proc.stderr
        printed[name] = proc.stdout
    found = {name: json.loads((out / f"{name}.json").read_text()) for name in runs}
    # The report reads one scale run a facility count, in one file.
    (out / "scale.json").write_text(json.dumps([found["scale-3"]]))
    return found, printed, out.parent


@pytest.fixture(scope="module")
def variants(results, skab_sites, plant_dir):
    """FedAvg (the runs above), another strategy, a DP row and shared scaling on both benchmarks,
    their JSON beside the others' for ``report --reuse``."""
    pump = run_pump_variants(
        plant_dir,
        FederationSettings(rounds=1, local_epochs=1),
        keys=["fedavg", "fedprox", "dp-0.5", "shared"],
        fedavg=results[0]["pump"],
    )
    skab = run_skab_variants(
        skab_sites,
        SkabSettings(rounds=1, local_epochs=1),
        keys=["fedavg", "fedadam", "dp-1", "shared"],
        fedavg=results[0]["skab_federated"],
    )
    folder = results[2] / "bench"
    for name, r in (("pump_variants", pump), ("skab_variants", skab)):
        (folder / f"{name}.json").write_text(json.dumps(r, indent=2))
    return {"pump": pump, "skab": skab}


@pytest.mark.parametrize("mode", ["local", "federated", "centralized"])
def test_skab_scores_every_labelled_test_row_under_the_protocol(results, mode):
    r = results[0][f"skab_{mode}"]
    assert r["mode"] == mode
    assert r["facilities"] == {"valve1": ["0.csv"], "valve2": ["1.csv", "normal.csv"]}
    # The unlabelled file trains but is never scored; every labelled row past 400 is.
    assert [f["file"] for f in r["files"]] == ["0.csv", "1.csv"]
    for f in r["files"]:
        assert sum(f["counts"].values()) == f["test_rows"]
    assert r["files"][0]["test_rows"] == VALVE1_ROWS - 400
    c = r["counts"]
    assert r["f1"] == round(c["tp"] / (c["tp"] + (c["fp"] + c["fn"]) / 2), 4)
    assert r["far_pct"] == round(100 * c["fp"] / (c["fp"] + c["tn"]), 2)
    assert r["mar_pct"] == round(100 * c["fn"] / (c["fn"] + c["tp"]), 2)
    # Temperature and Thermocouple wander in SKAB's training rows and are judged by their change.
    assert "Temperature" in r["files"][0]["relative_sensors"]
    # Each file's detector is the app's: the shape SKAB's data calls for; alone, trained with
    # early stopping; federated or pooled, personalised on the file's own rows.
    assert (r["settings"]["spec"]["window"], r["settings"]["spec"]["channels"]) == (60, [32, 16])
    assert {f["model"] for f in r["files"]} == (
        {"trained alone"} if mode == "local" else {"personalised"} if mode == "centralized" else {"personalised from round 1"}
    )
    if mode == "federated":
        assert all(len(curve) == 1 for curve in r["loss_per_round"].values())
    # NAB's three profiles and the detection delay sit beside SKAB's point-wise figures.
    assert set(r["nab"]) == {"standard", "low_fp", "low_fn"} and all(-1000 < v <= 100 for v in r["nab"].values())
    assert r["delay"]["events"] == 2 and 0 <= r["delay"]["detected"] <= 2
    assert set(r["per_facility"]) == {"valve1", "valve2"}
    assert sum(sum(f["counts"].values()) for f in r["per_facility"].values()) == sum(c.values())
    out = results[1][f"skab_{mode}"]
    assert "F1" in out and "Conv-AE" in out and "NAB standard" in out and "mean detection delay" in out


def test_skab_federation_reports_the_global_model_and_each_facility(results):
    losses = results[0]["skab_federated"]["loss_per_round"]
    assert set(losses) == {"federated (global model)", "valve1 (held-out part)", "valve2 (held-out part)"}


def test_pump_compares_three_modes_per_facility(results):
    r = results[0]["pump"]
    assert [row["facility"] for row in r["facilities"]] == ["client_0", "client_1"]
    for row in r["facilities"]:
        for mode in ("alone", "federated", "centralized"):
            f = row[mode]
            assert 0 <= f["caught"] <= f["failures"]
            assert f["roc_auc"] is None or 0.0 <= f["roc_auc"] <= 1.0
    assert r["facilities"][1]["alone"]["failures"] == 1  # client_0's failure lies in the second cut
    assert set(r["loss_per_round"]["federated"]) == {"global model", "client_0", "client_1"}
    assert "client_1" in results[1]["pump"] and "federated" in results[1]["pump"]


@pytest.mark.parametrize("bench", ["pump", "skab"])
def test_each_choice_is_recorded_and_privacy_rows_carry_their_epsilon(variants, bench):
    rows = {row["key"]: row for row in variants[bench]["rows"]}
    other = "fedprox" if bench == "pump" else "fedadam"
    dp = "dp-0.5" if bench == "pump" else "dp-1"
    assert list(rows) == ["fedavg", other, dp, "shared"]
    assert rows[other]["choice"]["strategy"] == other
    defaults = FederationSettings()
    assert rows[other]["choice"]["setting"] == (
        {"proximal_mu": defaults.proximal_mu} if other == "fedprox" else {"server_lr": defaults.server_lr}
    )
    for key, row in rows.items():
        assert row["line"] and row["label"]
        assert row["final_eval_loss"] == row["loss_per_round"][-1] and len(row["loss_per_round"]) == 1
        assert row["choice"]["shared_scaling"] == (key == "shared")
        assert (row["choice"]["agreed_threshold"] is not None) == (key == "shared")
        if key == dp:
            privacy = row["choice"]["dp"]
            assert row["epsilon"] > 0 and row["epsilon"] == privacy["epsilon"] == privacy["epsilon_per_round"][-1]
            assert row["delta"] == privacy["delta"] == 1e-5 and privacy["clipping_norm"] == 1.0
        else:
            assert "epsilon" not in row and row["choice"]["dp"] is None


def test_pump_choice_rows_add_up_their_facilities(variants):
    for row in variants["pump"]["rows"]:
        fac = row["facilities"]
        assert [f["facility"] for f in fac] == ["client_0", "client_1"]
        assert (row["caught"], row["failures"]) == (sum(f["caught"] for f in fac), sum(f["failures"] for f in fac))
        assert 0 <= row["caught"] <= row["failures"] == 1
        per_day = [f["false_alarms_per_day"] for f in fac]
        assert row["false_alarms_per_day_total"] == round(sum(per_day), 3)
        assert row["false_alarms_per_day_mean"] == round(sum(per_day) / 2, 3)
        aucs = [f["roc_auc"] for f in fac if f["roc_auc"] is not None]  # None where a file has no failure rows
        assert aucs and row["roc_auc_mean"] == round(sum(aucs) / len(aucs), 4)
        assert row["train_s"] > 0


def test_skab_choice_rows_follow_their_counts_and_shared_scaling_scores_with_the_agreed_threshold(variants):
    rows = {row["key"]: row for row in variants["skab"]["rows"]}
    for row in rows.values():
        c = row["counts"]
        assert row["f1"] == round(c["tp"] / (c["tp"] + (c["fp"] + c["fn"]) / 2), 4)
        assert row["far_pct"] == round(100 * c["fp"] / (c["fp"] + c["tn"]), 2)
        assert row["mar_pct"] == round(100 * c["fn"] / (c["fn"] + c["tp"]), 2)
        assert sum(c.values()) == sum(rows["fedavg"]["counts"].values())  # every row scores the same test rows
        assert [f["file"] for f in row["files"]] == ["0.csv", "1.csv"]
    agreed = rows["shared"]["choice"]["agreed_threshold"]
    assert agreed > 0 and [f["threshold"] for f in rows["shared"]["files"]] == [round(agreed, 6)] * 2
    assert len({f["threshold"] for f in rows["fedavg"]["files"]}) == 2  # each file's own


def test_a_choice_the_facilities_cannot_keep_is_refused_before_training(plant_dir, skab_sites):
    with pytest.raises(UserError, match="needs at least 3 facilities"):
        run_pump_variants(plant_dir, keys=["median"])
    with pytest.raises(UserError, match="needs at least 3 facilities"):
        run_skab_variants(skab_sites, keys=["trimmed"])


def test_a_federated_benchmark_trains_with_the_seed_it_is_given(plant_dir):
    """``--seed`` reaches the federation: the starting model and every facility's training."""
    csvs = [plant_dir / "client_0.csv", plant_dir / "client_1.csv"]
    settings = FederationSettings(rounds=1, local_epochs=1, min_clients=2)

    def global_model(seed):
        return federate(settings, csvs, ["client_0", "client_1"], lambda m, f: None, 0.0, 1.0, seed=seed).params

    first, again, other = global_model(0), global_model(0), global_model(1)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))


def test_speed_prints_the_ratio_it_stores(results):
    r = results[0]["speed"]
    assert f"{r['ratios']['round_speedup']:.2f}x faster" in results[1]["speed"]


def test_scale_runs_a_coordinator_and_its_facilities_and_reports_each_round(results):
    r = results[0]["scale-3"]
    assert r["facilities"] == 3 and r["rounds_completed"] == 2 and r["failed"] == {}
    assert [p["answered"] for p in r["per_round"]] == [3, 3]
    assert all(p["coordinator_rss_mb"] > 0 and p["coordinator_threads"] > 0 for p in r["per_round"])
    assert r["coordinator_peak_rss_mb"] >= r["coordinator_idle_rss_mb"] > 0
    # Nothing sent twice: from round 2 each facility receives about one model and sends one.
    second = r["per_round"][1]["per_facility"]
    assert second["sent_x_model"] <= 1.1 and second["received_x_model"] <= 1.1, second
    assert "3 facilities, 2 of 2 rounds" in results[1]["scale-3"]


def test_rows_runs_the_cli_on_a_long_file_and_reports_each_command(results):
    (r,) = results[0]["rows"]
    assert r["rows"] == 20_000 and r["file_mb"] > 1
    for step in ("check_cold", "check_warm", "train", "score"):
        assert r[step]["seconds"] > 0 and r[step]["peak_mb"] > 50, step  # a Python with numpy and pandas at least
    assert r["check_cold"]["rows_per_s"] == round(20_000 / r["check_cold"]["seconds"])
    assert "20,000 rows: data check reads" in results[1]["rows"]


def test_report_draws_every_plot_and_the_summary_table(results, variants, skab_sites, tmp_path):
    docs = results[2]
    readme = tmp_path / "README.md"
    readme.write_text("# Title\n\n<!-- bench:start -->\nold\n<!-- bench:end -->\n\nrest\n")
    proc = pumpfl("bench", "report", "--skab", skab_sites, "--out", docs, "--readme", readme, "--reuse")
    assert proc.returncode == 0, proc.stderr
    page = (docs / "BENCHMARKS.md").read_text()
    for png in ("skab_modes", "loss_per_round", "pump_facilities", "skab_timeline", "speed", "choices", "scale", "rows"):
        path = docs / "bench" / f"{png}.png"
        assert path.stat().st_size > 10_000 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
        assert f"(bench/{png}.png)" in page
    fed = results[0]["skab_federated"]
    assert f"| {fed['f1']:.3f} | {fed['far_pct']:.2f} | {fed['mar_pct']:.2f} |" in page
    # One table row per choice and benchmark, DP rows with their epsilon.
    for bench in ("pump", "skab"):
        for row in variants[bench]["rows"]:
            assert f"| {row['label']} |" in page
            if "epsilon" in row:
                assert f"{row['epsilon']:.3g} (delta 1e-05)" in page
    assert "## Scale: many facilities on one coordinator" in page and "| 3 | 2 of 2 |" in page
    assert "## Scale: long files" in page and "| 20,000 |" in page
    assert "## Choosing the detector" in page and "| Facility | files | alone F1 / FAR % / MAR % |" in page
    # The seeds table: each mode's runs by seed, and the counts of all of a mode's runs added up.
    assert "| Mode | seed 0 | seed 1 | seeds together |" in page
    for mode in ("local", "federated"):
        runs = [results[0][f"skab_{mode}"], results[0][f"skab_{mode}_seed1"]]
        assert runs[1]["settings"]["seed"] == 1
        c = {k: runs[0]["counts"][k] + runs[1]["counts"][k] for k in ("tp", "fp", "fn", "tn")}
        f1, far = round(c["tp"] / (c["tp"] + (c["fp"] + c["fn"]) / 2), 4), round(100 * c["fp"] / (c["fp"] + c["tn"]), 2)
        together = f"{f1:.3f} / {far:.2f}"
        cells = " | ".join(f"{r['f1']:.3f} / {r['far_pct']:.2f} / {r['mar_pct']:.2f}" for r in runs)
        assert f"| {mode} | {cells} | **{together} / " in page
    assert "| centralized | " in page and " | - | **" in page  # no seed 1 run of it here
    text = readme.read_text()
    assert "old" not in text and text.startswith("# Title") and text.endswith("rest\n")
    assert "| SKAB, federated | F1 / FAR % / MAR % |" in text


def test_bench_errors_are_one_line(skab_dir, tmp_path):
    assert_user_error(pumpfl_here("bench", "skab", "--data", tmp_path), "holds no CSV files")
    assert_user_error(pumpfl_here("bench", "skab", "--data", tmp_path / "missing"), "is not a folder")
    (tmp_path / "site").mkdir()
    shutil.copy(skab_dir / "anomaly-free" / "anomaly-free.csv", tmp_path / "site" / "normal.csv")
    assert_user_error(pumpfl_here("bench", "skab", "--data", tmp_path, *FAST), "nothing to score")
    lines = (skab_dir / "valve1" / "0.csv").read_text().splitlines(keepends=True)
    (tmp_path / "site" / "short.csv").write_text("".join(lines[:21]))
    assert_user_error(pumpfl_here("bench", "skab", "--data", tmp_path, "--mode", "local", *FAST), "short.csv has 20 rows")
    assert_user_error(pumpfl_here("bench", "pump", "--data", tmp_path / "site"), "needs the pump schema")
    (tmp_path / "one").mkdir()
    shutil.copy(skab_dir / "valve1" / "0.csv", tmp_path / "one" / "client_0.csv")
    assert_user_error(pumpfl_here("bench", "pump", "--data", tmp_path / "one"), "at least two facility CSVs")
    assert_user_error(
        pumpfl_here("bench", "report", "--skab", skab_dir, "--out", tmp_path / "docs", "--reuse"), "no earlier run to reuse"
    )
