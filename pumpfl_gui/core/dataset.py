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

import csv
import io
import logging
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import DataError

log = logging.getLogger(__name__)

PUMP_STATUS_COLUMN = "machine_status"
NORMAL = "NORMAL"
BROKEN = "BROKEN"
RECOVERING = "RECOVERING"


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

    @property
    def rows(self) -> int:
        return int(self.values.shape[0])

    def train_mask(self) -> np.ndarray:
        """Rows a facility may train on: NORMAL rows for the pump schema, all rows otherwise."""
        if self.status is not None:
            return self.status == NORMAL
        return np.ones(self.rows, dtype=bool)


PUMP_STATUSES = (NORMAL, BROKEN, RECOVERING)
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

SEPARATORS = ",;\t|"
SEPARATOR_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
MAX_LINE_BYTES = 1 << 20
HEAD_BYTES = 8192
SNIFF_LINES = 50

# pandas already reads "", NaN, NA, N/A, NULL, null, None, n/a, nan, #N/A, <NA> as missing.
EXTRA_NA = ["-", "--", "none", "na", "NAN", "Nan", "NONE", "Null"]
NA_TEXT = {s.lower() for s in ["", "nan", "na", "n/a", "null", "none", "#n/a", "<na>", "-", "--", "-nan"]}

INDEX_NAMES = {"unnamed: 0", "unnamed:0", "index", "idx", "#"}
TIME_NAMES = {
    "timestamp", "timestamps", "datetime", "date", "time", "ts", "timeutc", "datetimeutc",
    "timestamputc", "utctime", "localtime", "dateandtime", "timestamp_utc",
}
LABEL_NAMES = [  # priority order for the one label column
    "anomaly", "is_anomaly", "label", "labels", "anomalous", "anomalies", "is_anomalous",
    "outlier", "is_outlier", "fault", "is_fault", "faults", "failure", "is_failure",
    "attack", "is_attack", "target", "status",
]
EXTRA_LABEL_NAMES = {"changepoint", "change_point", "changepoints"}
LABEL_ZERO = {"0", "false", "no", "n", "f", "normal", "ok", "good", "nominal", "healthy", "benign"}
LABEL_ONE = {
    "1", "true", "yes", "y", "t", "abnormal", "anomaly", "anomalous", "fault", "faulty",
    "broken", "failure", "failed", "fail", "attack", "bad", "recovering", "error", "alarm",
    "outlier",
}

_MAGIC = [
    (b"PK\x03\x04", "a zip archive (an Excel .xlsx workbook?); export the sheet as CSV"),
    (b"\xd0\xcf\x11\xe0", "an old Excel/Office file; export the sheet as CSV"),
    (b"\x1f\x8b", "gzip-compressed; unpack it first"),
    (b"%PDF", "a PDF document, not a CSV"),
    (b"\x89PNG", "a PNG image, not a CSV"),
    (b"\xff\xd8\xff", "a JPEG image, not a CSV"),
    (b"SQLite format 3", "an SQLite database, not a CSV"),
]
_CONTROL_BYTES = bytes(b for b in range(32) if b not in (9, 10, 12, 13))
_PARSER_LINE = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
_PARSER_QUOTE = re.compile(r"EOF inside string starting at row (\d+)")  # 0-based line index


