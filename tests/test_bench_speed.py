"""The speed benchmark, run for real on a few thousand rows of the default data around a failure."""

import json

import pytest

from pumpfl_gui.bench import naive
from pumpfl_gui.bench.speed import run_speed
from pumpfl_gui.core.dataset import load_sensor_csv
from pumpfl_gui.core.simulator import generate


@pytest.fixture(scope="module")
def around_failure(tmp_path_factory):
    """Rows 6,000-10,999 of client_0: normal running, its failure (row 9,147) and the recovery."""
    folder = tmp_path_factory.mktemp("plant")
    generate(folder)
    lines = (folder / "client_0.csv").read_text().splitlines(keepends=True)
    path = folder / "around-failure.csv"
    path.write_text(lines[0] + "".join(lines[6001:11001]))
    return path


@pytest.fixture(scope="module")
def result(around_failure):
    progress = []
    r = run_speed(around_failure, max_rows=4000, on_progress=lambda message, fraction: progress.append(fraction))
    r["progress"] = progress
    return r


def test_figures_are_positive_and_agree_with_each_other(result):
    assert result["data"]["rows_in_file"] == 5000
    assert result["data"]["rows"] == 4000
    assert result["data"]["sensors"] == 51
    assert result["data"]["load_s"] > 0
    for name in ("pumpfl", "naive"):
        figures = result[name]
        for key in ("prep_s", "epoch_s", "round_s", "windows_per_s"):
            assert figures[key] > 0, (name, key)
        assert figures["epoch_windows"] > 0 and figures["round_held_out_windows"] > 0
        assert figures["windows_per_s"] == pytest.approx(figures["epoch_windows"] / figures["epoch_s"], rel=1e-3)
        # Each round is timed three times; the figure is the median, each part likewise.
        assert len(figures["round_repeats_s"]) == 3
        assert figures["round_s"] == pytest.approx(sorted(figures["round_repeats_s"])[1], abs=1e-5)
        # A part is timed inside its round, so no part's median exceeds the slowest round; and the
        # parts are what a round is made of (medians of separate repeats need not add up exactly).
        parts = figures["round_parts_s"].values()
        assert max(parts) <= max(figures["round_repeats_s"])
        assert sum(parts) >= 0.5 * min(figures["round_repeats_s"])
    # PumpFL visits every 4th window of 32 rows; the naive pipeline every window of 10 rows.
    assert result["naive"]["epoch_windows"] > 3 * result["pumpfl"]["epoch_windows"]


def test_ratios_are_the_quotients_of_the_times(result):
    ours, theirs, ratios = result["pumpfl"], result["naive"], result["ratios"]
    assert ratios["round_speedup"] == pytest.approx(theirs["round_s"] / ours["round_s"], abs=1e-3)
    assert ratios["round_speedup_counting_our_prep"] == pytest.approx(
        theirs["round_s"] / (ours["round_s"] + ours["prep_s"]), abs=1e-3
    )
    assert ratios["throughput"] == pytest.approx(ours["windows_per_s"] / theirs["windows_per_s"], abs=1e-3)
    assert ratios["prep_speedup"] == pytest.approx(theirs["prep_s"] / ours["prep_s"], abs=1e-3)


def test_detection_is_compared_after_one_round_on_the_same_rows(result):
    detection = result["detection"]
    assert detection["rounds"] == 1
    assert detection["scored_rows"] == 4000 - 31  # rows scored by both: from PumpFL's first full window
    assert 0 < detection["anomalous_rows"] < detection["scored_rows"]
    assert 0.0 <= detection["pumpfl_roc_auc"] <= 1.0
    assert 0.0 <= detection["naive_roc_auc"] <= 1.0


def test_machine_progress_and_json(result):
    machine = result["machine"]
    assert machine["cpu_count"] >= 1 and machine["torch_threads"] >= 1 and machine["torch"]
    assert result["progress"] == sorted(result["progress"]) and result["progress"][-1] == 1.0
    json.dumps(result)


def test_naive_windows_are_built_one_by_one_from_every_row(around_failure):
    data = load_sensor_csv(around_failure)
    scaled = naive.minmax_scale(data)
    assert scaled.shape == (data.rows, 10)
    train = scaled[data.train_mask()]
    assert train.min() == pytest.approx(0.0) and train.max() == pytest.approx(1.0)
    windows, starts = naive.build_windows(scaled, data.train_mask())
    assert windows.shape == (len(starts), 10, naive.WINDOW)
    assert (windows[5] == scaled[starts[5] : starts[5] + naive.WINDOW].T).all()
    assert all(data.train_mask()[s : s + naive.WINDOW].all() for s in starts)
    model = naive.NaiveAutoencoder(10)
    assert naive.all_window_errors(model, data).shape == (data.rows - naive.WINDOW + 1,)


def test_max_rows_must_be_positive(around_failure):
    with pytest.raises(ValueError):
        run_speed(around_failure, max_rows=0)
