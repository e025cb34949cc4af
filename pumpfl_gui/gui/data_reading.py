"""Reading a facility's CSV for the Client page, all in its worker thread: the rows, their
summary, whether they are long enough and a preview thin enough to draw (gui layer, no widgets).

A 20-million-row file takes a minute to read the first time; the page shows the rows read and
the time left as ``emit`` reports them and stops when the ``state`` is cancelled. Nothing here
runs on the window's thread: summing up 20 million rows there would freeze it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.data_summary import describe
from ..core.dataset import SensorData, load_sensor_csv
from ..core.detector import length_verdict
from ..core.task import TaskState
from ..core.windows import release

PREVIEW_SENSORS = 4
PREVIEW_ROWS = 100_000  # rows drawn in the preview at most; a longer file is drawn as its envelope


@dataclass
class ReadFile:
    data: SensorData
    summary: str  # describe(), several lines
    long_enough: bool
    verdict: str
    times: np.ndarray | None  # the preview's rows
    values: np.ndarray
    names: list[str]


def envelope(times: np.ndarray | None, values: np.ndarray, most: int) -> tuple[np.ndarray | None, np.ndarray]:
    """At most ``most`` rows of ``values`` that draw like all of them: each stretch of rows
    becomes its lowest and its highest reading per sensor, at the stretch's first time."""
    rows = len(values)
    if rows <= most:
        return times, np.asarray(values)
    step = -(-2 * rows // most)
    starts = np.arange(0, rows, step)
    low, high = np.fmin.reduceat(values, starts, axis=0), np.fmax.reduceat(values, starts, axis=0)
    thin = np.empty((2 * len(starts), values.shape[1]), dtype=values.dtype)
    thin[0::2], thin[1::2] = low, high
    return (None if times is None else np.repeat(times[starts], 2)), thin


def read_file(path: Path, emit, state: TaskState) -> ReadFile:
    """``path`` read and summed up; ``emit((message, fraction))`` reports the reading."""
    data = load_sensor_csv(path, state=state.reporting_to(lambda message, fraction: emit((message, fraction))))
    long_enough, verdict = length_verdict(data)
    k = min(PREVIEW_SENSORS, len(data.sensors))
    times, values = envelope(data.timestamps, data.values[:, :k], PREVIEW_ROWS)
    release(data.values)  # a long file's rows go back to the file cache until training needs them
    return ReadFile(data, describe(data), long_enough, verdict, times, values, data.sensors[:k])
