"""Deciding what each column of a parsed sensor CSV is, and reading it as such.

Core layer: numpy/pandas only, no Qt, no Flower. Holds the "Columns" rules of
:mod:`pumpfl_gui.core.dataset`: the row index to drop, the time column (with a separate
time-of-day partner, and the parsing of its cells), the label column (pump status or 0/1-style
labels), and the sensors' conversion to numbers, with stray text reported as a
:class:`~pumpfl_gui.core.errors.DataError` naming the column, line and value. The pump status
names live here because label reading needs them; :mod:`pumpfl_gui.core.dataset` re-exports them.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .csv_text import NA_TEXT, LineNumbers, shorten
from .errors import DataError

PUMP_STATUS_COLUMN = "machine_status"
NORMAL = "NORMAL"
BROKEN = "BROKEN"
RECOVERING = "RECOVERING"
PUMP_STATUSES = (NORMAL, BROKEN, RECOVERING)

INDEX_NAMES = {"unnamed: 0", "unnamed:0", "index", "idx", "#"}
TIME_NAMES = {
    "timestamp",
    "timestamps",
    "datetime",
    "date",
    "time",
    "ts",
    "timeutc",
    "datetimeutc",
    "timestamputc",
    "utctime",
    "localtime",
    "dateandtime",
    "timestamp_utc",
}
LABEL_NAMES = [  # priority order for the one label column
    "anomaly",
    "is_anomaly",
    "label",
    "labels",
    "anomalous",
    "anomalies",
    "is_anomalous",
    "outlier",
    "is_outlier",
    "fault",
    "is_fault",
    "faults",
    "failure",
    "is_failure",
    "attack",
    "is_attack",
    "target",
    "status",
]
EXTRA_LABEL_NAMES = {"changepoint", "change_point", "changepoints"}
LABEL_ZERO = {"0", "false", "no", "n", "f", "normal", "ok", "good", "nominal", "healthy", "benign"}
LABEL_ONE = {
    "1",
    "true",
    "yes",
    "y",
    "t",
    "abnormal",
    "anomaly",
    "anomalous",
    "fault",
    "faulty",
    "broken",
    "failure",
    "failed",
    "fail",
    "attack",
    "bad",
    "recovering",
    "error",
    "alarm",
    "outlier",
}


def _norm(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


# ---- numbers ------------------------------------------------------------------------------


def _text_cells(col: pd.Series) -> pd.Series:
    """Non-missing cells of a text column, stripped, with NA spellings removed."""
    cells = col[col.notna()].astype(str).str.strip()
    return cells[~cells.str.lower().isin(NA_TEXT)]


def _numeric(col: pd.Series, decimal: str) -> tuple[np.ndarray, pd.Series, int]:
    """(float64 values with NaN for missing, the cells that are not numbers, count of numbers)."""
    if pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col):
        values = col.to_numpy(dtype=np.float64, na_value=np.nan)
        return values, col.iloc[:0], int(np.isfinite(values).sum())
    cells = _text_cells(col)
    if decimal == ",":
        cells = cells.str.replace(",", ".", regex=False)
    numbers = pd.to_numeric(cells, errors="coerce")
    bad = cells[numbers.isna()]
    values = np.full(len(col), np.nan)
    values[col.index.get_indexer(numbers.index)] = numbers.to_numpy(dtype=np.float64)
    return values, col.loc[bad.index], int(numbers.notna().sum())


def _junk_error(name: str, column: str, bad: pd.Series, lines: LineNumbers) -> DataError:
    row = int(bad.index[0])
    return DataError(
        f"{name}: column '{column}' holds '{shorten(str(bad.iloc[0]).strip())}' on line {lines(row)}, "
        "which is not a number; fix or empty that cell."
    )


# ---- index and time -----------------------------------------------------------------------


def _index_column(frame: pd.DataFrame, excluded: set[str]) -> str | None:
    first = frame.columns[0]
    if first in excluded or first.lower() not in INDEX_NAMES or len(frame.columns) < 2:
        return None
    col = frame[first]
    if not pd.api.types.is_integer_dtype(col):
        return None
    return first if col.is_unique else None


def _looks_like_dates(col: pd.Series) -> bool:
    if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        return False
    sample = _text_cells(col).head(50)
    if sample.empty or pd.to_numeric(sample, errors="coerce").notna().any():
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    return bool(parsed.notna().mean() >= 0.9)


def _time_column(frame: pd.DataFrame, excluded: set[str], taken: set[str]) -> str | None:
    for column in frame.columns:
        if column in excluded or column in taken:
            continue
        norm = _norm(column)
        if norm in TIME_NAMES or norm.startswith(("timestamp", "datetime")):
            return column
    for column in frame.columns:
        if column in excluded or column in taken:
            continue
        return column if _looks_like_dates(frame[column]) else None
    return None


def _time_of_day_partner(frame: pd.DataFrame, time_col: str, unavailable: set) -> str | None:
    """For a 'date' column, a text column named 'time' beside it (or the other way round)."""
    wanted = {"date": "time", "time": "date"}.get(_norm(time_col))
    if wanted is None:
        return None
    for column in frame.columns:
        if column != time_col and column not in unavailable and _norm(column) == wanted:
            if pd.api.types.is_numeric_dtype(frame[column]) or pd.api.types.is_bool_dtype(frame[column]):
                return None
            return column
    return None


def parse_times(col: pd.Series, column: str, name: str, lines: LineNumbers, notes: list[str], dayfirst: bool) -> np.ndarray:
    """datetime64[ns] per row, NaT where the cell is empty."""
    try:
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            numbers = col.astype(np.float64)
            unit = "ms" if np.fmax.reduce(np.abs(numbers.to_numpy())) > 1e11 else "s"
            unit_name = "milliseconds" if unit == "ms" else "seconds"
            notes.append(f"time column '{column}' holds numbers; read as {unit_name} since 1970")
            times = pd.to_datetime(numbers, unit=unit, errors="coerce")
        else:
            cells = col.where(col.notna(), None)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                times = pd.to_datetime(cells, errors="coerce", utc=True, dayfirst=dayfirst)
                failed = times.isna() & col.notna()
                if failed.any():  # a second format part-way through: parse cell by cell
                    times = pd.to_datetime(cells, errors="coerce", utc=True, dayfirst=dayfirst, format="mixed")
            times = times.dt.tz_localize(None)
            failed = times.isna() & col.notna()
            if failed.any():  # cells like " " or "none" are empty, not bad dates
                failed &= ~col.astype(str).str.strip().str.lower().isin(NA_TEXT)
            if failed.any():
                row = int(np.flatnonzero(failed.to_numpy())[0])
                raise DataError(
                    f"{name}: time column '{column}' holds '{shorten(col.iloc[row])}' on line {lines(row)}, "
                    "which is not a date or time; fix that cell."
                )
        return times.dt.as_unit("ns").to_numpy()  # raises OutOfBoundsDatetime past 2262
    except DataError:
        raise
    except (ValueError, OverflowError, TypeError) as exc:  # OutOfBoundsDatetime is a ValueError
        raise DataError(
            f"{name}: time column '{column}' cannot be read as dates between 1677 and 2262 ({shorten(exc, 80)})."
        ) from None


# ---- labels -------------------------------------------------------------------------------


def _label_columns(frame: pd.DataFrame, excluded: set[str]) -> tuple[str | None, list[str]]:
    """(the label column, further label-like columns to drop)."""
    by_norm = {}
    extra = []
    for column in frame.columns:
        if column in excluded:
            continue
        norm = _norm(column)
        if norm == PUMP_STATUS_COLUMN or norm in LABEL_NAMES:
            by_norm.setdefault(norm, column)
            extra.append(column)
        elif norm in EXTRA_LABEL_NAMES:
            extra.append(column)
    main = None
    for norm in [PUMP_STATUS_COLUMN, *LABEL_NAMES]:
        if norm in by_norm:
            main = by_norm[norm]
            break
    return main, [c for c in extra if c != main]


def _per_distinct(col: pd.Series, normalise) -> np.ndarray:
    """``normalise`` applied to each distinct cell once (fast on long repetitive columns); None
    for NA."""
    codes, uniques = pd.factorize(col, use_na_sentinel=True)
    mapped = np.array([normalise(u) for u in uniques] + [None], dtype=object)
    return mapped[codes]  # code -1 (missing) picks the trailing None


def _pump_status(col: pd.Series, column: str, name: str, lines: LineNumbers) -> np.ndarray:
    status = _per_distinct(col, lambda v: str(v).strip().upper())
    bad = ~np.isin(status, PUMP_STATUSES)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        what = "is empty" if col.isna().iloc[row] else f"holds '{shorten(col.iloc[row])}'"
        raise DataError(
            f"{name}: column '{column}' {what} on line {lines(row)}; the pump schema allows only {', '.join(PUMP_STATUSES)}."
        )
    return status  # object: each row points at one of a few strings (8 bytes a row, not 40 as text)


def _labels(col: pd.Series, column: str, name: str, lines: LineNumbers) -> np.ndarray:
    hint = "labels must be 0/1, true/false or normal/abnormal (rename the column if it is not a label)"
    if pd.api.types.is_bool_dtype(col):
        return col.to_numpy(dtype=np.int8)
    if pd.api.types.is_numeric_dtype(col):
        values = col.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~np.isin(values, (0.0, 1.0))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            cell = "is empty" if np.isnan(values[row]) else f"holds {values[row]:g}"
            raise DataError(f"{name}: label column '{column}' {cell} on line {lines(row)}; {hint}.")
        return values.astype(np.int8)
    text = _per_distinct(col, lambda v: str(v).strip().lower())
    ones = np.isin(text, [*LABEL_ONE, "1.0"])
    bad = ~(ones | np.isin(text, [*LABEL_ZERO, "0.0"]))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        cell = "is empty" if col.isna().iloc[row] else f"holds '{shorten(col.iloc[row])}'"
        raise DataError(f"{name}: label column '{column}' {cell} on line {lines(row)}; {hint}.")
    return ones.astype(np.int8)


# ---- roles and sensors --------------------------------------------------------------------


@dataclass
class ColumnRoles:
    """Which column is the time and which the label; ``dropped`` maps each non-sensor column
    to why."""

    time_column: str | None
    time_cells: pd.Series | None  # the time column's cells, joined with a separate time-of-day column
    label_column: str | None
    dropped: dict[str, str]

    @property
    def pump_status(self) -> bool:
        """Whether the label column is the pump schema's ``machine_status``."""
        return bool(self.label_column) and _norm(self.label_column) == PUMP_STATUS_COLUMN


