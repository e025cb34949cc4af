"""What a facility's data gets before any training: the network's shape, the detection rules
that suit how much normal history it has, and whether it is long enough for them (core layer;
numpy only, so that ``pumpfl data check`` and the app's preview do not load torch).

The detector (:mod:`~pumpfl_gui.core.detector`) applies these; the rules themselves are in
:mod:`~pumpfl_gui.core.alarm_rules`.
"""

from __future__ import annotations

from dataclasses import replace

from .alarm_rules import DetectionSettings, runs
from .dataset import SensorData
from .model_spec import ModelSpec
from .windows import clean_window_starts


def rows_needed(window: int, detection: DetectionSettings) -> int:
    """Normal rows in a row a file needs to train and calibrate: a window, a smoothing span of
    windows after it, and as many again for the threshold to rest on."""
    return window + 2 * detection.span(window) - 1


SHORT_HISTORY = DetectionSettings()  # chosen on SKAB (core/alarm_rules.py)
# A model that learned from the federation (personalised from its model, or that model calibrated
# as it is) fits a facility's training rows less tightly than one trained on them alone, so its
# fast look needs less margin: on SKAB's development files the fast look's 95th percentile on the
# unseen normal rows before an anomaly is 1.43 times its highest training score for a personalised
# model, 1.64 for one trained alone (geometric means, 3 seeds; 1.33 and 1.41 once the fast look
# reads only the sensors judged by level). 2.0 instead of 2.75 was picked on valve1 and confirmed
# on valve2 (docs/BENCHMARKS.md, "A federation's model: less margin").
SHORT_HISTORY_SHARED_MODEL = replace(SHORT_HISTORY, fast_factor=2.0)
SHORT_HISTORY_WINDOWS = 20  # fewer clean training windows than this many window lengths: a short history


def detection_for(data: SensorData, window: int, shared_model: bool = False) -> DetectionSettings:
    """The detection rules for a facility's data, by how much normal history it has;
    ``shared_model``: for a model that learned from a federation (less margin, short history)."""
    clean = len(clean_window_starts(data.train_mask(), window))
    if clean < SHORT_HISTORY_WINDOWS * window:
        return SHORT_HISTORY_SHARED_MODEL if shared_model else SHORT_HISTORY
    # Chosen on the pump data (docs/BENCHMARKS.md, "Choosing the detector").
    return DetectionSettings(quantile=0.995, factor=1.0, smooth=3 * window, top=4, wander=False, fast=None)


def spec_for(data: SensorData) -> ModelSpec:
    """The network's shape for this data: its sensors and how often it is read."""
    return ModelSpec.for_data(len(data.sensors), data.interval_s)


def check_trainable(data: SensorData, window: int, detection: DetectionSettings = DetectionSettings()) -> None:
    """Raise ValueError with a human sentence when the data cannot train a window model."""
    problem = trainable_problem(data, window, detection)
    if problem:
        raise ValueError(problem)


def trainable_problem(data: SensorData, window: int, detection: DetectionSettings = DetectionSettings()) -> str | None:
    """Why ``data`` cannot train (or calibrate) a model with this window, or None."""
    need = rows_needed(window, detection)
    n_ok = int(data.train_mask().sum())
    if data.rows < need:
        return f"{data.path.name} has {data.rows:,} rows; a {window}-row window needs at least {need:,} normal rows in a row"
    if len(clean_window_starts(data.train_mask(), need)) == 0:
        return f"{data.path.name} has no stretch of {need:,} normal rows to learn from ({n_ok:,} normal rows in all)"
    return None


def length_verdict(data: SensorData) -> tuple[bool, str]:
    """(long enough?, one sentence): whether ``data`` can train and be scored with the model
    shape it will get (``pumpfl data check`` and the app's preview say it)."""
    spec = spec_for(data)
    need = rows_needed(spec.window, detection_for(data, spec.window))
    longest = max((end - start for start, end in runs(data.train_mask())), default=0)
    every = f"one reading every {data.interval_s:g} s" if data.interval_s else "no time column"
    shape = f"windows of {spec.window} rows ({every}), so it needs {need:,} normal rows in a row"
    if longest < need:
        return False, f"too short to train: the model reads {shape}; the longest stretch here is {longest:,}"
    return True, f"long enough to train and score: the model reads {shape}; the longest stretch here is {longest:,}"