def _norm(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def _quote(values, limit: int = 6) -> str:
    items = [f"'{v}'" for v in values]
    if len(items) > limit:
        items = items[:limit] + [f"... ({len(items) - limit} more)"]
    return ", ".join(items)


def _short(value, limit: int = 40) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---- reading the bytes --------------------------------------------------------------------


def _read_bytes(path: Path) -> bytes:
    denied = f"{path} cannot be read (permission denied); give your user read access or copy the file."
    try:
        if not path.exists():
            raise DataError(f"{path}: no such file; check the path or pick the file again.")
        if path.is_dir():
            raise DataError(f"{path} is a folder, not a CSV file; choose a .csv file inside it.")
        if not path.is_file():
            raise DataError(f"{path} is not a regular file (a device, pipe or socket?); choose a CSV file.")
        with open(path, "rb") as fh:
            return fh.read()
    except PermissionError:
        raise DataError(denied) from None
    except OSError as exc:
        raise DataError(f"{path} cannot be read ({exc.strerror or exc}); check the file.") from None


def _to_utf8(raw: bytes, name: str) -> tuple[bytes, str]:
    """The file as UTF-8 bytes without a byte-order mark, and the encoding it was read as.

    Refuses binary data and unknown encodings. Plain ASCII/UTF-8 (the usual case) is not copied.
    """
    head = raw[:HEAD_BYTES]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16").encode("utf-8"), "utf-16"
        except UnicodeDecodeError:
            raise DataError(
                f"{name} starts like UTF-16 text but does not decode; save it again as UTF-8 CSV."
            ) from None
    for magic, what in _MAGIC:
        if head.startswith(magic):
            raise DataError(f"{name} is {what}.")
    if b"\x00" in head or sum(head.count(b) for b in _CONTROL_BYTES) > len(head) // 100:
        raise DataError(f"{name} holds binary data, not text; export the sensor table as a CSV file.")
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    if raw.isascii():
        return raw, "utf-8"
    try:
        raw.decode("utf-8")
        return raw, "utf-8"
    except UnicodeDecodeError as exc:
        bad_at = exc.start
    text = raw.decode("latin-1")
    # Latin-1 decodes any bytes; accept it only when nothing lands on a control character.
    if not re.search(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]", text):
        return text.encode("utf-8"), "latin-1"
    line = raw[:bad_at].count(b"\n") + 1
    raise DataError(
        f"{name} is neither UTF-8 nor Latin-1 text (byte 0x{raw[bad_at]:02x} on line {line}); "
        "save it again as UTF-8 CSV."
    )


def _check_header_length(data: bytes, name: str) -> None:
    """The header must end within 1 MiB; pandas copes with long lines further down."""
    if len(data) > MAX_LINE_BYTES and data.find(b"\n", 0, MAX_LINE_BYTES) < 0:
        raise DataError(
            f"{name}: its first line is over 1 MiB long; a sensor CSV starts with a header line naming the columns."
        )


# ---- structure ----------------------------------------------------------------------------


def _first_lines(data: bytes, count: int) -> list[str]:
    """Up to ``count`` non-blank lines from the first 64 KB."""
    head = data[:65536].decode("utf-8", errors="ignore")
    return [line for line in re.split(r"\r\n|\r|\n", head) if line.strip()][:count]


def _detect_separator(lines: list[str]) -> str | None:
    """The column separator, or None when no candidate separates the header's columns."""
    header = lines[0]
    try:
        sep = csv.Sniffer().sniff("\n".join(lines), delimiters=SEPARATORS).delimiter
    except csv.Error:
        sep = None
    if sep is not None and sep in header:
        return sep
    # The sniffer can pick the decimal comma of a ';' file; the header settles it.
    counts = {c: header.count(c) for c in SEPARATORS}
    best = max(counts, key=counts.get)
    return best if counts[best] else None


_DEC_COMMA = re.compile(r"(?:^|;)\s*[+-]?\d+,\d+(?:[eE][+-]?\d+)?\s*(?=;|$)")
_DEC_POINT = re.compile(r"(?:^|;)\s*[+-]?\d*\.\d+(?:[eE][+-]?\d+)?\s*(?=;|$)")


def _detect_decimal(lines: list[str], sep: str | None) -> str:
    if sep != ";":
        return "."
    data = lines[1:]
    if any(_DEC_COMMA.search(line) for line in data) and not any(_DEC_POINT.search(line) for line in data):
        return ","
    return "."


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _check_header(header_line: str, sep: str | None, name: str) -> None:
    fields = next(csv.reader([header_line], delimiter=sep or ","))
    names = [f.strip() for f in fields]
    if names and all(_is_number(n.replace(",", ".")) for n in names if n) and any(names):
        raise DataError(
            f"{name}: its first line holds numbers ({_short(header_line)}), not column names; "
            "add a header line naming the columns."
        )
    seen: set[str] = set()
    for n in names:
        if n and n in seen:
            raise DataError(
                f"{name}: column name '{n}' appears more than once in the header; give each column its own name."
            )
        seen.add(n)


class _Lines:
    """Maps a data-row position (0-based, file order) to its 1-based line number, on demand."""

    def __init__(self, data: bytes):
        self._data = data
        self._numbers: list[int] | None = None

    def __call__(self, row: int) -> int:
        if self._numbers is None:
            # Only built when an error is reported; pandas skips blank lines the same way.
            lines = re.split(rb"\r\n|\r|\n", self._data)
            self._numbers = [i for i, line in enumerate(lines, 1) if line.strip()]
        index = row + 1  # skip the header line
        return self._numbers[index] if index < len(self._numbers) else index + 1


def _read_table(data: bytes, sep: str, decimal: str, **extra) -> pd.DataFrame:
    return pd.read_csv(
        io.BytesIO(data),
        encoding="utf-8",
        sep=sep,
        decimal=decimal,
        engine="c",
        low_memory=False,
        na_values=EXTRA_NA,
        keep_default_na=True,
        skip_blank_lines=True,
        **extra,
    )


def _parse(data: bytes, sep: str, decimal: str, name: str, notes: list[str]) -> pd.DataFrame:
    try:
        frame = _read_table(data, sep, decimal)
        if not isinstance(frame.index, pd.RangeIndex):
            # Data rows have more fields than the header, so pandas made the first ones an index.
            extra = frame.index.nlevels
            if extra == 1 and len(frame.columns) and frame.iloc[:, -1].isna().all():
                # Every row ends with a separator the header lacks: drop that empty last field.
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", pd.errors.ParserWarning)
                    frame = _read_table(data, sep, decimal, index_col=False)
                notes.append("data rows end with an extra separator; ignored")
            else:
                count = len(frame.columns)
                raise DataError(
                    f"{name}: its data rows have {count + extra} fields but the header names {count} columns; "
                    "give every column a name in the header."
                )
        return frame
    except pd.errors.ParserError as exc:
        match = _PARSER_LINE.search(str(exc))
        if match:
            want, line, saw = match.groups()
            raise DataError(
                f"{name}: line {line} has {saw} fields but the header has {want}; "
                "fix that row (a stray separator or a missing quote?)."
            ) from None
        match = _PARSER_QUOTE.search(str(exc))
        if match:
            raise DataError(
                f"{name}: a quote (\") opened on line {int(match.group(1)) + 1} is never closed; "
                "remove the stray quote or close it."
            ) from None
        raise DataError(f"{name} cannot be read as a table ({_short(exc, 120)}).") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{name} has no header line; the first line must name the columns.") from None
    except (ValueError, MemoryError, OverflowError) as exc:
        raise DataError(f"{name} cannot be read as a table ({_short(exc, 120)}).") from None


# ---- columns ------------------------------------------------------------------------------


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


def _junk_error(name: str, column: str, bad: pd.Series, lines: _Lines) -> DataError:
    row = int(bad.index[0])
    return DataError(
        f"{name}: column '{column}' holds '{_short(str(bad.iloc[0]).strip())}' on line {lines(row)}, "
        "which is not a number; fix or empty that cell."
    )


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


def _parse_times(
    col: pd.Series, column: str, name: str, lines: _Lines, notes: list[str], dayfirst: bool
) -> np.ndarray:
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
                    f"{name}: time column '{column}' holds '{_short(col.iloc[row])}' on line {lines(row)}, "
                    "which is not a date or time; fix that cell."
                )
        return times.dt.as_unit("ns").to_numpy()  # raises OutOfBoundsDatetime past 2262
    except DataError:
        raise
    except (ValueError, OverflowError, TypeError) as exc:  # OutOfBoundsDatetime is a ValueError
        raise DataError(
            f"{name}: time column '{column}' cannot be read as dates between 1677 and 2262 ({_short(exc, 80)})."
        ) from None


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
    """``normalise`` applied to each distinct cell once (fast on long repetitive columns); None for NA."""
    codes, uniques = pd.factorize(col, use_na_sentinel=True)
    mapped = np.array([normalise(u) for u in uniques] + [None], dtype=object)
    return mapped[codes]  # code -1 (missing) picks the trailing None


