"""The pump-plant simulator writes the default data: deterministic, in the pump
schema, plant-like."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest

from pumpfl_gui.core import simulator

EXPECTED_COLUMNS = ["timestamp", *[f"sensor_{i:02d}" for i in range(52)], "machine_status"]
SENSORS = EXPECTED_COLUMNS[1:-1]
FILES = [f"client_{i}.csv" for i in range(5)]


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """The default data generated once for the whole module: folder, metadata and tables."""
    out = tmp_path_factory.mktemp("hybrid")
    metadata = simulator.generate(out)
    tables = {name: pd.read_csv(out / name) for name in FILES}
    return out, metadata, tables


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, length) of each run of True."""
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return list(zip(starts.tolist(), (ends - starts).tolist(), strict=True))


def _longest_repeat(values: pd.Series) -> int:
    """Most consecutive identical readings (empty cells never count: NaN != NaN)."""
    v = values.to_numpy()
    return 1 + max((length for _, length in _runs(v[1:] == v[:-1])), default=0)


def _quiet_rows(table: pd.DataFrame, failures: list[dict]) -> np.ndarray:
    """NORMAL rows away from any failure: no degradation, and temperatures settled
    after restarts."""
    stamps = pd.to_datetime(table["timestamp"])
    quiet = (table["machine_status"] == "NORMAL").to_numpy().copy()
    for failure in failures:
        start = stamps.searchsorted(pd.Timestamp(failure["degradation_start"]))
        end = stamps.searchsorted(pd.Timestamp(failure["recovered_at"])) + 6 * 60
        quiet[start:end] = False
    return quiet


def test_same_seed_gives_identical_bytes(generated, tmp_path):
    out, _, _ = generated
    reports = []
    # ensure_default_data on an empty folder generates with the default seed.
    again = simulator.ensure_default_data(tmp_path / "again", progress=lambda m, f: reports.append(f))
    for name in [*FILES, "metadata.json"]:
        assert (again / name).read_bytes() == (out / name).read_bytes(), name
    assert reports == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert not list(again.glob("*.tmp")), "temporary files left behind"


def test_other_seed_gives_other_bytes(generated, tmp_path):
    out, _, _ = generated
    metadata = simulator.generate(tmp_path, seed=simulator.DEFAULT_SEED + 1)
    assert metadata["seed"] == simulator.DEFAULT_SEED + 1
    for name in FILES:
        assert (tmp_path / name).read_bytes() != (out / name).read_bytes(), name


def test_current_default_data_is_left_alone(generated, tmp_path):
    out, _, _ = generated
    copy = shutil.copytree(out, tmp_path / "hybrid")
    before = {p.name: p.stat().st_mtime_ns for p in copy.iterdir()}
    assert simulator.ensure_default_data(copy) == copy
    assert {p.name: p.stat().st_mtime_ns for p in copy.iterdir()} == before


def test_data_from_an_older_generator_is_made_again(generated, tmp_path):
    out, _, _ = generated
    copy = shutil.copytree(out, tmp_path / "hybrid")
    stale = json.loads((copy / "metadata.json").read_text()) | {"generator_version": "0"}
    (copy / "metadata.json").write_text(json.dumps(stale))
    (copy / "client_2.csv").write_text("old\n")
    simulator.ensure_default_data(copy)
    assert (copy / "metadata.json").read_bytes() == (out / "metadata.json").read_bytes()
    assert (copy / "client_2.csv").read_bytes() == (out / "client_2.csv").read_bytes()


def test_five_files_with_the_pump_schema(generated):
    out, _, tables = generated
    assert sorted(p.name for p in out.glob("*.csv")) == FILES
    for name, table in tables.items():
        header = (out / name).open().readline().rstrip("\n")
        assert header.split(",") == EXPECTED_COLUMNS, name
        assert list(table.columns) == EXPECTED_COLUMNS
        assert set(table["machine_status"]) <= {"NORMAL", "BROKEN", "RECOVERING"}


def test_row_counts_and_minute_timestamps(generated):
    _, _, tables = generated
    rows = [len(tables[name]) for name in FILES]
    assert sum(rows) == 220_320
    assert rows == list(simulator.CLIENT_ROWS)
    assert 10_000 <= rows[0] <= 12_000 and 70_000 <= rows[1] <= 80_000
    for table in tables.values():
        assert table["timestamp"].iloc[0] == "2018-04-01 00:00:00"
        assert table["timestamp"].str.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d").all()
        steps = pd.to_datetime(table["timestamp"]).diff().dropna()
        assert (steps == pd.Timedelta(minutes=1)).all()


def test_seven_failures_each_broken_then_recovering(generated):
    _, _, tables = generated
    per_client = []
    for table in tables.values():
        status = table["machine_status"].to_numpy()
        broken = np.flatnonzero(status == "BROKEN")
        per_client.append(len(broken))
        for i in broken:
            assert status[i + 1] == "RECOVERING"
            assert i >= 2 * 1440, "a failure in the first two days leaves nothing to learn from"
    assert sum(per_client) == 7
    assert per_client[0] == 1 and per_client[1] == 2


