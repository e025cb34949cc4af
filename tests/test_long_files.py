"""Long CSVs: read a batch of rows at a time by the same rules as a short file, kept in the rows
cache, progress and cancel; rows mapped from the cache are given back after a pass.

A long file here is any file: the tests lower the size from which the batch reader takes over,
its head and its batches, so that small real files cross every batch edge the big ones do.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

import pumpfl_gui.core.csv_bulk as csv_bulk
import pumpfl_gui.core.dataset as dataset
from pumpfl_gui.core import rows_cache
from pumpfl_gui.core.dataset import load_sensor_csv
from pumpfl_gui.core.errors import DataError
from pumpfl_gui.core.skab_simulator import write_skab_csv
from pumpfl_gui.core.task import Cancelled, TaskState
from pumpfl_gui.core.windows import ScaledWindows, Scaler, release, window_view
from pumpfl_gui.gui.plots.envelope import envelope

FIELDS = ["sensors", "schema", "separator", "time_column", "label_column", "dropped", "missing_fraction", "notes"]


@pytest.fixture
def long_files(monkeypatch, tmp_path):
    """Every file counts as long: a head of about 40 lines, batches of 37 rows, a fresh cache."""
    monkeypatch.setattr(dataset, "BULK_BYTES", 0)
    monkeypatch.setattr(dataset, "HEAD_BYTES", 2048)
    monkeypatch.setattr(csv_bulk, "BATCH_ROWS", 37)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def careful(path, **kwargs):
    """The file read whole by the careful reader (what a short file gets)."""
    return dataset._read(path, path.name, kwargs.get("sensors"), 2, 0.5, None)


def assert_same(long, whole):
    for name in FIELDS:
        assert getattr(long, name) == getattr(whole, name), name
    np.testing.assert_array_equal(np.asarray(long.values), whole.values)
    assert long.values.dtype == np.float32
    for name in ("timestamps", "status", "labels"):
        a, b = getattr(long, name), getattr(whole, name)
        assert (a is None) == (b is None), name
        if a is not None:
            np.testing.assert_array_equal(np.asarray(a), b)


def read_in_batches(path, caplog, **kwargs):
    """The file read by the batch reader, which must not have handed it to the careful one."""
    with caplog.at_level(logging.INFO, logger="pumpfl_gui.core.dataset"):
        data = load_sensor_csv(path, **kwargs)
    assert not handed_over(caplog)
    return data


def handed_over(caplog) -> str:
    """Why the batch reader handed the file to the careful one ('' when it did not)."""
    return " ".join(m for m in caplog.messages if m.startswith("reading ") and " whole: " in m)


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_a_default_facility_reads_the_same_in_batches(plant, long_files, caplog):
    path = plant / "client_1.csv"
    whole = careful(path)
    assert whole.rows > 1000 and whole.status is not None and whole.missing_fraction
    assert_same(read_in_batches(path, caplog), whole)


def test_a_skab_file_with_its_labels_reads_the_same_in_batches(tmp_path, long_files, caplog):
    path = write_skab_csv(tmp_path / "valve.csv")
    whole = careful(path)
    assert whole.schema == "skab" and whole.labels.sum() == 300
    assert_same(read_in_batches(path, caplog), whole)
    # A federation's sensor list, in its own order.
    wanted = ["Pressure", "Accelerometer1RMS"]
    assert_same(read_in_batches(path, caplog, sensors=wanted), careful(path, sensors=wanted))


HEADER = "time;flow;pressure;speed"


def _cells(n):
    """Rows of a small ';'-separated export with decimal commas, one cell list a row."""
    return [
        [
            f"2024-01-01 {i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}",
            f"{i},5",
            f"{np.sin(i):.4f}".replace(".", ","),
            str(i % 7),
        ]
        for i in range(n)
    ]


def _text(rows, header=HEADER):
    return "\n".join([header] + [";".join(r) for r in rows]) + "\n"


def test_gaps_infinities_and_decimal_commas_across_batch_edges(tmp_path, long_files, caplog):
    rows = _cells(200)
    rows[0][1] = ""  # flow starts with a gap: filled from its first reading
    for i in (36, 37, 38, 74, 75):  # a gap over the edge of two batches
        rows[i][2] = "NaN" if i % 2 else ""
    rows[120][3] = "inf"
    path = write(tmp_path / "plant.csv", _text(rows))
    whole = careful(path)
    assert whole.notes == ["numbers use a decimal comma"]
    assert 0 < whole.missing_fraction["pressure"] < 0.05 and whole.missing_fraction["speed"] > 0
    assert_same(read_in_batches(path, caplog), whole)


def test_text_that_means_missing_past_the_head_reads_the_same_in_batches(tmp_path, long_files, caplog):
    """Batches look for empty cells only (twice as fast); a later "NA", "-" or "none" among the
    numbers makes the reader start again looking for such text too, with the same result."""
    rows = _cells(300)
    rows[150][1], rows[151][2], rows[260][3], rows[261][1] = "NA", "-", "none", "N/A"
    path = write(tmp_path / "plant.csv", _text(rows))
    whole = careful(path)
    assert 0 < whole.missing_fraction["flow"] < 0.05 and whole.missing_fraction["speed"] > 0
    assert_same(read_in_batches(path, caplog), whole)


def test_a_sensor_the_whole_file_drops_is_squeezed_out(tmp_path, long_files, caplog):
    rows = _cells(300)
    for i, row in enumerate(rows):  # pressure: readings in the head only, 80 % missing over the file
        row[2] = row[2] if i < 60 else ""
    path = write(tmp_path / "sparse.csv", _text(rows))
    whole = careful(path)
    assert whole.dropped == {"pressure": "80 % missing"}
    assert_same(read_in_batches(path, caplog), whole)


def _blank_line(rows):
    return _text(rows[:150]) + "\n" + _text(rows[150:], header="").lstrip("\n")


def _out_of_order(rows):
    return _text(rows[:100] + rows[101:160] + [rows[100]] + rows[160:])


def _starts_late(rows):
    for i, row in enumerate(rows):
        row[3] = row[3] if i > 70 else ""  # the head is about 50 rows
    return _text(rows)


@pytest.mark.parametrize(
    "text, why",
    [(_blank_line, "blank"), (_out_of_order, "order"), (_starts_late, "after the file's head")],
    ids=["blank line", "rows out of order", "a sensor that starts late"],
)
def test_what_the_batches_cannot_promise_is_read_the_careful_way(tmp_path, long_files, caplog, text, why):
    path = write(tmp_path / "odd.csv", text(_cells(200)))
    whole = careful(path)
    with caplog.at_level(logging.INFO, logger="pumpfl_gui.core.dataset"):
        data = load_sensor_csv(path)
    assert why in handed_over(caplog)
    assert_same(data, whole)


def test_a_bad_cell_past_the_head_is_named_by_its_line(tmp_path, long_files):
    rows = _cells(200)
    rows[149][3] = "ERR"
    path = write(tmp_path / "bad.csv", _text(rows))
    with pytest.raises(DataError, match="column 'speed' holds 'ERR' on line 151"):
        load_sensor_csv(path)


def test_a_file_read_once_opens_from_the_cache_and_a_changed_file_is_read_again(tmp_path, long_files, caplog):
    path = write_skab_csv(tmp_path / "valve.csv")
    first = read_in_batches(path, caplog)
    entries = list(rows_cache.folder().iterdir())
    assert len(entries) == 1 and (entries[0] / "meta.json").is_file()
    assert (entries[0].stat().st_mode & 0o077) == 0  # the user's alone
    again = load_sensor_csv(path)
    assert isinstance(again.values, np.memmap)
    assert_same(again, first)
    with pytest.raises(ValueError, match="read-only"):
        again.values[:] = 0  # the cache's readings are never changed in place
    # Rows appended: a new key, read again, with the new rows.
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(path.read_text(encoding="utf-8").splitlines()[-1].replace("2020", "2021") + "\n")
    assert load_sensor_csv(path).rows == first.rows + 1


def test_the_cache_keeps_only_the_newest_entries(tmp_path, long_files):
    for i in range(rows_cache.KEEP + 2):
        load_sensor_csv(write_skab_csv(tmp_path / f"valve{i}.csv", seed=i))
    assert len(list(rows_cache.folder().iterdir())) == rows_cache.KEEP


def test_the_cache_keeps_what_fits_its_size_and_always_the_newest(tmp_path, long_files, monkeypatch):
    def entries():
        return sorted(rows_cache.folder().iterdir(), key=lambda p: p.stat().st_mtime)

    def meta_file(entry):
        return json.loads((entry / "meta.json").read_text())["file"]

    paths = [write_skab_csv(tmp_path / f"valve{i}.csv", seed=i) for i in range(3)]
    load_sensor_csv(paths[0])
    one = rows_cache._size(entries()[0])
    monkeypatch.setattr(rows_cache, "KEEP_BYTES", int(2.5 * one))  # room for two entries
    for path in paths[1:]:
        load_sensor_csv(path)
    assert [Path(meta_file(e)).name for e in entries()] == ["valve1.csv", "valve2.csv"]
    monkeypatch.setattr(rows_cache, "KEEP_BYTES", one // 2)  # room for none: the newest stays
    load_sensor_csv(paths[0])
    assert [Path(meta_file(e)).name for e in entries()] == ["valve0.csv"]


def test_a_long_read_reports_progress_and_can_be_cancelled(tmp_path, long_files):
    path = write_skab_csv(tmp_path / "valve.csv")
    said = []
    load_sensor_csv(path, state=TaskState(lambda text, fraction: said.append((text, fraction)), min_interval=0))
    assert said and said[-1][0].startswith("reading valve.csv: 1,100 rows, about 0 s left")
    assert all(0 <= f <= 1 for _, f in said)
    state = TaskState()
    state.cancel()
    other = write_skab_csv(tmp_path / "other.csv", seed=1)
    with pytest.raises(Cancelled):
        load_sensor_csv(other, state=state)
    assert len(list(rows_cache.folder().iterdir())) == 1  # nothing half-read is kept


def test_rows_mapped_from_the_cache_are_given_back_and_read_again_the_same(tmp_path, long_files):
    data = load_sensor_csv(write_skab_csv(tmp_path / "valve.csv", rows=3000))
    before = np.array(data.values)
    release(data.values, 0, 2000)
    release(data.values[100:], 5, None)
    np.testing.assert_array_equal(np.asarray(data.values), before)
    scaler = Scaler.fit(data.values, 0.5, 60, rows=data.train_mask())
    view = ScaledWindows([(data.values, scaler)], 60)
    whole = window_view(scaler.transform(before), 60)
    view.release(1500)
    np.testing.assert_allclose(view[np.arange(0, 2941, 97)], whole[np.arange(0, 2941, 97)], atol=1e-6)


def test_a_long_preview_is_drawn_as_its_envelope(monkeypatch):
    rng = np.random.default_rng(5)
    values = rng.normal(size=(10_000, 3)).astype(np.float32)
    values[1234, 1] = 50.0  # one spike must stay in the picture
    times = np.arange(10_000).astype("datetime64[s]")
    thin_times, thin = envelope(times, values, 1000)
    assert len(thin) <= 1000 and len(thin_times) == len(thin)
    assert thin[:, 1].max() == 50.0 and np.allclose(thin.min(axis=0), values.min(axis=0))
    assert (np.diff(thin_times.astype(np.int64)) >= 0).all()
    # A chunk at a time, two sensors of three: the same picture.
    import pumpfl_gui.gui.plots.envelope as thinning

    monkeypatch.setattr(thinning, "CHUNK_ROWS", 700)
    chunked_times, chunked = envelope(times, values, 1000, sensors=2)
    np.testing.assert_array_equal(chunked, thin[:, :2])
    np.testing.assert_array_equal(chunked_times, thin_times)
    same_times, same = envelope(times[:500], values[:500], 1000)
    assert same is not None and len(same) == 500 and same_times is not None


def test_rows_spread_over_a_mapped_file_are_read_not_mapped(tmp_path, long_files):
    from pumpfl_gui.core.windows import spread_rows

    data = load_sensor_csv(write_skab_csv(tmp_path / "valve.csv", rows=3000))
    assert isinstance(data.values, np.memmap)
    np.testing.assert_array_equal(spread_rows(data.values, 100), np.asarray(data.values)[::30])
    plain = np.arange(12.0).reshape(6, 2)
    np.testing.assert_array_equal(spread_rows(plain, 4), plain[::2])