def _pump_status(col: pd.Series, column: str, name: str, lines: _Lines) -> np.ndarray:
    status = _per_distinct(col, lambda v: str(v).strip().upper())
    bad = ~np.isin(status, PUMP_STATUSES)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        what = "is empty" if col.isna().iloc[row] else f"holds '{_short(col.iloc[row])}'"
        raise DataError(
            f"{name}: column '{column}' {what} on line {lines(row)}; "
            f"the pump schema allows only {', '.join(PUMP_STATUSES)}."
        )
    return status.astype(str)


def _labels(col: pd.Series, column: str, name: str, lines: _Lines) -> np.ndarray:
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
        cell = "is empty" if col.isna().iloc[row] else f"holds '{_short(col.iloc[row])}'"
        raise DataError(f"{name}: label column '{column}' {cell} on line {lines(row)}; {hint}.")
    return ones.astype(np.int8)


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
    raw = _read_bytes(path)
    if not raw:
        raise DataError(f"{name} is empty (0 bytes); choose a CSV with a header line and sensor readings.")
    data, encoding = _to_utf8(raw, name)
    del raw
    if not re.search(rb"\S", data):
        raise DataError(
            f"{name} holds only blank lines or spaces; choose a CSV with a header line and sensor readings."
        )
    _check_header_length(data, name)
    start = data[:4096].decode("utf-8", errors="ignore").lstrip()[:2]
    # "[" opens a JSON array, but also a bracketed column name such as "[time]".
    if start[:1] == "{" or (start[:1] == "[" and start[1:2] in '{["-0123456789 \t\r\n'):
        raise DataError(f"{name} looks like JSON, not CSV; export the readings as a CSV table.")
    if start[:1] == "<":
        raise DataError(f"{name} looks like HTML or XML, not CSV; export the readings as a CSV table.")

    notes: list[str] = []
    if encoding != "utf-8":
        notes.append(f"read as {encoding} text")
    sample = _first_lines(data, SNIFF_LINES)
    sep = _detect_separator(sample)
    if sep is None and any(not _is_number(line.strip()) and line.strip().lower() not in NA_TEXT for line in sample[1:]):
        raise DataError(
            f"{name} does not look like a CSV table: no comma, semicolon, tab or pipe separates columns "
            "and its lines are not numbers; export the readings as a CSV."
        )
    _check_header(sample[0], sep, name)
    decimal = _detect_decimal(sample, sep)
    if decimal == ",":
        notes.append("numbers use a decimal comma")
    frame = _parse(data, sep or ",", decimal, name, notes)
    frame.columns = [str(c).strip() or f"Unnamed: {i}" for i, c in enumerate(frame.columns)]
    if frame.empty:
        raise DataError(
            f"{name} has a header line but no data rows; it needs at least {max(min_rows, 1)} rows of readings."
        )
    lines = _Lines(data)

    requested = list(sensors) if sensors is not None else None
    if requested is not None:
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
    excluded = set(requested or ())

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

    schema = "generic"
    if label_col and _norm(label_col) == PUMP_STATUS_COLUMN:
        schema = "pump"
    elif set(SKAB_SENSORS) <= set(frame.columns):
        schema = "skab"

    # European exports (decimal comma) write day before month: 01.02.2024 is 1 February.
    times = _parse_times(time_cells, time_col, name, lines, notes, decimal == ",") if time_col else None
    status = labels = None
    if label_col:
        if schema == "pump":
            status = _pump_status(frame[label_col], label_col, name, lines)
            labels = (status != NORMAL).astype(np.int8)
        else:
            labels = _labels(frame[label_col], label_col, name, lines)

    # Sensor candidates, in file order (or the requested order).
    if requested is not None:
        candidates = requested
        for column in frame.columns:
            if column not in excluded and column not in dropped and column not in (time_col, label_col):
                dropped[column] = "not in the sensor list"
    else:
        candidates = [c for c in frame.columns if c not in dropped and c not in (time_col, label_col)]
    columns: list[str] = []
    arrays: list[np.ndarray] = []
    for column in candidates:
        values, bad, n_numbers = _numeric(frame[column], decimal)
        if len(bad):
            if n_numbers >= len(bad):
                raise _junk_error(name, column, bad, lines)
            if requested is not None:
                raise DataError(
                    f"{name}: sensor column '{column}' holds text such as '{_short(str(bad.iloc[0]).strip())}' "
                    f"(line {lines(int(bad.index[0]))}), not readings."
                )
            dropped[column] = "not numeric"
            continue
        columns.append(column)
        arrays.append(values)

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

    # Column-major while sensors are judged one by one; C order again for the returned values.
    in_order = len(keep) == len(frame) and bool((keep[1:] > keep[:-1]).all())
    matrix = np.empty((len(keep), len(columns)), order="F")
    for j, column_values in enumerate(arrays):
        matrix[:, j] = column_values if in_order else column_values[keep]
    finite = np.isfinite(matrix)
    missing = 1.0 - finite.mean(axis=0)
    for j in np.flatnonzero(missing > 0):
        matrix[~finite[:, j], j] = np.nan  # infinities count as missing
    highest, lowest = np.fmax.reduce(matrix, axis=0), np.fmin.reduce(matrix, axis=0)  # NaN-blind
    use = np.ones(len(columns), dtype=bool)
    if requested is None:
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
    else:
        for j, column in enumerate(columns):
            if missing[j] >= 1.0:
                notes.append(f"sensor '{column}' is empty throughout; filled with 0")
                matrix[:, j] = 0.0
    used = [c for c, u in zip(columns, use) if u]
    if not used:
        why = "; ".join(f"'{c}': {r}" for c, r in dropped.items()) or "no columns besides time and labels"
        raise DataError(
            f"{name} has no usable numeric sensor column ({_short(why, 200)}); "
            "it needs at least one column of readings that varies."
        )
    too_big = np.flatnonzero(use & (np.fmax(np.abs(highest), np.abs(lowest)) > np.finfo(np.float32).max))
    if len(too_big):
        raise DataError(
            f"{name}: column '{columns[too_big[0]]}' holds readings too large for 32-bit floats; rescale them."
        )
    missing_fraction = {c: float(m) for c, m in zip(used, missing[use])}
    values = matrix[:, use].astype(np.float32)
    _fill_gaps(values)
    values = np.ascontiguousarray(values)

    data = SensorData(
        path=path,
        schema=schema,
        separator=sep or ",",
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
        out.append(
            f"time: {pd.Timestamp(first)} to {pd.Timestamp(last)} ({_duration(seconds)}), column '{data.time_column}'"
        )
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
