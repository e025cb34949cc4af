"""Reading a long sensor CSV a batch of rows at a time, straight into float32 (core layer).

Polars' streaming reader parses the file itself, a batch of ``BATCH_ROWS`` rows at a time (in
parallel, in native code); each batch's readings are filled forward, counted and written to the
rows cache's file (:class:`~pumpfl_gui.core.rows_cache.RowsFile`), so no copy of the file's
text and no float64 table is ever held, and a long read reports progress and can be cancelled
between batches. What each column means is not decided here:
:mod:`~pumpfl_gui.core.dataset` decides it on the file's head by the same rules as a short file
and hands over a :class:`BlockPlan`; the time and label cells of every batch go through the same
functions as a short file's (``plan.times``, ``plan.labels``).

Cells are read as missing when empty or NaN; text that means missing ("NA", "-", "none") is
looked for only when a batch holds some (looking for it in every cell doubles polars' parse):
the file is then read again from its start with it (:class:`NullText`).

A batch that polars cannot read as the head promised (a cell that is not a number, a blank
line, a row of another length) raises :class:`NotBulk`: the caller then reads the file the
careful way, whose messages name the line.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .csv_text import EXTRA_NA, NA_TEXT
from .task import TaskState
from .wording import duration

BULK_BYTES = 32 << 20  # files from this size on are read a block at a time
HEAD_BYTES = 1 << 20  # the head whose rows decide the columns' roles
SQUEEZE_ROWS = 1 << 16  # rows moved at a time when a column is squeezed out
BATCH_ROWS = 100_000  # rows per batch: 21 MB of float32 for 52 sensors
_NULLS = sorted({*EXTRA_NA, *NA_TEXT, "NaN", "NA", "N/A", "NULL", "#N/A", "<NA>", "nan", "null", "None", "n/a"})


class NotBulk(Exception):
    """This file (or a block of it) needs the careful reader; the text says why."""


class NullText(NotBulk):
    """Polars could not read a batch looking for empty cells only: read it again looking for
    text that means missing, too."""


@dataclass
class BlockPlan:
    """What the head decided: where each needed column is and how its cells are read."""

    separator: str
    decimal: str
    fields: int  # columns in the header
    sensors: list[tuple[str, int]]  # (name, position) of the sensors the head keeps, read as float32
    extras: list[tuple[str, int]] = field(default_factory=list)  # candidates the head dropped: counted only
    time: int | None = None  # position of the time column
    time_numeric: bool = False
    time_format: str | None = None  # strftime format of the head's times (pandas' guess), without a zone
    label: int | None = None
    label_numeric: bool = False
    # Cells of one block (a pandas Series) and a line-number function, to datetime64 / labels.
    times: Callable | None = None
    labels: Callable | None = None


@dataclass
class BlockRows:
    """A whole file's rows as the blocks gave them, in file order, and each sensor's count of
    missing readings, highest and lowest reading."""

    values: np.ndarray  # float32 (rows, sensors), gaps filled forward; NaN before a sensor's first reading
    times: np.ndarray | None  # datetime64[ns]
    status: np.ndarray | None
    labels: np.ndarray | None
    missing: np.ndarray  # int64 (sensors + extras,): readings missing or infinite
    highest: np.ndarray  # (sensors + extras,), NaN for a column without a reading
    lowest: np.ndarray
    written: object = None  # the RowsFile the readings went to, when ``values`` is None
    count: int = 0  # rows read


def _name(position: int) -> str:
    return f"column_{position}"  # polars' name for a column of a file read without its header


def _batches(path: Path, plan: BlockPlan, null_text: bool):
    """The needed columns of ``path``'s rows after its header, ``BATCH_ROWS`` rows at a time,
    as polars' streaming engine parses them (in parallel, from the file itself).

    Empty cells and NaN are missing either way. Text that means missing ("NA", "-", "none")
    is looked for in every cell only with ``null_text`` (it doubles the parse): without it, such
    text in a sensor column raises :class:`NullText`, and in the time and label columns it is
    made missing here."""
    import polars as pl  # imported here: only long files need it

    types = {_name(i): pl.Float32 for _, i in plan.sensors + plan.extras}
    for position, numeric in ((plan.time, plan.time_numeric), (plan.label, plan.label_numeric)):
        if position is not None:
            types[_name(position)] = pl.Float64 if numeric else pl.String
    scan = pl.scan_csv(
        path,
        has_header=False,
        skip_rows=1,
        separator=plan.separator,
        decimal_comma=plan.decimal == ",",
        schema_overrides=types,
        null_values=_NULLS if null_text else None,
        infer_schema=False,
        raise_if_empty=False,
    ).select(
        pl.col(c).fill_nan(None) if kind.is_float() else pl.when(pl.col(c).is_in(_NULLS)).then(None).otherwise(pl.col(c)).alias(c)
        for c, kind in types.items()
    )
    try:
        yield from scan.collect_batches(chunk_size=BATCH_ROWS)
    except Exception as exc:  # polars' parse errors have no common base; any of them means the careful way
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise (NotBulk if null_text else NullText)(why) from None


def _cells(frame, position: int, numeric: bool) -> pd.Series:
    """A block's column as the careful reader's functions take it (numbers, or text)."""
    column = frame[_name(position)]
    return pd.Series(column.to_numpy() if numeric else column.to_numpy().astype(object))


def _labels(frame, plan: BlockPlan, line) -> tuple[np.ndarray | None, np.ndarray]:
    """A block's (pump status, labels): the careful reader judges each distinct cell once and
    the rows take their cell's verdict; a message names the first row holding the cell."""
    import polars as pl

    column = frame[_name(plan.label)]
    distinct = column.unique(maintain_order=True)
    codes = column.replace_strict(distinct.drop_nulls(), pl.int_range(distinct.drop_nulls().len(), eager=True), default=None)
    codes = codes.fill_null(distinct.drop_nulls().len()).to_numpy()  # a missing cell: the last code
    cells = pd.Series([*distinct.drop_nulls().to_list(), *([None] if distinct.null_count() else [])], dtype=object)
    if plan.label_numeric:
        cells = pd.to_numeric(cells)

    def first_line(code: int) -> int:
        return line(int(np.argmax(codes == code)))

    status, labels = plan.labels(cells, first_line)
    return (None if status is None else status[codes]), labels[codes]