def find_roles(frame: pd.DataFrame, excluded: set[str]) -> ColumnRoles:
    """Row index, label and time columns; names in ``excluded`` (requested sensors) are
    never taken."""
    dropped: dict[str, str] = {}
    index_col = _index_column(frame, excluded)
    if index_col:
        dropped[index_col] = "row index"
    label_col, extra_labels = _label_columns(frame, excluded)
    for column in extra_labels:
        dropped[column] = "label column"
    taken = set(dropped) | ({label_col} if label_col else set())
    time_col = _time_column(frame, excluded, taken)
    time_cells = None
    if time_col is not None and frame[time_col].isna().all():
        dropped[time_col] = "empty throughout"
        time_col = None
    if time_col is not None:
        time_cells = frame[time_col]
        time_of_day = _time_of_day_partner(frame, time_col, excluded | set(dropped) | {label_col})
        if time_of_day is not None:  # separate date and time columns: read them together
            joined = frame[time_col].astype(str).str.strip() + " " + frame[time_of_day].astype(str).str.strip()
            time_cells = joined.where(frame[time_col].notna() & frame[time_of_day].notna())
            dropped[time_of_day] = f"time of day, joined to '{time_col}'"
    return ColumnRoles(time_column=time_col, time_cells=time_cells, label_column=label_col, dropped=dropped)


