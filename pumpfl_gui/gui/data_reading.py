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

from ..core.data_fit import length_verdict
from ..core.data_summary import describe
from ..core.dataset import SensorData, load_sensor_csv
from ..core.task import TaskState
from .plots.envelope import envelope

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


def read_file(path: Path, emit, state: TaskState) -> ReadFile:
    """``path`` read and summed up; ``emit((message, fraction))`` reports the reading."""
    data = load_sensor_csv(path, state=state.reporting_to(lambda message, fraction: emit((message, fraction))))
    long_enough, verdict = length_verdict(data)
    k = min(PREVIEW_SENSORS, len(data.sensors))
    times, values = envelope(data.timestamps, data.values, PREVIEW_ROWS, k)
    return ReadFile(data, describe(data), long_enough, verdict, times, values, data.sensors[:k])
