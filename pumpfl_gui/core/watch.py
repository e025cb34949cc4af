"""The day after training: a saved model watches a CSV that a historian or logger keeps
appending to (core layer; ``pumpfl watch`` and the Monitor page both use it).

Each :meth:`Watcher.poll` reads the rows that arrived since the last one and scores them with
just enough rows before them (:meth:`Detector.lookback`): the detector reads only the past, so
the flags are exactly those of scoring the whole file, at the cost of the new rows. An alarm
starts on the first flagged row of a stretch and ends on the first unflagged one; each names
its peak error and the sensors that made it.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .alarm_rules import flag_rows
from .dataset import SensorData, load_sensor_csv
from .detector import Detector
from .errors import UserError
from .windows import spread_rows

TOP_SENSORS = 3  # sensors named for an alarm
LEVEL_ROWS = 100_000  # a file's typical readings are judged on at most this many rows, evenly spread
OFF_SCALE_SPREADS = 6.0  # a sensor whose typical reading sits this many training spreads away does not match
FLOOD_SHARE = 0.5  # a file whose readings alarm more often than this gets a warning...
FLOOD_MIN_ROWS = 200  # ... once it has this many scored readings
MISMATCH_FLAGGED = 0.5  # a model that flags more than this share of a file's rows does not fit it
ALARM_LOG_COLUMNS = ("start", "end", "peak_error", "peak_time", "threshold", "sensors", "start_row", "end_row")


@dataclass
class Alarm:
    start_row: int
    start_time: str
    threshold: float
    peak: float = 0.0
    peak_row: int = 0
    peak_time: str = ""
    sensors: list[str] = field(default_factory=list)  # largest share of the peak first
    end_row: int | None = None  # exclusive; None while it lasts
    end_time: str = ""

    @property
    def ongoing(self) -> bool:
        return self.end_row is None

    def log_row(self) -> list[str]:
        return [
            self.start_time,
            self.end_time,
            f"{self.peak:.4g}",
            self.peak_time,
            f"{self.threshold:.4g}",
            ";".join(self.sensors),
            str(self.start_row),
            "" if self.end_row is None else str(self.end_row),
        ]


@dataclass
class WatchUpdate:
    """What one poll found: the file's rows now, the new rows' scores, alarms begun and ended."""

    rows: int
    first_new: int  # row number of the first new row
    scores: np.ndarray  # the new rows' scores (NaN where not judged yet)
    flags: np.ndarray  # the new rows in alarm
    times: np.ndarray | None  # the new rows' timestamps, where the file has them
    threshold: float
    started: list[Alarm] = field(default_factory=list)
    ended: list[Alarm] = field(default_factory=list)
    restarted: bool = False  # the file shrank (rotated or rewritten): read again from its start


def mismatch(detector: Detector, data: SensorData) -> str | None:
    """Why ``data`` does not look like what ``detector`` was calibrated on, in words, or None."""
    if detector.scaler is None or data.rows == 0:
        return None
    level = np.nanmedian(spread_rows(data.values, LEVEL_ROWS), axis=0)  # a long file: evenly spread rows
    spreads = np.abs(level - detector.scaler.mean) / detector.scaler.scale
    relative = detector.scaler.relative if detector.scaler.relative is not None else np.zeros(len(spreads), bool)
    off = [s for s, far, rel in zip(data.sensors, spreads, relative) if far > OFF_SCALE_SPREADS and not rel]
    if len(off) > max(1, len(data.sensors) // 4):
        shown = ", ".join(off[:4]) + (f" and {len(off) - 4} more" if len(off) > 4 else "")
        return (
            f"{len(off)} of {len(data.sensors)} sensors read far from what this model learned ({shown}): "
            "the file may come from another pump or use other units, and its alarms will mean little"
        )
    return None


def flooded(flags: np.ndarray) -> str | None:
    """When most readings of a file alarm, the model more likely does not fit the file than the
    pump was failing throughout: say so (None otherwise, and for a short file)."""
    if len(flags) < FLOOD_MIN_ROWS or flags.mean() <= FLOOD_SHARE:
        return None
    return (
        f"{flags.mean():.0%} of its readings are flagged: it may come from another pump or use other units, "
        "or the pump ran abnormally throughout; a model calibrated on this pump's normal running fits better"
    )


class Watcher:
    """Scores a growing CSV with a calibrated detector, poll by poll."""

    def __init__(self, detector: Detector, csv_path: Path, top_sensors: int = TOP_SENSORS) -> None:
        if not detector.calibrated:
            raise UserError(
                "this model is the federation's global model, not calibrated to a facility; watch with a "
                "facility's own model (its run folder), or score a file first with pumpfl score"
            )
        self.detector = detector
        self.csv = Path(csv_path)
        self.top_sensors = top_sensors
        self.rows_seen = 0
        self.alarm: Alarm | None = None  # the one going on
        self.alarms: list[Alarm] = []  # every alarm so far, ended or not
        self.warning: str | None = None  # set on the first read when the file does not fit the model
        self._stamp: tuple[int, int] | None = None
        self._unfinished_since: tuple[int, int] | None = None
        self._quiet = 0  # unflagged rows since the ongoing alarm's last flagged one

    def poll(self) -> WatchUpdate | None:
        """Read and score what arrived; None when nothing did. A last line still being written
        (no line end yet) waits for the next poll, unless it has stayed so for a whole poll."""
        stat = self.csv.stat()
        stamp = (stat.st_size, stat.st_mtime_ns)
        if stamp == self._stamp:
            return None
        if stat.st_size and not _ends_with_newline(self.csv) and self._unfinished_since != stamp:
            self._unfinished_since = stamp
            return None
        self._stamp = stamp
        data = load_sensor_csv(self.csv, sensors=self.detector.sensors)
        restarted = data.rows < self.rows_seen
        if restarted:
            self.rows_seen, self.alarm, self._quiet = 0, None, 0
        if self.rows_seen == 0 and self.warning is None:
            self.warning = mismatch(self.detector, data)
        if data.rows == self.rows_seen:
            return None
        return self._score_new(data, restarted)

    def _score_new(self, data: SensorData, restarted: bool) -> WatchUpdate:
        first = self.rows_seen
        start = max(0, first - self.detector.lookback())
        tail = _rows_from(data, start)
        scores, ratios = self.detector.scores_and_ratios(tail)
        flags = flag_rows(scores, self.detector.threshold, self.detector.detection.persistence)
        times = data.timestamps[first:] if data.timestamps is not None else None
        update = WatchUpdate(
            data.rows, first, scores[first - start :], flags[first - start :], times, self.detector.threshold, restarted=restarted
        )
        if first == 0 and self.warning is None:
            self.warning = flooded(update.flags)
        # Stretches closer than the merge gap are one alarm, as in score_data's events.
        gap = max(1, self.detector.detection.merge_gap)
        for i in range(first - start, tail.rows):
            row = start + i
            if flags[i] and self.alarm is None:
                self.alarm = Alarm(row, _time(data, row), self.detector.threshold)
                self.alarms.append(self.alarm)
                update.started.append(self.alarm)
            if self.alarm is None:
                continue
            if flags[i]:
                self._quiet = 0
                if scores[i] >= self.alarm.peak:
                    self._peak(self.alarm, row, scores[i], ratios[i], data)
                continue
            self._quiet += 1
            if self._quiet >= gap:
                end = row - self._quiet + 1
                self.alarm.end_row, self.alarm.end_time = end, _time(data, end)
                update.ended.append(self.alarm)
                self.alarm, self._quiet = None, 0
        self.rows_seen = data.rows
        return update

    def _peak(self, alarm: Alarm, row: int, score: float, ratios: np.ndarray, data: SensorData) -> None:
        alarm.peak, alarm.peak_row, alarm.peak_time = float(score), row, _time(data, row)
        order = np.argsort(-np.nan_to_num(ratios, nan=-np.inf))[: self.top_sensors]
        alarm.sensors = [data.sensors[j] for j in order]


def write_alarm_log(path: Path, alarms: list[Alarm]) -> Path:
    """Every alarm, one row each (an ongoing one has no end yet)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(ALARM_LOG_COLUMNS)
        writer.writerows(a.log_row() for a in alarms)
    return path


