"""The sensor CSV loader on SKAB-format, pump-schema and generic files written here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pumpfl_gui.core.data_summary import describe
from pumpfl_gui.core.dataset import (
    BROKEN,
    NORMAL,
    RECOVERING,
    SKAB_SENSORS,
    load_sensor_csv,
)
from pumpfl_gui.core.errors import DataError


def test_every_skab_file_loads_as_skab(skab_dir):
    files = sorted(skab_dir.rglob("*.csv"))
    assert len(files) == 4  # two groups of labelled files and the anomaly-free run
    for path in files:
        data = load_sensor_csv(path)
        raw = pd.read_csv(path, sep=";")  # an independent reading to compare with
        assert data.schema == "skab", path
        assert data.separator == ";"
        assert data.sensors == list(SKAB_SENSORS), path
        assert data.values.dtype == np.float32 and data.values.shape == (len(raw), 8)
        np.testing.assert_allclose(data.values, raw[list(SKAB_SENSORS)].to_numpy(np.float32), rtol=1e-6)
        assert data.time_column == "datetime"
        assert data.timestamps.dtype == np.dtype("datetime64[ns]")
        assert (np.diff(data.timestamps) > np.timedelta64(0, "ns")).all()
        assert set(data.missing_fraction.values()) == {0.0}
        if "anomaly" in raw.columns:
            assert data.label_column == "anomaly"
            assert data.labels.dtype == np.int8
            assert int(data.labels.sum()) == int(raw["anomaly"].sum()) > 0, path
            assert data.dropped == {"changepoint": "label column"}
            assert "changepoint" not in data.sensors
        else:
            assert path.name == "anomaly-free.csv"
            assert data.labels is None and data.label_column is None and data.dropped == {}
        assert data.train_mask().all()


# ---- pump schema -------------------------------------------------------------------------


def pump_frame(rows: int = 3000, seed: int = 7) -> pd.DataFrame:
    """A pump-schema table in time order: sensor_15 empty, sensor_07 with a long gap,
    sensor_08 with a leading gap, sensor_20 stuck for a while, one failure."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"timestamp": pd.date_range("2018-04-01", periods=rows, freq="min")})
    for i in range(52):
        frame[f"sensor_{i:02d}"] = np.round(rng.normal(50 + 10 * i, 3, rows), 4)
    frame["sensor_15"] = np.nan
    frame.loc[rows // 3 : rows // 2 - 1, "sensor_07"] = np.nan  # 3,000 rows: 1000..1499
    frame.loc[:9, "sensor_08"] = np.nan
    frame.loc[200:400, "sensor_20"] = 123.25
    status = np.full(rows, NORMAL, dtype=object)
    broken = rows * 2 // 3
    status[broken] = BROKEN
    status[broken + 1 : broken + 1 + rows // 10] = RECOVERING
    frame["machine_status"] = status
    return frame


def write_pump_csv(path: Path, frame: pd.DataFrame, shuffle_seed: int | None = 3) -> Path:
    out = frame.copy()
    out["timestamp"] = out["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S")
    if shuffle_seed is not None:
        out = out.sample(frac=1.0, random_state=shuffle_seed)
    out.to_csv(path, index=True)  # the Kaggle file's unnamed index column
    return path


def test_pump_file_shuffled_with_gaps(tmp_path):
    frame = pump_frame()
    data = load_sensor_csv(write_pump_csv(tmp_path / "pump.csv", frame))

    assert data.schema == "pump" and data.separator == ","
    assert data.dropped == {"Unnamed: 0": "row index", "sensor_15": "empty throughout"}
    assert data.sensors == [f"sensor_{i:02d}" for i in range(52) if i != 15]
    assert data.rows == len(frame)
    assert data.values.dtype == np.float32
    np.testing.assert_array_equal(data.timestamps, frame["timestamp"].to_numpy("datetime64[ns]"))
    assert any("sorted by 'timestamp'" in note for note in data.notes)

    np.testing.assert_array_equal(data.status, frame["machine_status"].to_numpy(str))
    assert data.label_column == "machine_status"
    np.testing.assert_array_equal(data.labels, (frame["machine_status"] != NORMAL).to_numpy(np.int8))
    assert int(data.train_mask().sum()) == len(frame) - 301

    col = {name: j for j, name in enumerate(data.sensors)}
    s07 = data.values[:, col["sensor_07"]]
    assert (s07[1000:1500] == np.float32(frame.at[999, "sensor_07"])).all()  # holds its last reading
    assert s07[1500] == np.float32(frame.at[1500, "sensor_07"])
    s08 = data.values[:, col["sensor_08"]]
    assert (s08[:10] == np.float32(frame.at[10, "sensor_08"])).all()  # leading gap: first reading
    assert data.missing_fraction["sensor_07"] == pytest.approx(500 / len(frame))
    assert data.missing_fraction["sensor_08"] == pytest.approx(10 / len(frame))
    assert data.missing_fraction["sensor_00"] == 0.0
    untouched = frame[data.sensors].to_numpy(np.float32)
    filled = np.isnan(untouched)
    np.testing.assert_array_equal(data.values[~filled], untouched[~filled])
    assert not np.isnan(data.values).any()


def test_pump_file_in_order_has_no_sort_note_and_keeps_stuck_values(tmp_path):
    frame = pump_frame(rows=600)
    data = load_sensor_csv(write_pump_csv(tmp_path / "pump.csv", frame, shuffle_seed=None))
    assert not any("sorted" in note for note in data.notes)
    s20 = data.values[:, data.sensors.index("sensor_20")]
    assert (s20[200:401] == np.float32(123.25)).all()  # stuck readings are real data, kept


def test_repeated_timestamps_and_time_gaps_are_noted(tmp_path):
    times = list(pd.date_range("2024-01-01", periods=20, freq="10s"))
    times = times[:10] + times[15:]  # one gap of 60 s where the step is 10 s
    times.insert(3, times[3])  # a repeated timestamp
    rows = [f"{t:%Y-%m-%d %H:%M:%S},{i % 7}.5,{i * 2}" for i, t in enumerate(times)]
    path = tmp_path / "gaps.csv"
    path.write_text("time,flow,pressure\n" + "\n".join(rows) + "\n")
    data = load_sensor_csv(path)
    assert data.rows == 15
    assert data.values[3, 0] == np.float32(3.5)  # the first of the repeated rows is kept
    assert any("dropped 1 row(s) whose timestamp repeats" in note for note in data.notes)
    assert any("1 time gap(s) longer than twice the usual step of 10 s (longest 1 min)" in n for n in data.notes)


# ---- generic files ------------------------------------------------------------------------


def test_generic_tab_separated_without_time_with_label(tmp_path):
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=50), rng.normal(size=50)
    label = (np.arange(50) % 10 == 0).astype(int)
    lines = ["a\tb\tlabel"] + [f"{x:.5f}\t{y:.5f}\t{z}" for x, y, z in zip(a, b, label)]
    path = tmp_path / "plant.tsv"
    path.write_text("\n".join(lines) + "\n")
    data = load_sensor_csv(path)
    assert data.schema == "generic" and data.separator == "\t"
    assert data.sensors == ["a", "b"]
    assert data.timestamps is None and data.time_column is None
    assert data.label_column == "label"
    np.testing.assert_array_equal(data.labels, label)
    assert data.status is None
    np.testing.assert_allclose(data.values[:, 0], a, atol=1e-5)


def test_generic_text_status_labels_and_column_dropping(tmp_path):
    lines = ["Timestamp,flow,speed,note,steady,sparse,status"]
    for i in range(10):
        sparse = "3.5" if i in (2, 5, 7) else ""  # 70 % missing
        note = "start" if i == 0 else "ok run"  # text: not a sensor
        state = "Abnormal" if i in (4, 5) else "normal"
        lines.append(f"2024-03-01T00:00:{i:02d},{i * 1.5},{10 - i},{note},7,{sparse},{state}")
    path = tmp_path / "generic.csv"
    path.write_text("\n".join(lines) + "\n")
    data = load_sensor_csv(path)
    assert data.schema == "generic"
    assert data.time_column == "Timestamp"
    assert data.sensors == ["flow", "speed"]
    assert data.dropped == {"note": "not numeric", "steady": "constant value", "sparse": "70 % missing"}
    assert data.label_column == "status"
    np.testing.assert_array_equal(data.labels, [0, 0, 0, 0, 1, 1, 0, 0, 0, 0])
    assert data.status is None  # machine_status strings only in the pump schema


def test_european_export_bom_crlf_decimal_comma(tmp_path):
    text = "Zeit;Druck bar;Temp °C;Störung\r\n"
    text += "".join(f"01.02.2024 10:00:{i:02d};{i},5;-{i},25;{'ja' if i == 3 else 'nein'}\r\n" for i in range(6))
    path = tmp_path / "export.csv"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    data = load_sensor_csv(path)
    assert data.separator == ";"
    assert data.sensors == ["Druck bar", "Temp °C"]
    assert data.dropped == {"Störung": "not numeric"}
    np.testing.assert_allclose(data.values[:, 0], [0.5, 1.5, 2.5, 3.5, 4.5, 5.5])
    np.testing.assert_allclose(data.values[:, 1], [-0.25, -1.25, -2.25, -3.25, -4.25, -5.25])
    assert any("decimal comma" in note for note in data.notes)
    assert data.time_column == "Zeit"  # found by its content: a first column of dates
    assert data.timestamps[0] == np.datetime64("2024-02-01T10:00:00", "ns")  # day first
    assert data.rows == 6


def test_latin1_and_utf16_files(tmp_path):
    text = "time;Temp °C;flow\n" + "".join(f"2024-01-01 00:00:0{i};{20 + i};{i * 2}\n" for i in range(5))
    latin = tmp_path / "latin.csv"
    latin.write_bytes(text.encode("latin-1"))
    data = load_sensor_csv(latin)
    assert data.sensors == ["Temp °C", "flow"]
    assert "read as latin-1 text" in data.notes
    utf16 = tmp_path / "utf16.csv"
    utf16.write_bytes(text.replace("\n", "\r\n").encode("utf-16"))
    assert load_sensor_csv(utf16).sensors == ["Temp °C", "flow"]


def test_na_spellings_and_infinities_are_missing(tmp_path):
    cells = ["1.0", "", "NaN", "NA", "null", "None", "n/a", "-", "inf", "-inf", "2.0"]
    lines = ["x,y"] + [f"{c},{i}" for i, c in enumerate(cells)]
    path = tmp_path / "na.csv"
    path.write_text("\n".join(lines) + "\n")
    data = load_sensor_csv(path, max_missing=0.95)
    assert data.sensors == ["x", "y"]
    assert data.missing_fraction["x"] == pytest.approx(9 / 11)
    assert data.values[:, 0].tolist() == [1.0] * 10 + [2.0]


def test_index_column_named_index_is_dropped_and_numeric_time(tmp_path):
    lines = ["index,Time,value"] + [f"{i + 100},{1_700_000_000 + 60 * i},{i % 3}" for i in range(8)]
    path = tmp_path / "idx.csv"
    path.write_text("\n".join(lines) + "\n")
    data = load_sensor_csv(path)
    assert data.dropped == {"index": "row index"}
    assert data.time_column == "Time"
    assert data.timestamps[0] == np.datetime64("2023-11-14T22:13:20", "ns")
    assert data.sensors == ["value"]


# ---- a fixed sensor list ------------------------------------------------------------------


def test_requested_sensors_order_and_empty_fill(tmp_path):
    frame = pump_frame(rows=500)
    path = write_pump_csv(tmp_path / "pump.csv", frame)
    data = load_sensor_csv(path, sensors=["sensor_03", "sensor_01", "sensor_15", "sensor_20"])
    assert data.sensors == ["sensor_03", "sensor_01", "sensor_15", "sensor_20"]
    assert (data.values[:, 2] == 0).all()
    assert any("'sensor_15' is empty throughout; filled with 0" in note for note in data.notes)
    assert data.missing_fraction["sensor_15"] == 1.0
    np.testing.assert_array_equal(data.values[:, 0], frame["sensor_03"].to_numpy(np.float32))
    assert data.dropped["sensor_00"] == "not in the sensor list"
    assert data.dropped["Unnamed: 0"] == "row index"
    assert data.schema == "pump" and data.labels is not None


def test_requested_constant_sensor_is_kept(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("a,b\n1,5\n2,5\n3,5\n")
    assert load_sensor_csv(path).sensors == ["a"]
    data = load_sensor_csv(path, sensors=["b", "a"])
    assert data.sensors == ["b", "a"]
    assert data.values[:, 0].tolist() == [5.0, 5.0, 5.0]


def test_requested_sensors_errors(tmp_path):
    path = write_pump_csv(tmp_path / "pump.csv", pump_frame(rows=50))
    with pytest.raises(DataError, match=r"lacks the sensor column\(s\) 'sensor_99', 'flow' that the model"):
        load_sensor_csv(path, sensors=["sensor_01", "sensor_99", "flow"])
    with pytest.raises(DataError, match="names 'sensor_01' more than once"):
        load_sensor_csv(path, sensors=["sensor_01", "sensor_01"])
    text = tmp_path / "text.csv"
    text.write_text("a,b\n1,x\n2,y\n3,z\n")
    with pytest.raises(DataError, match="sensor column 'b' holds text such as 'x'"):
        load_sensor_csv(text, sensors=["a", "b"])


# ---- summary and speed --------------------------------------------------------------------


def test_describe_mentions_the_key_facts(tmp_path, skab_dir):
    data = load_sensor_csv(write_pump_csv(tmp_path / "pump.csv", pump_frame()))
    text = describe(data)
    for fragment in [
        "pump.csv",
        "schema: pump (comma-separated)",
        "rows: 3,000",
        "2018-04-01 00:00:00 to 2018-04-03 01:59:00 (2 d 1 h 59 min)",
        "sensors used: 51 (sensor_00, sensor_01, sensor_02, sensor_03, sensor_04, ..., sensor_51)",
        "sensor_15 (empty throughout)",
        "Unnamed: 0 (row index)",
        "missing in used sensors:",
        "NORMAL 2,699, BROKEN 1, RECOVERING 300",
        "rows were not in time order; sorted by 'timestamp'",
    ]:
        assert fragment in text, f"{fragment!r} not in:\n{text}"

    skab = describe(load_sensor_csv(skab_dir / "valve2" / "0.csv"))
    assert "schema: skab (semicolon-separated)" in skab
    assert "labels (anomaly): normal (0)" in skab
    assert "changepoint (label column)" in skab


@pytest.mark.slow
def test_full_size_pump_file_loads(tmp_path):
    """77,000 rows x 54 columns, the size of one facility's share of the public pump set.

    Its load time is a benchmark figure (README), not a test assertion.
    """
    frame = pump_frame(rows=77_000)
    path = write_pump_csv(tmp_path / "big.csv", frame, shuffle_seed=None)
    data = load_sensor_csv(path)
    assert data.rows == 77_000 and len(data.sensors) == 51
    assert data.values.dtype == np.float32 and np.isfinite(data.values).all()


@pytest.mark.parametrize("sep", [",", ";", "\t", "|"])
def test_each_separator_is_detected(tmp_path, sep):
    lines = [sep.join(["timestamp", "flow rate", "pressure"])]
    lines += [sep.join([f"2024-05-01 12:00:{i:02d}", f"{i}.25", f"{i * 3}"]) for i in range(12)]
    path = tmp_path / "sep.csv"
    path.write_text("\n".join(lines) + "\n")
    data = load_sensor_csv(path)
    assert data.separator == sep
    assert data.sensors == ["flow rate", "pressure"]
    assert data.values[-1].tolist() == [11.25, 33.0]


def test_separate_date_and_time_columns_are_joined(tmp_path):
    lines = ["Date,Time,flow"] + [f"2024-05-01,12:00:{i:02d},{i}.5" for i in range(5)]
    path = tmp_path / "split.csv"
    path.write_text("\n".join(lines) + "\n")
    data = load_sensor_csv(path)
    assert data.time_column == "Date"
    assert data.dropped == {"Time": "time of day, joined to 'Date'"}
    assert data.timestamps[-1] == np.datetime64("2024-05-01T12:00:04", "ns")
    assert data.rows == 5 and data.sensors == ["flow"]


def test_empty_time_column_is_dropped(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("timestamp,a\n,1\n,2\n,3\n")
    data = load_sensor_csv(path)
    assert data.timestamps is None and data.dropped == {"timestamp": "empty throughout"}


def test_trailing_separator_on_data_rows_is_ignored(tmp_path):
    path = tmp_path / "trailing.csv"
    path.write_text("time;flow;level\n" + "".join(f"2024-01-01 00:00:0{i};{i}.5;{9 - i};\n" for i in range(5)))
    data = load_sensor_csv(path)
    assert data.sensors == ["flow", "level"]
    assert data.values[0].tolist() == [0.5, 9.0]
    assert "data rows end with an extra separator; ignored" in data.notes