def read_labels(
    col: pd.Series, column: str, pump_status: bool, name: str, lines: LineNumbers
) -> tuple[np.ndarray | None, np.ndarray]:
    """(pump status strings, or None outside the pump schema; int8 labels, 1 = anomalous row)."""
    if pump_status:
        status = _pump_status(col, column, name, lines)
        return status, (status != NORMAL).astype(np.int8)
    return None, _labels(col, column, name, lines)


def sensor_columns(
    frame: pd.DataFrame,
    requested: list[str] | None,
    roles: ColumnRoles,
    decimal: str,
    name: str,
    lines: LineNumbers,
) -> tuple[list[str], list[np.ndarray]]:
    """The sensor candidates as float64 arrays (NaN for missing), in file order or
    ``requested`` order.

    Adds to ``roles.dropped`` the columns that are not numeric or not in the sensor list.
    """
    dropped = roles.dropped
    taken = (roles.time_column, roles.label_column)
    if requested is not None:
        candidates = requested
        wanted = set(requested)
        for column in frame.columns:
            if column not in wanted and column not in dropped and column not in taken:
                dropped[column] = "not in the sensor list"
    else:
        candidates = [c for c in frame.columns if c not in dropped and c not in taken]
    columns: list[str] = []
    arrays: list[np.ndarray] = []
    for column in candidates:
        values, bad, n_numbers = _numeric(frame[column], decimal)
        if len(bad):
            if n_numbers >= len(bad):
                raise _junk_error(name, column, bad, lines)
            if requested is not None:
                raise DataError(
                    f"{name}: sensor column '{column}' holds text such as '{shorten(str(bad.iloc[0]).strip())}' "
                    f"(line {lines(int(bad.index[0]))}), not readings."
                )
            dropped[column] = "not numeric"
            continue
        columns.append(column)
        arrays.append(values)
    return columns, arrays