def alarm_line(alarm: Alarm) -> str:
    """``alarm: START … peak … sensors …`` as ``pumpfl watch`` prints it when an alarm starts."""
    return (
        f"alarm: {alarm.start_time} (row {alarm.start_row:,}) peak {alarm.peak:.3g} "
        f"(threshold {alarm.threshold:.3g}) sensors {', '.join(alarm.sensors)}"
    )


def ended_line(alarm: Alarm) -> str:
    return (
        f"alarm over: {alarm.start_time} to {alarm.end_time} ({(alarm.end_row or 0) - alarm.start_row:,} rows), "
        f"peak {alarm.peak:.3g} at {alarm.peak_time}, sensors {', '.join(alarm.sensors)}"
    )


def _rows_from(data: SensorData, start: int) -> SensorData:
    if start == 0:
        return data
    cut = {name: getattr(data, name)[start:] for name in ("timestamps", "status", "labels") if getattr(data, name) is not None}
    return replace(data, values=data.values[start:], **cut)


def _time(data: SensorData, row: int) -> str:
    if data.timestamps is None or row >= data.rows:
        return f"row {row:,}"
    return str(np.datetime_as_string(data.timestamps[row], unit="s")).replace("T", " ")


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as f:
        f.seek(-1, 2)
        return f.read(1) in (b"\n", b"\r")
