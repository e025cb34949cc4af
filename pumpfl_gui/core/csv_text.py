"""Reading a CSV file's text into a pandas table, refusing what is not a CSV.

Core layer: numpy/pandas only, no Qt, no Flower. Holds the "File" rules of
:mod:`pumpfl_gui.core.dataset`: reading the bytes safely, detecting the encoding, refusing
binary, JSON and HTML files, checking the header line, detecting the separator and the decimal
mark, and the pandas parse with its errors turned into one human sentence
(:class:`~pumpfl_gui.core.errors.DataError`). :func:`read_csv_table` is the entry point; what
each column means is decided in :mod:`pumpfl_gui.core.column_roles`.
"""

from __future__ import annotations

import contextlib
import csv
import io
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .errors import DataError

SEPARATORS = ",;\t|"
SEPARATOR_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
MAX_LINE_BYTES = 1 << 20
HEAD_BYTES = 8192
SNIFF_LINES = 50

# pandas already reads "", NaN, NA, N/A, NULL, null, None, n/a, nan, #N/A, <NA> as missing.
EXTRA_NA = ["-", "--", "none", "na", "NAN", "Nan", "NONE", "Null"]
NA_TEXT = {s.lower() for s in ["", "nan", "na", "n/a", "null", "none", "#n/a", "<na>", "-", "--", "-nan"]}

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


def shorten(value, limit: int = 40) -> str:
    """``value`` as text for a message, cut to ``limit`` characters."""
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---- reading the bytes --------------------------------------------------------------------


def _read_bytes(path: Path, limit: int | None = None) -> bytes:
    denied = f"{path} cannot be read (permission denied); give your user read access or copy the file."
    try:
        if not path.exists():
            raise DataError(f"{path}: no such file; check the path or pick the file again.")
        if path.is_dir():
            raise DataError(f"{path} is a folder, not a CSV file; choose a .csv file inside it.")
        if not path.is_file():
            raise DataError(f"{path} is not a regular file (a device, pipe or socket?); choose a CSV file.")
        with open(path, "rb") as fh:
            if limit is None:
                return fh.read()
            head = fh.read(limit)
            return head if len(head) < limit else head[: head.rfind(b"\n") + 1]  # whole lines only
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
            raise DataError(f"{name} starts like UTF-16 text but does not decode; save it again as UTF-8 CSV.") from None
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
        f"{name} is neither UTF-8 nor Latin-1 text (byte 0x{raw[bad_at]:02x} on line {line}); save it again as UTF-8 CSV."
    )


def _check_header_length(data: bytes, name: str) -> None:
    """The header must end within 1 MiB; pandas copes with long lines further down."""
    if len(data) > MAX_LINE_BYTES and data.find(b"\n", 0, MAX_LINE_BYTES) < 0:
        raise DataError(f"{name}: its first line is over 1 MiB long; a sensor CSV starts with a header line naming the columns.")


def _refuse_json_and_html(data: bytes, name: str) -> None:
    start = data[:4096].decode("utf-8", errors="ignore").lstrip()[:2]
    # "[" opens a JSON array, but also a bracketed column name such as "[time]".
    if start[:1] == "{" or (start[:1] == "[" and start[1:2] in '{["-0123456789 \t\r\n'):
        raise DataError(f"{name} looks like JSON, not CSV; export the readings as a CSV table.")
    if start[:1] == "<":
        raise DataError(f"{name} looks like HTML or XML, not CSV; export the readings as a CSV table.")


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
            f"{name}: its first line holds numbers ({shorten(header_line)}), not column names; "
            "add a header line naming the columns."
        )
    seen: set[str] = set()
    for n in names:
        if n and n in seen:
            raise DataError(f"{name}: column name '{n}' appears more than once in the header; give each column its own name.")
        seen.add(n)


class LineNumbers:
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
                f'{name}: a quote (") opened on line {int(match.group(1)) + 1} is never closed; '
                "remove the stray quote or close it."
            ) from None
        raise DataError(f"{name} cannot be read as a table ({shorten(exc, 120)}).") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{name} has no header line; the first line must name the columns.") from None
    except (ValueError, MemoryError, OverflowError) as exc:
        raise DataError(f"{name} cannot be read as a table ({shorten(exc, 120)}).") from None


# ---- the entry point ----------------------------------------------------------------------


@dataclass
class CsvTable:
    """A parsed CSV: every cell as pandas read it, and how the text was laid out."""

    frame: pd.DataFrame  # column names stripped; an unnamed column is "Unnamed: <position>"
    separator: str
    decimal: str  # "," only for ';'-separated files written with decimal commas
    lines: LineNumbers
    encoding: str = "utf-8"
    bytes_read: int = 0  # of the file's text (its head, when only the head was read)


# Peak memory of reading a CSV into a facility's rows, per byte of the file: measured 4.19 GB for
# a 659 MB file (2,002,000 rows x 52 sensors, `pumpfl data check`, 2026-12-02), so 6.4; with room.
READ_BYTES_FACTOR = 7.0


def memory_problem(file_bytes: int, available_bytes: int, name: str) -> str | None:
    """Why a file this size cannot be read with this much memory free, in words, or None."""
    need = file_bytes * READ_BYTES_FACTOR
    if need <= available_bytes:
        return None
    return (
        f"{name} is {file_bytes / 1e9:.2f} GB; reading it takes about {need / 1e9:.1f} GB of memory and this "
        f"computer has {available_bytes / 1e9:.1f} GB free. Close other programs, or export a shorter span "
        "(a few months of readings) and use that."
    )


def read_csv_table(path: Path, name: str, notes: list[str], head: int | None = None) -> CsvTable:
    """Read ``path`` by the "File" rules; ``name`` is the file as messages call it.

    Appends to ``notes`` what the reading changed (encoding, decimal comma, trailing separator).
    The table may have no rows; the caller decides how many it needs. A file too large for the
    memory free is refused before it is read, with the figures. With ``head``, only the whole
    lines within its first ``head`` bytes are read.
    """
    if head is None:
        with contextlib.suppress(OSError):
            import psutil

            problem = memory_problem(path.stat().st_size, psutil.virtual_memory().available, name)
            if problem:
                raise DataError(problem)
    raw = _read_bytes(path, head)
    size = len(raw)
    if not raw:
        raise DataError(f"{name} is empty (0 bytes); choose a CSV with a header line and sensor readings.")
    data, encoding = _to_utf8(raw, name)
    del raw
    if not re.search(rb"\S", data):
        raise DataError(f"{name} holds only blank lines or spaces; choose a CSV with a header line and sensor readings.")
    _check_header_length(data, name)
    _refuse_json_and_html(data, name)

    if encoding != "utf-8":
        notes.append(f"read as {encoding} text")
    sample = _first_lines(data, SNIFF_LINES)
    sep = _detect_separator(sample)
    if sep is None and any(not _is_number(line.strip()) and line.strip().lower() not in NA_TEXT for line in sample[1:]):
        if _only_times(sample[1:]):
            raise DataError(
                f"{name} holds one column of times and no readings; export the sensor readings with them "
                "(a column per sensor beside the time)."
            )
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
    return CsvTable(
        frame=frame, separator=sep or ",", decimal=decimal, lines=LineNumbers(data), encoding=encoding, bytes_read=size
    )


def _only_times(lines: list[str]) -> bool:
    """Every non-blank line reads as a date and time (a file of timestamps alone)."""
    cells = [line.strip() for line in lines if line.strip()]
    if not cells:
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas warns when it guesses each cell's format
        parsed = pd.to_datetime(pd.Series(cells), errors="coerce", format="mixed")
    return bool(parsed.notna().all())
