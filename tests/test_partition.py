"""Splitting the public sensor.csv into the federated layout."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pumpfl_gui.core.errors import DataError
from pumpfl_gui.core.partition import partition_public_csv
from pumpfl_gui.core.simulator import CLIENT_ROWS

COLUMNS = ["timestamp", "sensor_00", "sensor_01", "sensor_15", "sensor_51", "machine_status"]


def _public_csv(path, rows: int, index_header: str = "", broken_at=(30, 70), seed: int = 0):
    """A small file shaped like the public set: unnamed index first, rows in shuffled order."""
    rng = np.random.default_rng(seed)
    status = np.full(rows, "NORMAL", dtype=object)
    for i in broken_at:
        status[i] = "BROKEN"
        status[i + 1 : i + 6] = "RECOVERING"
    table = pd.DataFrame(
        {
            "timestamp": pd.date_range("2018-04-01", periods=rows, freq="min").strftime("%Y-%m-%d %H:%M:%S"),
            "sensor_00": np.round(rng.uniform(2, 3, rows), 3),
            "sensor_01": np.round(rng.uniform(40, 50, rows), 2),
            "sensor_15": np.nan,
            "sensor_51": np.round(rng.uniform(150, 250, rows), 1),
            "machine_status": status,
        }
    )
    shuffled = table.sample(frac=1.0, random_state=seed)  # keeps the original index, as Kaggle's file does
    text = shuffled.to_csv(index=True, index_label=index_header or None, lineterminator="\n")
    path.write_text(text)
    return table  # in time order


def _read_clients(out, clients: int) -> list[pd.DataFrame]:
    return [pd.read_csv(out / f"client_{i}.csv") for i in range(clients)]


@pytest.mark.parametrize("index_header", ["", "Unnamed: 0"])
def test_blocks_are_contiguous_sorted_and_complete(tmp_path, index_header):
    source = _public_csv(tmp_path / "sensor.csv", 103, index_header)
    assert (tmp_path / "sensor.csv").read_text().split("\n")[0].startswith(f"{index_header},timestamp")
    metadata = partition_public_csv(tmp_path / "sensor.csv", tmp_path / "pump", clients=3)

    blocks = _read_clients(tmp_path / "pump", 3)
    for block in blocks:
        assert list(block.columns) == COLUMNS
        assert block["timestamp"].is_monotonic_increasing
        assert block["timestamp"].str.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d").all()
    for earlier, later in zip(blocks, blocks[1:]):
        assert earlier["timestamp"].iloc[-1] < later["timestamp"].iloc[0]
    joined = pd.concat(blocks, ignore_index=True)
    pd.testing.assert_frame_equal(joined, source, check_dtype=False)

    sizes = [len(b) for b in blocks]
    assert sum(sizes) == 103 and max(sizes) - min(sizes) <= 1  # equal blocks for 3 clients
    assert [c["rows"] for c in metadata["clients"]] == sizes
    assert json.loads((tmp_path / "pump" / "metadata.json").read_text()) == metadata
    assert metadata["source"] == "sensor.csv"
    assert "contiguous" in metadata["split_rule"]


def test_failures_are_listed_per_client(tmp_path):
    # Blocks of 34, 35 and 34 rows: the second failure's recovery runs past the first cut.
    _public_csv(tmp_path / "sensor.csv", 103, broken_at=(10, 31))
    metadata = partition_public_csv(tmp_path / "sensor.csv", tmp_path / "pump", clients=3)
    failures = [c["failures"] for c in metadata["clients"]]
    assert [[f["broken_at"] for f in per_client] for per_client in failures] == [
        ["2018-04-01 00:10:00", "2018-04-01 00:31:00"],
        [],
        [],
    ]
    assert [f["recovered_at"] for f in failures[0]] == ["2018-04-01 00:16:00", None]
    assert metadata["totals"]["status_counts"] == {"NORMAL": 91, "BROKEN": 2, "RECOVERING": 10}
    first, last = metadata["clients"][0], metadata["clients"][-1]
    assert first["first_timestamp"] == "2018-04-01 00:00:00"
    assert last["last_timestamp"] == "2018-04-01 01:42:00"


@pytest.mark.slow
def test_five_clients_follow_the_default_layout(tmp_path):
    # The public set's size: the blocks must be exactly the simulator's client sizes.
    _public_csv(tmp_path / "sensor.csv", sum(CLIENT_ROWS), broken_at=(5000, 100_000))
    metadata = partition_public_csv(tmp_path / "sensor.csv", tmp_path / "pump")
    assert [c["rows"] for c in metadata["clients"]] == list(CLIENT_ROWS)
    assert [len(c["failures"]) for c in metadata["clients"]] == [1, 0, 1, 0, 0]


def test_five_clients_on_a_small_file_keep_the_proportions(tmp_path):
    _public_csv(tmp_path / "sensor.csv", 500)
    metadata = partition_public_csv(tmp_path / "sensor.csv", tmp_path / "pump", clients=5)
    sizes = [c["rows"] for c in metadata["clients"]]
    assert sum(sizes) == 500
    for size, share in zip(sizes, CLIENT_ROWS, strict=True):
        assert abs(size - 500 * share / sum(CLIENT_ROWS)) <= 1


def test_every_block_gets_a_row_even_when_rows_are_scarce(tmp_path):
    _public_csv(tmp_path / "sensor.csv", 7, broken_at=())
    metadata = partition_public_csv(tmp_path / "sensor.csv", tmp_path / "pump", clients=5)
    assert all(c["rows"] >= 1 for c in metadata["clients"])
    assert sum(c["rows"] for c in metadata["clients"]) == 7


def _assert_readable(error: DataError) -> None:
    message = str(error)
    assert message.endswith(".") and "\n" not in message and "Traceback" not in message


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="does not exist") as caught:
        partition_public_csv(tmp_path / "nowhere.csv", tmp_path / "pump")
    _assert_readable(caught.value)
    assert not (tmp_path / "pump").exists()


def test_wrong_schema_is_a_data_error(tmp_path):
    (tmp_path / "other.csv").write_text("time,temperature\n2018-04-01 00:00:00,1.5\n")
    with pytest.raises(DataError, match="pump schema") as caught:
        partition_public_csv(tmp_path / "other.csv", tmp_path / "pump")
    _assert_readable(caught.value)


@pytest.mark.parametrize("clients", [0, -1, 104])
def test_impossible_client_count_is_a_data_error(tmp_path, clients):
    _public_csv(tmp_path / "sensor.csv", 103)
    with pytest.raises(DataError) as caught:
        partition_public_csv(tmp_path / "sensor.csv", tmp_path / "pump", clients=clients)
    _assert_readable(caught.value)
    assert not (tmp_path / "pump").exists()
