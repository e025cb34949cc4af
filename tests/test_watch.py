"""The day after training: a saved model watches a growing CSV (core/watch.py, ``pumpfl watch``)."""

import csv
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace

import numpy as np
import pytest
from test_cli import assert_user_error, pumpfl_here

from pumpfl_gui.core.alarm_rules import runs
from pumpfl_gui.core.dataset import load_sensor_csv
from pumpfl_gui.core.detector import Detector, score_data
from pumpfl_gui.core.model_store import load_detector, save_detector
from pumpfl_gui.core.skab_simulator import write_skab_csv
from pumpfl_gui.core.watch import ALARM_LOG_COLUMNS, Watcher

pytestmark = pytest.mark.slow  # the module's model trains (a few seconds)

TRAIN_ROWS = 400  # SKAB's protocol: the first rows of a run are normal and train
ANOMALY_START, ANOMALY_ROWS = 700, 250


@pytest.fixture(scope="module")
def plant(tmp_path_factory):
    """A valve run (closed in rows 700-949) and a model trained alone on its first 400 rows."""
    folder = tmp_path_factory.mktemp("watch")
    source = write_skab_csv(folder / "valve.csv", rows=1200, anomaly_start=ANOMALY_START, anomaly_rows=ANOMALY_ROWS, seed=3)
    data = replace(load_sensor_csv(source), train_rows=TRAIN_ROWS)
    save_detector(Detector.fit(data), folder / "model")
    return source, folder / "model"


def in_other_units(source, out):
    """``source`` with every sensor reading multiplied by 1,000 (kPa logged as Pa, say)."""
    data = load_sensor_csv(source)
    with source.open() as f:
        rows = list(csv.reader(f, delimiter=data.separator))
    header = rows[0]
    scaled = [r[:1] + [f"{float(v) * 1000:.6g}" if h in data.sensors else v for h, v in zip(header[1:], r[1:])] for r in rows[1:]]
    with out.open("w", newline="") as f:
        csv.writer(f, delimiter=data.separator).writerows([header, *scaled])
    return out


def _lines(path):
    return path.read_text().splitlines(keepends=True)


def test_rows_fed_a_few_at_a_time_alarm_exactly_as_scoring_the_whole_file(plant, tmp_path):
    source, model_dir = plant
    detector = load_detector(model_dir)
    whole = score_data(detector, load_sensor_csv(source, sensors=detector.sensors))
    expected = runs(whole.flags, detector.detection.merge_gap)
    assert expected, "the valve closing must alarm for this test to mean anything"

    lines = _lines(source)
    growing = tmp_path / "historian.csv"
    growing.write_text("".join(lines[:301]))  # the header and 300 rows already there
    watcher = Watcher(detector, growing)
    seen = 300
    chunk = 1
    while seen < len(lines) - 1:
        watcher.poll()
        more = lines[1 + seen : 1 + seen + chunk]
        with growing.open("a") as f:
            f.write("".join(more))
        seen += len(more)
        chunk = chunk % 53 + 17  # uneven pieces, as a logger flushes
    watcher.poll()
    found = [(a.start_row, a.end_row if a.end_row is not None else len(lines) - 1) for a in watcher.alarms]
    assert found == [(s, e) for s, e in expected]
    assert watcher.rows_seen == len(lines) - 1
    # Each alarm names its peak and the sensors that made it.
    for alarm in watcher.alarms:
        assert alarm.peak == pytest.approx(np.nanmax(whole.scores[alarm.start_row : alarm.end_row]))
        assert len(alarm.sensors) == 3 and set(alarm.sensors) <= set(detector.sensors)


def test_a_line_still_being_written_waits_for_its_end(plant, tmp_path):
    source, model_dir = plant
    lines = _lines(source)
    growing = tmp_path / "logger.csv"
    growing.write_text("".join(lines[:501]))
    watcher = Watcher(load_detector(model_dir), growing)
    assert watcher.poll().rows == 500
    with growing.open("a") as f:
        f.write(lines[501][:12])  # half a line: the logger is writing it
    assert watcher.poll() is None and watcher.rows_seen == 500
    with growing.open("a") as f:
        f.write(lines[501][12:] + lines[502])
    assert watcher.poll().rows == 502


def test_a_rotated_file_is_read_again_from_its_start(plant, tmp_path):
    source, model_dir = plant
    lines = _lines(source)
    growing = tmp_path / "rotating.csv"
    growing.write_text("".join(lines[:601]))
    watcher = Watcher(load_detector(model_dir), growing)
    watcher.poll()
    growing.write_text("".join(lines[:201]))  # a new day's file under the same name
    update = watcher.poll()
    assert update.restarted and update.rows == 200 and watcher.rows_seen == 200


