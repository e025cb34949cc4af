"""The SKAB-format files the tests make for themselves: SKAB's layout, same bytes every time."""

import numpy as np
import pandas as pd
import pytest

from pumpfl_gui.core.dataset import SKAB_SENSORS, load_sensor_csv
from pumpfl_gui.core.skab_simulator import write_anomaly_free_csv, write_skab_csv, write_skab_folder
from pumpfl_gui.core.windows import step_ratio

HEADER = "datetime;" + ";".join(SKAB_SENSORS) + ";anomaly;changepoint"


def test_the_same_arguments_write_the_same_bytes_and_another_seed_other_bytes(tmp_path):
    write_skab_folder(tmp_path / "a", seed=3)
    write_skab_folder(tmp_path / "b", seed=3)
    write_skab_folder(tmp_path / "c", seed=4)
    names = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.csv"))
    assert [str(n) for n in names] == ["anomaly-free/anomaly-free.csv", "valve1/0.csv", "valve1/1.csv", "valve2/0.csv"]
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
        assert (tmp_path / "a" / name).read_bytes() != (tmp_path / "c" / name).read_bytes(), name
    # Files of one folder are different experiments, not copies.
    assert (tmp_path / "a" / "valve1" / "0.csv").read_bytes() != (tmp_path / "a" / "valve1" / "1.csv").read_bytes()


def test_a_labelled_file_has_skabs_layout_and_one_anomaly_block_where_asked(tmp_path):
    path = write_skab_csv(tmp_path / "deep" / "0.csv", rows=700, anomaly_start=450, anomaly_rows=150, seed=1)
    lines = path.read_text().splitlines()
    assert lines[0] == HEADER and len(lines) == 701
    assert lines[1].startswith("2020-03-09 10:00:00;") and lines[2].startswith("2020-03-09 10:00:01;")
    assert lines[1].endswith(";0.0;0.0") and lines[451].endswith(";1.0;1.0")

    data = load_sensor_csv(path)
    assert (data.schema, data.separator, data.time_column, data.label_column) == ("skab", ";", "datetime", "anomaly")
    assert data.sensors == list(SKAB_SENSORS) and data.dropped == {"changepoint": "label column"}
    assert (np.diff(data.timestamps) == np.timedelta64(1, "s")).all()
    assert np.flatnonzero(data.labels).tolist() == list(range(450, 600))

    raw = pd.read_csv(path, sep=";")
    assert set(raw["anomaly"]) == set(raw["changepoint"]) == {0.0, 1.0}
    # As in SKAB: the first anomalous row, valve fully closed, valve starting to open, the first
    # row after.
    assert np.flatnonzero(raw["changepoint"]).tolist() == [450, 500, 550, 600]


def test_a_closing_valve_shows_in_flow_pressure_current_and_vibration(tmp_path):
    raw = pd.read_csv(write_skab_csv(tmp_path / "0.csv", seed=2), sep=";")
    closed, normal = raw[raw["anomaly"] == 1], raw[raw["anomaly"] == 0]
    shift = (closed[list(SKAB_SENSORS)].mean() - normal[list(SKAB_SENSORS)].mean()) / normal[list(SKAB_SENSORS)].std()
    assert shift["Volume Flow RateRMS"] < -5 and shift["Pressure"] > 2
    assert shift["Current"] > 1 and shift["Accelerometer1RMS"] > 2 and shift["Accelerometer2RMS"] > 2
    assert abs(shift["Voltage"]) < 0.5


def test_temperatures_warm_through_the_file_and_wander_in_the_training_rows(tmp_path):
    data = load_sensor_csv(write_skab_csv(tmp_path / "0.csv", seed=5))
    ratio = dict(zip(data.sensors, step_ratio(data.values[:400])))
    assert ratio["Temperature"] < 0.5 and ratio["Thermocouple"] < 0.5
    assert all(r > 1.2 for s, r in ratio.items() if s not in ("Temperature", "Thermocouple"))
    for sensor in ("Temperature", "Thermocouple"):
        column = data.values[:, data.sensors.index(sensor)]
        assert column[-50:].mean() > column[:50].mean()


def test_the_anomaly_free_run_has_no_labels_and_the_asked_length(tmp_path):
    path = write_anomaly_free_csv(tmp_path / "anomaly-free.csv", rows=250)
    assert path.read_text().splitlines()[0] == HEADER.removesuffix(";anomaly;changepoint")
    data = load_sensor_csv(path)
    assert (data.schema, data.rows, data.sensors) == ("skab", 250, list(SKAB_SENSORS))
    assert data.labels is None and data.dropped == {}


def test_an_anomaly_that_does_not_fit_is_refused(tmp_path):
    with pytest.raises(ValueError, match="do not fit"):
        write_skab_csv(tmp_path / "0.csv", rows=500, anomaly_start=400, anomaly_rows=200)
