"""Reading and checking sensor CSVs: pump schema, SKAB schema and generic numeric CSVs.

Core layer: numpy/pandas only, no Qt, no Flower. One entry point, :func:`load_sensor_csv`,
returns a :class:`SensorData` or raises :class:`~pumpfl_gui.core.errors.DataError` with one
human sentence; :func:`describe` turns a :class:`SensorData` into a short summary.

How a file is read (these rules are shown to users, keep them in step with the code):

File
  * The file must exist, be a regular readable file, hold text and not be empty. Binary files
    (NUL bytes or control characters in the first 8 KB; zip/Excel, gzip, PDF, images) and JSON,
    HTML or XML are refused with a hint to export a CSV.
  * Text encodings tried in order: UTF-8 (a byte-order mark is allowed), UTF-16 when it starts
    with its byte-order mark, then Latin-1, but Latin-1 only when the result holds no control
    characters; anything else is refused. Windows and Unix line endings both work.
  * No line may be longer than 1 MiB.
  * The separator is detected (comma, semicolon, tab or pipe) with ``csv.Sniffer`` on the first
    lines and checked against the header line. In ``;``-separated files numbers written with a
    decimal comma (``0,25``) are read as decimals.
  * The first line is the header. Column names must be unique (spaces around them are
    ignored); a first line made only of numbers means the header is missing and is refused.
    Every data row must have no more fields than the header (a row with fewer is padded with
    missing values), except that an empty last field on every row (a trailing separator) is
    ignored. Blank lines are skipped. There must be at least ``min_rows`` data rows.

Columns, in this order
  * Row index: a first column without a name, or named ``Unnamed: 0``/``index``/``idx``,
    holding unique whole numbers, is dropped ("row index").
  * Time: the first column named like ``timestamp``, ``datetime``, ``date``, ``time``, ``ts``
    (any case); failing that, a first column whose text parses as dates. Separate ``date`` and
    ``time`` text columns are read together. Times with a UTC offset are converted to UTC.
    Ambiguous dates are read month first, except in files with decimal commas (European
    exports), where they are read day first. A numeric time column is read as seconds
    (milliseconds when the numbers are that large) since 1970. A cell that is not a date is an
    error; rows with an empty time are dropped (noted); a time column empty throughout is
    dropped.
  * Labels (never sensors): ``machine_status`` (pump schema: NORMAL/BROKEN/RECOVERING, label 1
    when not NORMAL), else the first column named like ``label``, ``anomaly``, ``is_anomaly``,
    ``fault``, ``failure``, ``target``, ``attack``, ``status``, ``outlier``. It must hold 0/1,
    true/false, yes/no or a normal/abnormal-style word on every row; other values are an error.
    Further label-named columns and ``changepoint`` are dropped ("label column").
  * Sensors: every other column. Missing values are empty cells and the usual spellings
    (NaN, NA, N/A, null, None, n/a, ``-``); infinite values count as missing too. A column
    that is mostly text is dropped ("not numeric"); a numeric column with stray text in it
    (``ERR``, ``#VALUE!``) is an error naming the column, line and value. Without a sensor
    list, a column that is empty throughout, more than ``max_missing`` missing, or constant is
    dropped. At least one sensor must remain.
  * ``sensors=[...]`` (the list a model or a federation expects) uses exactly those columns in
    that order: a missing one is an error; a requested column empty throughout is filled with
    0 (noted); nothing requested is dropped for gaps or constancy; other columns are dropped
    ("not in the sensor list"). Requested names are never taken as time or label columns.

Rows
  * Rows are sorted by time when they are not in order (noted); rows repeating an earlier
    timestamp are dropped, the first kept (count noted); gaps longer than twice the median
    time step are counted and the longest is noted.
  * ``missing_fraction`` is measured per used sensor before filling; then gaps are filled
    forward (a sensor holds its last reading, as plant historians do) and leading gaps are
    filled backward from the first reading. Values are float32.

Schema: "pump" when a ``machine_status`` column is present, "skab" when SKAB's eight sensor
columns are present, otherwise "generic".
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

# The "File" rules are carried out in csv_text, the "Columns" rules in column_roles, the
# "Rows" rules and the choice of sensors here.
from .column_roles import (
    BROKEN,
    NORMAL,
    PUMP_STATUS_COLUMN,
    PUMP_STATUSES,
    RECOVERING,
    find_roles,
    parse_times,
    read_labels,
    sensor_columns,
)
from .csv_text import SEPARATOR_NAMES, read_csv_table, shorten
from .errors import DataError

__all__ = [
    "BROKEN",
    "NORMAL",
    "PUMP_STATUSES",
    "PUMP_STATUS_COLUMN",
    "RECOVERING",
    "SKAB_SENSORS",
    "SensorData",
    "describe",
    "load_sensor_csv",
]

log = logging.getLogger(__name__)

SKAB_SENSORS = (
    "Accelerometer1RMS",
    "Accelerometer2RMS",
    "Current",
    "Pressure",
    "Temperature",
    "Thermocouple",
    "Voltage",
    "Volume Flow RateRMS",
)


@dataclass
class SensorData:
    """One facility's readings, cleaned, sorted by time, ready for windowing."""

    path: Path
    schema: str  # "pump" | "skab" | "generic"
    separator: str
    sensors: list[str]  # sensor columns used, in file order
    values: np.ndarray  # float32 (rows, len(sensors)), gaps filled by the documented rule
    timestamps: np.ndarray | None  # datetime64[ns] (rows,), or None without a time column
    status: np.ndarray | None  # pump schema: machine_status strings (rows,), else None
    labels: np.ndarray | None  # int8 0/1 (rows,): 1 = anomalous row; None without labels
    time_column: str | None = None
    label_column: str | None = None
    dropped: dict[str, str] = field(default_factory=dict)  # column -> why it is not a sensor
    missing_fraction: dict[str, float] = field(default_factory=dict)  # used sensor -> 0..1
    notes: list[str] = field(default_factory=list)  # what the loader changed (sorted, ...)
    train_rows: int | None = None  # only the first rows may train (a benchmark's fixed split)

    @property
    def rows(self) -> int:
        return int(self.values.shape[0])

    @property
    def interval_s(self) -> float | None:
        """The median time between readings in seconds; None without a time column."""
        if self.timestamps is None or self.rows < 2:
            return None
        step = float(np.median(np.diff(self.timestamps)) / np.timedelta64(1, "s"))
        return step if step > 0 else None

    def train_mask(self) -> np.ndarray:
        """Rows a facility may train on: NORMAL rows for the pump schema, all rows otherwise;
        never past ``train_rows`` when that is set."""
        mask = self.status == NORMAL if self.status is not None else np.ones(self.rows, dtype=bool)
        if self.train_rows is not None:
            mask[self.train_rows :] = False
        return mask