def test_a_file_from_another_scale_is_warned_about(plant, tmp_path):
    source, model_dir = plant
    other = in_other_units(source, tmp_path / "other-units.csv")
    watcher = Watcher(load_detector(model_dir), other)
    watcher.poll()
    assert watcher.warning and "other units" in watcher.warning
    same = Watcher(load_detector(model_dir), source)
    same.poll()
    assert same.warning is None


def shifted(source, out, spreads=3.0):
    """``source`` with every sensor moved ``spreads`` training standard deviations up: a pump
    like it, but not the one the model knows (too near for the units check to notice)."""
    data = load_sensor_csv(source)
    std = data.values[:TRAIN_ROWS].std(axis=0)
    with source.open() as f:
        rows = list(csv.reader(f, delimiter=data.separator))
    header = rows[0]
    move = {name: spreads * s for name, s in zip(data.sensors, std)}
    moved = [r[:1] + [f"{float(v) + move[h]:.6g}" if h in move else v for h, v in zip(header[1:], r[1:])] for r in rows[1:]]
    with out.open("w", newline="") as f:
        csv.writer(f, delimiter=data.separator).writerows([header, *moved])
    return out


def test_a_file_that_alarms_almost_throughout_is_doubted_by_watch_and_score(plant, tmp_path):
    source, model_dir = plant
    other = shifted(source, tmp_path / "another-pump.csv")
    watcher = Watcher(load_detector(model_dir), other)
    watcher.poll()
    assert watcher.warning and "of its readings are flagged: it may come from another pump" in watcher.warning
    proc = pumpfl_here("score", "--model", model_dir, "--data", other)
    assert proc.returncode == 0 and "warning: another-pump.csv may not suit this model: " in proc.stderr
    assert "warning" not in pumpfl_here("score", "--model", model_dir, "--data", source).stderr


def test_the_federations_global_model_is_refused_with_the_way_out(plant, tmp_path):
    source, model_dir = plant
    det = load_detector(model_dir)
    save_detector(Detector(det.spec, det.model, None, det.sensors, None, det.detection, {"model": "global"}), tmp_path / "g")
    assert_user_error(pumpfl_here("watch", "--model", tmp_path / "g", "--data", source), "a facility's own model")


def test_watch_scores_an_existing_file_and_keeps_an_alarm_log(plant, tmp_path):
    source, model_dir = plant
    log = tmp_path / "alarms.csv"
    proc = pumpfl_here("watch", "--model", model_dir, "--data", source, "--alarms", log)
    assert proc.returncode == 0, proc.stderr
    said = [line for line in proc.stdout.splitlines() if line.startswith("alarm: ")]
    assert said and all(" peak " in line and " sensors " in line for line in said)
    with log.open() as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == ALARM_LOG_COLUMNS and len(rows) - 1 == len(said)
    assert f"{len(said)} alarm" in proc.stderr


@pytest.mark.federation  # not a federation, but a long-running `pumpfl` process followed live
def test_follow_prints_an_alarm_within_seconds_of_the_failure_rows_and_nothing_for_normal_rows(plant, tmp_path):
    source, model_dir = plant
    lines = _lines(source)
    growing = tmp_path / "live.csv"
    growing.write_text("".join(lines[: 1 + TRAIN_ROWS + 150]))  # normal rows only
    proc = subprocess.Popen(
        [sys.executable, "-m", "pumpfl_gui.cli", "watch", "--model", str(model_dir), "--data", str(growing), "--follow"]
        + ["--every", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out: list[tuple[float, str]] = []
    reader = threading.Thread(target=lambda: out.extend((time.monotonic(), line) for line in proc.stdout), name="test-watch")
    reader.start()
    try:
        time.sleep(6)  # the interpreter starts and scores what is there
        with growing.open("a") as f:  # more normal rows, then the valve closing
            f.write("".join(lines[1 + TRAIN_ROWS + 150 : 1 + ANOMALY_START]))
        time.sleep(2)
        assert not out, out  # normal rows: no alarm
        with growing.open("a") as f:
            f.write("".join(lines[1 + ANOMALY_START : 1 + ANOMALY_START + 120]))
        written = time.monotonic()
        deadline = written + 10
        while not out and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGINT)
        err = proc.communicate(timeout=30)[1]
        reader.join(10)
    assert proc.returncode == 0 and "Traceback" not in err, err
    alarms = [(t, line) for t, line in out if line.startswith("alarm: ")]
    assert alarms, (out, err)
    print(f"alarm line {alarms[0][0] - written:.2f} s after the failure rows were written")
    assert alarms[0][0] - written < 5
