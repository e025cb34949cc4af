"""Split the real public pump data set into the federated layout (core layer; pandas only).

Anyone holding Kaggle's "pump_sensor_data" ``sensor.csv`` can turn it into five facilities laid
out exactly like the simulator's default data, so the app can be run on real readings too.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

from pumpfl_gui.core.dataset import BROKEN, PUMP_STATUS_COLUMN, RECOVERING
from pumpfl_gui.core.errors import DataError
from pumpfl_gui.core.files import write_atomic
from pumpfl_gui.core.paths import client_csv_name
from pumpfl_gui.core.simulator import (
    CLIENT_ROWS,
    STATUSES,
    TIMESTAMP_FORMAT,
    metadata_bytes,
)

log = logging.getLogger(__name__)

_SENSOR_NAME = re.compile(r"sensor_\d{2}")

SPLIT_RULE_DEFAULT = (
    "rows sorted by timestamp and cut into 5 contiguous time blocks sized in the proportions of "
    "the simulated default data ({}), so 220,320 rows give exactly those sizes"
).format(" : ".join(f"{n:,}" for n in CLIENT_ROWS))
SPLIT_RULE_EQUAL = (
    "rows sorted by timestamp and cut into {} contiguous time blocks of equal size (sizes differ by at most one row)"
)


def partition_public_csv(src: Path, out_dir: Path, clients: int = 5) -> dict:
    """Split the public ``sensor.csv`` into ``client_0.csv`` … and ``metadata.json`` in out_dir.

    Split rule: the unnamed index column is dropped, rows are sorted by ``timestamp`` (ties keep
    file order) and cut into ``clients`` contiguous time blocks, so each facility holds one
    stretch of the plant's history. With 5 clients the block sizes follow the proportions of the
    simulated default data (``CLIENT_ROWS``: 11,000 : 77,000 : 44,160 : 44,160 : 44,000, which the
    public set's 220,320 rows meet exactly); with any other count the blocks are equal (sizes
    differ by at most one row). Every block gets at least one row. Only ``timestamp``, the
    ``sensor_XX`` columns (in file order) and ``machine_status`` are kept, and timestamps are
    written as ``YYYY-MM-DD HH:MM:SS``, as in the simulator's files.

    Raises DataError when src is missing, is not in the pump schema, or when clients is below
    one or above the number of rows. Returns the metadata written to ``metadata.json``.
    """
    src, out_dir = Path(src), Path(out_dir)
    table = _read_public_csv(src)
    rows = len(table)
    if clients < 1:
        raise DataError(f"The number of clients must be at least 1, not {clients}.")
    if clients > rows:
        raise DataError(f"{src.name} has only {rows} rows, too few to split among {clients} clients.")

    ends = _block_ends(rows, clients)
    out_dir.mkdir(parents=True, exist_ok=True)
    records = []
    start = 0
    for client_id, end in enumerate(ends):
        block = table.iloc[start:end]
        name = client_csv_name(client_id)
        text = block.to_csv(index=False, lineterminator="\n", date_format=TIMESTAMP_FORMAT)
        write_atomic(out_dir / name, text.encode("utf-8"))
        records.append(_describe_block(client_id, name, block))
        start = end
    metadata = {
        "source": src.name,
        "source_rows": rows,
        "split_rule": (SPLIT_RULE_DEFAULT if clients == len(CLIENT_ROWS) else SPLIT_RULE_EQUAL.format(clients)),
        "columns": list(table.columns),
        "clients": records,
        "totals": {
            "rows": rows,
            "failures": sum(len(r["failures"]) for r in records),
            "status_counts": {s: sum(r["status_counts"].get(s, 0) for r in records) for s in STATUSES},
        },
    }
    write_atomic(out_dir / "metadata.json", metadata_bytes(metadata))
    log.info("partitioned %s (%d rows) into %d clients in %s", src, rows, clients, out_dir)
    return metadata


def _read_public_csv(src: Path) -> pd.DataFrame:
    """The file's timestamp, sensor and status columns, sorted by time, or a DataError."""
    if not src.exists():
        raise DataError(f"The public data file {src} does not exist.")
    if not src.is_file():
        raise DataError(f"{src} is a folder, not the public data file (sensor.csv).")
    try:
        table = pd.read_csv(src, low_memory=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{src.name} cannot be read as a CSV file ({exc}).") from exc

    first = str(table.columns[0]) if len(table.columns) else ""
    if first == "" or first.startswith("Unnamed:"):
        table = table.drop(columns=table.columns[0])  # the public set's row index
    sensors = [c for c in table.columns if _SENSOR_NAME.fullmatch(str(c))]
    missing = [c for c in ("timestamp", PUMP_STATUS_COLUMN) if c not in table.columns]
    if missing or not sensors:
        raise DataError(
            f"{src.name} is not in the pump schema: it needs timestamp, sensor_00 … sensor_51 and machine_status columns."
        )
    not_numeric = [c for c in sensors if not pd.api.types.is_numeric_dtype(table[c])]
    if not_numeric:
        raise DataError(f"{src.name} has text where numbers belong in sensor column(s) {', '.join(not_numeric)}.")

    stamps = pd.to_datetime(table["timestamp"], errors="coerce")
    if stamps.isna().any():
        bad = table["timestamp"][stamps.isna()].iloc[0]
        raise DataError(f"{src.name} has a timestamp that cannot be read: {bad!r}.")
    table = table[["timestamp", *sensors, PUMP_STATUS_COLUMN]].assign(timestamp=stamps)
    return table.sort_values("timestamp", kind="stable").reset_index(drop=True)


def _block_ends(rows: int, clients: int) -> list[int]:
    """Exclusive end row of each block, per the split rule in partition_public_csv."""
    weights = np.array(CLIENT_ROWS if clients == len(CLIENT_ROWS) else [1] * clients, dtype=float)
    ends = np.rint(np.cumsum(weights) / weights.sum() * rows).astype(int).tolist()
    for i in range(clients):  # no empty block, however few rows there are
        ends[i] = min(max(ends[i], (ends[i - 1] if i else 0) + 1), rows - (clients - 1 - i))
    return ends


def _describe_block(client_id: int, name: str, block: pd.DataFrame) -> dict:
    stamps = block["timestamp"]
    status = block[PUMP_STATUS_COLUMN].to_numpy()
    broken = status == BROKEN
    down = broken | (status == RECOVERING)
    # A failure starts where a run of BROKEN rows starts; it is over at the next row neither
    # BROKEN nor RECOVERING (None if the block ends first).
    starts = np.flatnonzero(broken & ~np.concatenate(([False], broken[:-1])))
    up_again = np.flatnonzero(~down)
    failures = []
    for i in starts:
        later = up_again[np.searchsorted(up_again, i) :]
        failures.append(
            {
                "broken_at": stamps.iloc[i].strftime(TIMESTAMP_FORMAT),
                "recovered_at": stamps.iloc[later[0]].strftime(TIMESTAMP_FORMAT) if later.size else None,
            }
        )
    counts = dict.fromkeys(STATUSES, 0)
    counts.update({str(k): int(v) for k, v in block[PUMP_STATUS_COLUMN].value_counts().items()})
    return {
        "client": client_id,
        "file": name,
        "rows": len(block),
        "first_timestamp": stamps.iloc[0].strftime(TIMESTAMP_FORMAT),
        "last_timestamp": stamps.iloc[-1].strftime(TIMESTAMP_FORMAT),
        "failures": failures,
        "status_counts": counts,
    }