def check_not_reserved(data: SensorData, sensors: list[str]) -> None:
    """DataError when a sensor list someone else chose (a federation's) names a column this
    file uses as its time or label column: a facility's labels never leave it as readings."""
    reserved = {column: role for column, role in ((data.time_column, "time"), (data.label_column, "label")) if column}
    clash = [f"'{s}' is its {reserved[s]} column" for s in sensors if s in reserved]
    if clash:
        raise DataError(f"{data.path.name} cannot read the federation's sensor list: {'; '.join(clash)}, never a sensor.")


# ---- rows ---------------------------------------------------------------------------------


def _duration(seconds: float) -> str:
    """'45 s', '12 min', '3 h 5 min', '2 d 1 h 59 min'."""
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:g} s"
    minutes = int(round(seconds / 60))
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else "", f"{minutes} min" if minutes else ""]
    return " ".join(p for p in parts if p)


def _order_rows(times: np.ndarray, column: str, notes: list[str]) -> np.ndarray:
    """Row positions to keep, in time order: empty times and repeated timestamps dropped."""
    keep = np.flatnonzero(~np.isnat(times))
    if len(keep) < len(times):
        notes.append(f"dropped {len(times) - len(keep):,} row(s) with an empty '{column}'")
    t = times[keep]
    if len(t) > 1 and (np.diff(t) < np.timedelta64(0, "ns")).any():
        order = np.argsort(t, kind="stable")
        keep, t = keep[order], t[order]
        notes.append(f"rows were not in time order; sorted by '{column}'")
    if len(t) > 1:
        repeat = np.concatenate(([False], t[1:] == t[:-1]))
        if repeat.any():
            notes.append(f"dropped {int(repeat.sum()):,} row(s) whose timestamp repeats an earlier row")
            keep, t = keep[~repeat], t[~repeat]
    if len(t) > 2:
        steps = np.diff(t).astype("timedelta64[ns]").astype(np.int64) / 1e9
        median = float(np.median(steps))
        if median > 0:
            gaps = steps[steps > 2 * median]
            if len(gaps):
                notes.append(
                    f"{len(gaps):,} time gap(s) longer than twice the usual step of {_duration(median)} "
                    f"(longest {_duration(gaps.max())})"
                )
    return keep