def _same_times(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(((a == b) | (np.isnat(a) & np.isnat(b))).all())


def _times(frame, plan: BlockPlan, line, checked: bool) -> np.ndarray:
    """A block's times: polars parses them by the head's format when it reads every cell and
    (on the first block, ``checked`` False) agrees with the careful reader; else the careful
    reader does."""
    fast = None
    if plan.time_format and not plan.time_numeric:
        column = frame[_name(plan.time)]
        parsed = column.str.strip_chars().str.to_datetime(plan.time_format, time_unit="ns", strict=False)
        if parsed.null_count() == column.null_count():
            fast = parsed.to_numpy()
            if checked:
                return fast
    careful = plan.times(_cells(frame, plan.time, plan.time_numeric), line)
    if fast is None or not _same_times(fast, careful):
        plan.time_format = None
    return careful


def _stats(readings) -> np.ndarray:
    """(missing count, highest, lowest) per column, (3, columns) float64, NaN without a reading."""
    import polars as pl

    row = readings.select(
        pl.all().null_count().name.prefix("n "), pl.all().max().name.prefix("hi "), pl.all().min().name.prefix("lo ")
    ).row(0)
    return np.asarray(row, dtype=np.float64).reshape(3, -1)


def _first_reading(column: np.ndarray) -> int:
    """Index of the first reading (not NaN); the length when there is none."""
    seen = ~np.isnan(column)
    return int(np.argmax(seen)) if seen.any() else len(column)


def fill_leading(values: np.ndarray) -> None:
    """In place: the rows before a sensor's first reading take that reading."""
    for j in np.flatnonzero(np.isnan(values[0])) if len(values) else []:
        first = _first_reading(values[:, j])
        if first < len(values):
            values[:first, j] = values[first, j]


def read_blocks(path: Path, plan: BlockPlan, estimate_rows: int, out=None, state: TaskState | None = None) -> BlockRows:
    """Every row of ``path`` after its header, read by ``plan``, its readings written to ``out``
    (a :class:`~pumpfl_gui.core.rows_cache.RowsFile`; ``values`` is then None) or gathered in
    an array sized by ``estimate_rows`` (it grows when the file holds more). Each block's gaps
    are filled forward, from the block before where it starts with one."""
    try:
        return _read_pass(path, plan, estimate_rows, out, state, null_text=False)
    except NullText:  # a cell like "NA" among the numbers: once more, reading such text as missing
        if out is not None:
            out.rewind()
        return _read_pass(path, plan, estimate_rows, out, state, null_text=True)


def _read_pass(path: Path, plan: BlockPlan, estimate_rows: int, out, state: TaskState | None, null_text: bool) -> BlockRows:
    import polars as pl

    k = len(plan.sensors)
    counted = [_name(i) for _, i in plan.sensors + plan.extras]
    values = None if out is not None else np.empty((max(estimate_rows, 1), k), dtype=np.float32)  # pages taken as written
    missing, highest, lowest = (
        np.zeros(len(counted), dtype=np.int64),
        np.full(len(counted), np.nan),
        np.full(len(counted), np.nan),
    )
    last = np.full(k, np.nan, dtype=np.float32)  # each sensor's latest reading so far
    times, status, labels = [], [], []
    n, started = 0, time.monotonic()
    blank = pl.all_horizontal(pl.all().is_null()).any()
    for frame in _batches(path, plan, null_text):
        if state is not None:
            state.check()
        rows = frame.height
        if frame.select(blank).item():
            raise NotBulk("blank lines or rows without a cell")  # the careful reader skips blank lines
        readings = frame.select(counted)
        stats = _stats(readings)
        if np.isinf(stats).any():  # infinities count as missing
            readings = readings.select(pl.when(pl.col(c).is_infinite()).then(None).otherwise(pl.col(c)).alias(c) for c in counted)
            stats = _stats(readings)
        missing += stats[0].astype(np.int64)
        highest, lowest = np.fmax(highest, stats[1]), np.fmin(lowest, stats[2])
        block = readings.select(pl.col(c).forward_fill() for c in counted[:k]).to_numpy(order="c")
        for j in np.flatnonzero(np.isnan(block[0]) & ~np.isnan(last)) if rows else []:  # a gap across the blocks' edge
            block[: _first_reading(block[:, j]), j] = last[j]
        last = np.where(np.isnan(block[-1]), last, block[-1]) if rows else last
        if out is not None:
            out.write(block)
        else:
            if n + rows > len(values):
                grown = np.empty((max(2 * len(values), n + rows), k), dtype=np.float32)
                grown[:n] = values[:n]
                values = grown
            values[n : n + rows] = block

        def line(row: int, first=n + 2) -> int:  # the header is line 1; no blank lines (above)
            return first + row

        if plan.time is not None:
            times.append(_times(frame, plan, line, checked=n > 0))
        if plan.label is not None:
            found_status, found = _labels(frame, plan, line)
            labels.append(found)
            if found_status is not None:
                status.append(found_status)
        n += rows
        if state is not None:
            done = min(n / max(estimate_rows, 1), 0.99)
            left = (time.monotonic() - started) * (1 - done) / done
            state.report(f"reading {path.name}: {n:,} rows, about {duration(round(left))} left", done)
    return BlockRows(
        values=None if values is None else values[:n],
        times=np.concatenate(times) if times else (None if plan.time is None else np.empty(0, "datetime64[ns]")),
        status=np.concatenate(status) if status else None,
        labels=np.concatenate(labels) if labels else None,
        missing=missing,
        highest=highest,
        lowest=lowest,
        written=out,
        count=n,
    )


def time_format(cell: str, dayfirst: bool) -> str | None:
    """The strftime format pandas reads ``cell`` by, unless it carries a time zone (those are
    converted to UTC by the careful reader only)."""
    from pandas.tseries.api import guess_datetime_format

    found = guess_datetime_format(cell, dayfirst=dayfirst)
    return None if found is None or "%z" in found or "%Z" in found else found


def squeeze(values: np.ndarray, use: np.ndarray) -> np.ndarray:
    """``values[:, use]`` in ``values``' own memory (C order): each chunk's rows move to or
    before where they were, so nothing is overwritten before it is read."""
    rows, kept = len(values), int(use.sum())
    flat = values.reshape(-1)
    for lo in range(0, rows, SQUEEZE_ROWS):
        chunk = values[lo : lo + SQUEEZE_ROWS][:, use].copy()
        flat[lo * kept : lo * kept + chunk.size] = chunk.reshape(-1)
    return flat[: rows * kept].reshape(rows, kept)
