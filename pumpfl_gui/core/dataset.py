"""Reading and checking sensor CSVs: pump schema, SKAB schema and generic numeric CSVs.

Core layer: numpy/pandas only, no Qt, no Flower. One entry point, :func:`load_sensor_csv`,
returns a :class:`SensorData` or raises :class:`~pumpfl_gui.core.errors.DataError` with one
human sentence; :func:`~pumpfl_gui.core.data_summary.describe` turns a :class:`SensorData`
into a short summary. A long file is read a block at a time (:mod:`~pumpfl_gui.core.csv_bulk`)
by the same rules, decided on its head, and kept in :mod:`~pumpfl_gui.core.rows_cache`.

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

from . import rows_cache

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
from .csv_bulk import BULK_BYTES, HEAD_BYTES, BlockPlan, BlockRows, NotBulk, fill_leading, read_blocks, squeeze, time_format
from .csv_text import read_csv_table, shorten
from .errors import DataError
from .task import TaskState
from .wording import duration

__all__ = [
    "BROKEN",
    "NORMAL",
    "PUMP_STATUSES",
    "PUMP_STATUS_COLUMN",
    "RECOVERING",
    "SKAB_SENSORS",
    "SensorData",
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
        gaps = np.diff(self.timestamps).astype("timedelta64[ns]").view(np.int64)  # integers: a median ~50x faster
        step = float(np.median(gaps)) / 1e9
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
                    f"{len(gaps):,} time gap(s) longer than twice the usual step of {duration(median)} "
                    f"(longest {duration(gaps.max())})"
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
    missing = (~finite).sum(axis=0) / max(len(matrix), 1)
    for j in np.flatnonzero(missing > 0):
        matrix[~finite[:, j], j] = np.nan  # infinities count as missing
    highest, lowest = np.fmax.reduce(matrix, axis=0), np.fmin.reduce(matrix, axis=0)  # NaN-blind
    use = _choose_sensors(matrix, columns, missing, highest, lowest, fixed, max_missing, dropped, notes, name)
    too_big = np.flatnonzero(use & (np.fmax(np.abs(highest), np.abs(lowest)) > np.finfo(np.float32).max))
    if len(too_big):
        raise DataError(f"{name}: column '{columns[too_big[0]]}' holds readings too large for 32-bit floats; rescale them.")
    missing_fraction = {c: float(m) for c, m, u in zip(columns, missing, use) if u}
    values = matrix[:, use].astype(np.float32)
    _fill_gaps(values)
    return [c for c, u in zip(columns, use) if u], np.ascontiguousarray(values), missing_fraction


def _used_rows(
    rows: BlockRows, plan: BlockPlan, fixed: bool, max_missing: float, dropped: dict[str, str], notes: list[str], name: str
) -> tuple[list[str], np.ndarray, dict[str, float]]:
    """:func:`_used_sensors` for a long file read a block at a time: the blocks counted each
    column's gaps and range. A column the head dropped but the whole file keeps needs the
    careful reader; one the head kept but the whole file drops is squeezed out in place."""
    values, k = rows.values, len(plan.sensors)
    if values is None:
        values = rows.written.mapped(k)
    columns = [c for c, _ in plan.sensors + plan.extras]
    missing = rows.missing / max(len(values), 1)
    use = _choose_sensors(values, columns, missing, rows.highest, rows.lowest, fixed, max_missing, dropped, notes, name)
    if use[k:].any():
        raise NotBulk(f"column '{columns[k + int(np.argmax(use[k:]))]}' has readings only after the file's head")
    if not use[:k].all():
        values = squeeze(values, use[:k])
    fill_leading(values)
    used = [c for c, u in zip(columns, use) if u]
    return used, values, {c: float(m) for c, m, u in zip(columns, missing, use) if u}


def _choose_sensors(
    matrix: np.ndarray,
    columns: list[str],
    missing: np.ndarray,
    highest: np.ndarray,
    lowest: np.ndarray,
    fixed: bool,
    max_missing: float,
    dropped: dict[str, str],
    notes: list[str],
    name: str,
) -> np.ndarray:
    """Which columns are sensors (a bool mask), by the "Sensors" rules; with a ``fixed`` list a
    column empty throughout is filled with 0 in ``matrix``."""
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
    if not use.any():
        why = "; ".join(f"'{c}': {r}" for c, r in dropped.items()) or "no columns besides time and labels"
        raise DataError(
            f"{name} has no usable numeric sensor column ({shorten(why, 200)}); "
            "it needs at least one column of readings that varies."
        )
    return use


# ---- the loader ---------------------------------------------------------------------------


def load_sensor_csv(
    path: str | Path,
    sensors: list[str] | None = None,
    min_rows: int = 2,
    max_missing: float = 0.5,
    state: TaskState | None = None,
    batches: bool | None = None,
) -> SensorData:
    """Read one facility's sensor CSV by the rules in this module's docstring.

    ``sensors`` fixes the sensor columns and their order (a model's or a federation's list).
    Raises :class:`DataError` with one human sentence for anything a user can fix. A long file
    (``BULK_BYTES`` or more) is read a block at a time, reporting progress to ``state`` and
    stopping when it is cancelled, and kept in the rows cache, from which it opens the next
    time in about a second; ``batches`` True reads any file so (the self-test proves the
    reader is in the app).
    """
    path = Path(path).expanduser()
    name = path.name or str(path)
    try:
        long_file = path.is_file() and (batches or (batches is None and path.stat().st_size >= BULK_BYTES))
    except OSError:
        long_file = False
    if not long_file:
        return _read(path, name, sensors, min_rows, max_missing, state)
    key = rows_cache.key(path, sensors, min_rows, max_missing)
    data = _cached(key, path)
    if data is not None:
        return data
    out = rows_cache.rows_file(key)
    try:
        data = _read(path, name, sensors, min_rows, max_missing, state, bulk=True, out=out)
    except NotBulk as why:
        log.info("reading %s whole: %s", path, why)
        written = False
        data = _read(path, name, sensors, min_rows, max_missing, state)
    except BaseException:
        if out is not None:
            out.discard()
        raise
    else:
        written = out is not None
    rows_cache.save(key, data, written=written)
    return _cached(key, path) or data  # the rows mapped read-only, as the next time


def _cached(key: str | None, path: Path) -> SensorData | None:
    held = rows_cache.load(key, path)
    return None if held is None else SensorData(**{k: v for k, v in held.items() if k in SensorData.__dataclass_fields__})


def _read(path, name, sensors, min_rows, max_missing, state, bulk: bool = False, out=None) -> SensorData:
    """The rules on the whole file, or (``bulk``) decided on its head and applied a block at a
    time, the readings written to ``out`` (a rows-cache file) when given."""
    notes: list[str] = []
    if bulk:
        with open(path, "rb") as fh:
            if fh.read(2) in (b"\xff\xfe", b"\xfe\xff"):
                raise NotBulk("UTF-16 text")
    table = read_csv_table(path, name, notes, head=HEAD_BYTES if bulk else None)
    frame, lines = table.frame, table.lines
    if bulk and (table.encoding != "utf-8" or len(notes) > ("numbers use a decimal comma" in notes) or frame.empty):
        raise NotBulk("the head needs the careful reader")
    if frame.empty:
        raise DataError(f"{name} has a header line but no data rows; it needs at least {max(min_rows, 1)} rows of readings.")
    requested = _checked_sensor_list(sensors, frame, name)
    roles = find_roles(frame, set(requested or ()))
    time_col, label_col, dropped = roles.time_column, roles.label_column, roles.dropped
    if bulk and any(why.startswith("time of day") for why in dropped.values()):
        raise NotBulk("separate date and time columns")

    schema = "generic"
    if roles.pump_status:
        schema = "pump"
    elif set(SKAB_SENSORS) <= set(frame.columns):
        schema = "skab"

    # European exports (decimal comma) write day before month: 01.02.2024 is 1 February.
    time_notes: list[str] = []

    def times_of(cells, where):
        return parse_times(cells, time_col, name, where, time_notes, table.decimal == ",")

    def labels_of(cells, where):
        return read_labels(cells, label_col, schema == "pump", name, where)

    times = times_of(roles.time_cells, lines) if time_col else None
    status, labels = labels_of(frame[label_col], lines) if label_col else (None, None)
    columns, arrays = sensor_columns(frame, requested, roles, table.decimal, name, lines)
    n_rows = len(frame)
    if bulk:
        position = {c: i for i, c in enumerate(frame.columns)}
        try:  # the sensors the head's rows keep; the others are only counted
            whole = np.arange(len(frame))
            head = _used_sensors(
                _stack(arrays, whole, len(whole)), columns, requested is not None, max_missing, dict(dropped), [], name
            )
        except DataError:
            raise NotBulk("no sensor in the head") from None
        plan = BlockPlan(table.separator, table.decimal, len(frame.columns), [(c, position[c]) for c in columns if c in head[0]])
        plan.extras = [(c, position[c]) for c in columns if c not in head[0]]
        plan.times, plan.labels = times_of, labels_of
        if time_col and roles.time_cells.notna().any():
            plan.time_format = time_format(str(roles.time_cells.dropna().iloc[0]).strip(), table.decimal == ",")
        for column, role in ((time_col, "time"), (label_col, "label")):
            if column:
                numeric = pd.api.types.is_numeric_dtype(frame[column]) and not pd.api.types.is_bool_dtype(frame[column])
                setattr(plan, role, position[column])
                setattr(plan, f"{role}_numeric", numeric)
        time_notes.clear()
        estimate = int(path.stat().st_size / max(table.bytes_read, 1) * n_rows * 1.02) + 1024
        rows = read_blocks(path, plan, estimate, out, state)
        times, status, labels, n_rows = rows.times, rows.status, rows.labels, rows.count
    notes.extend(dict.fromkeys(time_notes))

    # Rows: time order, repeated timestamps, minimum count.
    keep = _order_rows(times, time_col, notes) if times is not None else np.arange(n_rows)
    if len(keep) < max(min_rows, 1):
        raise DataError(f"{name} has only {len(keep)} usable row(s); at least {max(min_rows, 1)} are needed.")
    in_order = len(keep) == n_rows and bool((keep[1:] > keep[:-1]).all())
    if bulk and not in_order:
        raise NotBulk("rows out of time order or repeated")  # gaps were filled in file order
    if times is not None:
        times = times[keep]
    if status is not None:
        status = status[keep]
    if labels is not None:
        labels = labels[keep]

    fixed = requested is not None
    if bulk:
        used, values, missing_fraction = _used_rows(rows, plan, fixed, max_missing, dropped, notes, name)
    else:
        matrix = _stack(arrays, keep, n_rows)
        used, values, missing_fraction = _used_sensors(matrix, columns, fixed, max_missing, dropped, notes, name)
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