def _fill_gaps(values: np.ndarray) -> None:
    """In place: a sensor holds its last reading; a leading gap takes the first reading."""
    for j in np.flatnonzero(np.isnan(values).any(axis=0)):
        col = values[:, j]
        seen = ~np.isnan(col)
        last = np.maximum.accumulate(np.where(seen, np.arange(len(col)), -1))
        last[last < 0] = np.flatnonzero(seen)[0]
        values[:, j] = col[last]


# ---- sensors ------------------------------------------------------------------------------


def _quote(values, limit: int = 6) -> str:
    items = [f"'{v}'" for v in values]
    if len(items) > limit:
        items = items[:limit] + [f"... ({len(items) - limit} more)"]
    return ", ".join(items)


def _checked_sensor_list(sensors: list[str] | None, frame: pd.DataFrame, name: str) -> list[str] | None:
    """The requested sensor list, once it is known to be non-empty, unrepeated and all present."""
    if sensors is None:
        return None
    requested = list(sensors)
    if not requested:
        raise DataError(f"{name}: the sensor list to read is empty.")
    twice = sorted({s for s in requested if requested.count(s) > 1})
    if twice:
        raise DataError(f"{name}: the sensor list names {_quote(twice)} more than once.")
    absent = [s for s in requested if s not in frame.columns]
    if absent:
        raise DataError(
            f"{name} lacks the sensor column(s) {_quote(absent)} that the model or federation expects; "
            f"its columns are {_quote(list(frame.columns), 8)}."
        )
    return requested


def _stack(arrays: list[np.ndarray], keep: np.ndarray, n_rows: int) -> np.ndarray:
    """The kept rows of the sensor arrays as one float64 matrix."""
    # Column-major while sensors are judged one by one; C order again for the returned values.
    in_order = len(keep) == n_rows and bool((keep[1:] > keep[:-1]).all())
    matrix = np.empty((len(keep), len(arrays)), order="F")
    for j, column_values in enumerate(arrays):
        matrix[:, j] = column_values if in_order else column_values[keep]
    return matrix


def _used_sensors(
    matrix: np.ndarray,
    columns: list[str],
    fixed: bool,
    max_missing: float,
    dropped: dict[str, str],
    notes: list[str],
    name: str,
) -> tuple[list[str], np.ndarray, dict[str, float]]:
    """(sensors used, their float32 values with gaps filled, missing fraction per used sensor).

    With a ``fixed`` sensor list every column is used (one empty throughout is filled with 0);
    otherwise empty, too sparse and constant columns are added to ``dropped``.
    """
    finite = np.isfinite(matrix)
    missing = 1.0 - finite.mean(axis=0)
    for j in np.flatnonzero(missing > 0):
        matrix[~finite[:, j], j] = np.nan  # infinities count as missing
    highest, lowest = np.fmax.reduce(matrix, axis=0), np.fmin.reduce(matrix, axis=0)  # NaN-blind
    use = np.ones(len(columns), dtype=bool)
    if fixed:
        for j, column in enumerate(columns):
            if missing[j] >= 1.0:
                notes.append(f"sensor '{column}' is empty throughout; filled with 0")
                matrix[:, j] = 0.0
    else:
        spread = highest - lowest
        for j, column in enumerate(columns):
            if missing[j] >= 1.0:
                dropped[column] = "empty throughout"
            elif missing[j] > max_missing:
                dropped[column] = f"{missing[j] * 100:.0f} % missing"
            elif spread[j] == 0:
                dropped[column] = "constant value"
            else:
                continue
            use[j] = False
    used = [c for c, u in zip(columns, use) if u]
    if not used:
        why = "; ".join(f"'{c}': {r}" for c, r in dropped.items()) or "no columns besides time and labels"
        raise DataError(
            f"{name} has no usable numeric sensor column ({shorten(why, 200)}); "
            "it needs at least one column of readings that varies."
        )
    too_big = np.flatnonzero(use & (np.fmax(np.abs(highest), np.abs(lowest)) > np.finfo(np.float32).max))
    if len(too_big):
        raise DataError(f"{name}: column '{columns[too_big[0]]}' holds readings too large for 32-bit floats; rescale them.")
    missing_fraction = {c: float(m) for c, m in zip(used, missing[use])}
    values = matrix[:, use].astype(np.float32)
    _fill_gaps(values)
    return used, np.ascontiguousarray(values), missing_fraction


# ---- the loader ---------------------------------------------------------------------------