def test_recovering_share_is_like_the_public_set(generated):
    _, _, tables = generated
    recovering = sum(int((t["machine_status"] == "RECOVERING").sum()) for t in tables.values())
    assert 0.055 <= recovering / 220_320 <= 0.075


def test_empty_sensor_long_gaps_and_stuck_values(generated):
    out, _, tables = generated
    longest_gap = 0
    longest_repeat = 0
    for name, table in tables.items():
        assert table["sensor_15"].isna().all(), name
        # Stuck readings: the second row repeats the first exactly, as in the real log.
        lines = (out / name).open().read(20_000).split("\n")
        assert lines[1].split(",")[1:] == lines[2].split(",")[1:]
        for sensor in SENSORS:
            if sensor == "sensor_15":
                continue
            gaps = _runs(table[sensor].isna().to_numpy())
            longest_gap = max([longest_gap, *(length for _, length in gaps)])
            longest_repeat = max(longest_repeat, _longest_repeat(table[sensor].iloc[2:]))
    assert longest_gap >= 1440, "some sensor should be missing for a day or more"
    assert longest_repeat >= 30, "some sensor should be stuck for half an hour or more"


def test_no_negative_values_and_typical_magnitudes(generated):
    _, _, tables = generated
    for table in tables.values():
        values = table[SENSORS].to_numpy()
        assert np.nanmin(values) >= 0
    normal = tables["client_0.csv"].query("machine_status == 'NORMAL'")
    assert normal["sensor_00"].mean() == pytest.approx(2.465, rel=0.25)
    assert normal["sensor_04"].mean() == pytest.approx(634.4, rel=0.25)


@pytest.mark.parametrize("pair", [("sensor_01", "sensor_03"), ("sensor_16", "sensor_20"), ("sensor_38", "sensor_41")])
def test_sensors_of_one_group_move_together(generated, pair):
    _, metadata, tables = generated
    for client in metadata["clients"]:
        table = tables[client["file"]]
        normal = table[_quiet_rows(table, client["failures"])]
        assert abs(normal[pair[0]].corr(normal[pair[1]])) > 0.5, client["file"]


def test_degradation_is_visible_before_each_failure(generated):
    _, metadata, tables = generated
    for client in metadata["clients"]:
        table = tables[client["file"]]
        stamps = pd.to_datetime(table["timestamp"])
        quiet = _quiet_rows(table, client["failures"])
        for failure in client["failures"]:
            broken = stamps.searchsorted(pd.Timestamp(failure["broken_at"]))
            deviations = []
            for sensor in failure["sensors"]:
                baseline = table.loc[quiet, sensor]
                last_hour = table[sensor].iloc[broken - 60 : broken].mean()
                deviations.append(abs(last_hour - baseline.mean()) / baseline.std())
            # Several normal standard deviations by the end (the drift grows slowly before that).
            assert max(deviations) > 3, (client["file"], failure["broken_at"], deviations)


def test_metadata_matches_the_files(generated):
    out, metadata, tables = generated
    assert json.loads((out / "metadata.json").read_text()) == metadata
    assert metadata["generator_version"] == simulator.GENERATOR_VERSION
    assert metadata["seed"] == simulator.DEFAULT_SEED
    assert metadata["totals"]["rows"] == 220_320
    assert metadata["totals"]["failures"] == 7
    assert metadata["totals"]["status_counts"]["BROKEN"] == 7
    modes = set()
    for client, name in zip(metadata["clients"], FILES, strict=True):
        table = tables[name]
        assert client["file"] == name
        assert client["rows"] == len(table)
        assert client["first_timestamp"] == table["timestamp"].iloc[0]
        assert client["last_timestamp"] == table["timestamp"].iloc[-1]
        assert (
            client["status_counts"]
            == table["machine_status"].value_counts().reindex(["NORMAL", "BROKEN", "RECOVERING"], fill_value=0).to_dict()
        )
        broken_rows = table.index[table["machine_status"] == "BROKEN"]
        broken_stamps = table.loc[broken_rows, "timestamp"].tolist()
        assert [f["broken_at"] for f in client["failures"]] == broken_stamps
        previous_end = pd.Timestamp("2018-04-01")
        for failure in client["failures"]:
            start, broken, recovered = (pd.Timestamp(failure[k]) for k in ("degradation_start", "broken_at", "recovered_at"))
            assert start >= previous_end, "failures overlap"
            assert pd.Timedelta(hours=6) <= broken - start <= pd.Timedelta(days=3)
            row = table.index[table["timestamp"] == failure["recovered_at"]][0]
            assert table["machine_status"].iloc[row] == "NORMAL"
            assert table["machine_status"].iloc[row - 1] == "RECOVERING"
            assert re.fullmatch(r"[a-z_]+", failure["mode"])
            modes.add(failure["mode"])
            previous_end = recovered
    assert len(modes) == 2, "one facility should fail differently"


def test_two_facilities_asking_at_once_get_one_complete_data_set(tmp_path):
    import threading

    from pumpfl_gui.core.simulator import ensure_default_data

    results, errors = [], []

    def ask():
        try:
            results.append(ensure_default_data(tmp_path / "data"))
        except Exception as exc:  # pragma: no cover - the failure this test exists to catch
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 2
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == [f"client_{i}.csv" for i in range(5)] + ["metadata.json"]