def load_sensor_csv(
    path: str | Path,
    sensors: list[str] | None = None,
    min_rows: int = 2,
    max_missing: float = 0.5,
) -> SensorData:
    """Read one facility's sensor CSV by the rules in this module's docstring.

    ``sensors`` fixes the sensor columns and their order (a model's or a federation's list).
    Raises :class:`DataError` with one human sentence for anything a user can fix.
    """
    path = Path(path).expanduser()
    name = path.name or str(path)
    notes: list[str] = []
    table = read_csv_table(path, name, notes)
    frame, lines = table.frame, table.lines
    if frame.empty:
        raise DataError(f"{name} has a header line but no data rows; it needs at least {max(min_rows, 1)} rows of readings.")
    requested = _checked_sensor_list(sensors, frame, name)
    roles = find_roles(frame, set(requested or ()))
    time_col, label_col, dropped = roles.time_column, roles.label_column, roles.dropped

    schema = "generic"
    if roles.pump_status:
        schema = "pump"
    elif set(SKAB_SENSORS) <= set(frame.columns):
        schema = "skab"

    # European exports (decimal comma) write day before month: 01.02.2024 is 1 February.
    times = parse_times(roles.time_cells, time_col, name, lines, notes, table.decimal == ",") if time_col else None
    status = labels = None
    if label_col:
        status, labels = read_labels(frame[label_col], label_col, schema == "pump", name, lines)
    columns, arrays = sensor_columns(frame, requested, roles, table.decimal, name, lines)

    # Rows: time order, repeated timestamps, minimum count.
    keep = _order_rows(times, time_col, notes) if times is not None else np.arange(len(frame))
    if len(keep) < max(min_rows, 1):
        raise DataError(f"{name} has only {len(keep)} usable row(s); at least {max(min_rows, 1)} are needed.")
    if times is not None:
        times = times[keep]
    if status is not None:
        status = status[keep]
    if labels is not None:
        labels = labels[keep]

    matrix = _stack(arrays, keep, len(frame))
    used, values, missing_fraction = _used_sensors(matrix, columns, requested is not None, max_missing, dropped, notes, name)
    data = SensorData(
        path=path,
        schema=schema,
        separator=table.separator,
        sensors=used,
        values=values,
        timestamps=times,
        status=status,
        labels=labels,
        time_column=time_col,
        label_column=label_col,
        dropped=dropped,
        missing_fraction=missing_fraction,
        notes=notes,
    )
    log.info("loaded %s: schema %s, %d rows, %d sensors", path, schema, data.rows, len(used))
    return data


# ---- summary ------------------------------------------------------------------------------


def describe(data: SensorData) -> str:
    """A short multi-line human summary of a loaded file (``pumpfl data check`` prints it)."""
    out = [
        f"file: {data.path}",
        f"schema: {data.schema} ({SEPARATOR_NAMES.get(data.separator, repr(data.separator))}-separated)",
        f"rows: {data.rows:,}",
    ]
    if data.timestamps is not None and data.rows:
        first, last = data.timestamps[0], data.timestamps[-1]
        seconds = (last - first) / np.timedelta64(1, "s")
        out.append(f"time: {pd.Timestamp(first)} to {pd.Timestamp(last)} ({_duration(seconds)}), column '{data.time_column}'")
    else:
        out.append("time: no time column (rows taken in file order)")
    names = data.sensors if len(data.sensors) <= 10 else data.sensors[:5] + ["...", data.sensors[-1]]
    out.append(f"sensors used: {len(data.sensors)} ({', '.join(names)})")
    if data.dropped:
        items = [f"{c} ({why})" for c, why in data.dropped.items()]
        out.append(f"dropped columns ({len(items)}): " + "; ".join(items))
    else:
        out.append("dropped columns: none")
    if data.missing_fraction:
        overall = sum(data.missing_fraction.values()) / len(data.missing_fraction)
        worst = max(data.missing_fraction, key=data.missing_fraction.get)
        line = f"missing in used sensors: {overall * 100:.2f} %"
        if data.missing_fraction[worst] > 0:
            line += f" (most: {worst} {data.missing_fraction[worst] * 100:.1f} %), gaps filled with the last reading"
        out.append(line)
    if data.status is not None:
        found, counts = np.unique(data.status, return_counts=True)
        by_status = dict(zip(found.tolist(), counts.tolist()))
        order = [s for s in PUMP_STATUSES if s in by_status]
        out.append(f"labels ({data.label_column}): " + ", ".join(f"{s} {by_status[s]:,}" for s in order))
    elif data.labels is not None:
        ones = int(data.labels.sum())
        out.append(f"labels ({data.label_column}): normal (0) {data.rows - ones:,}, anomalous (1) {ones:,}")
    else:
        out.append("labels: none")
    if data.notes:
        out.append("notes:")
        out.extend(f"  - {note}" for note in data.notes)
    return "\n".join(out)
