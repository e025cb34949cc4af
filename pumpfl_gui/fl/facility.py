"""One facility's side of federated training, without any networking (fl layer; no Qt).

It owns the facility's data, scaler and local model; the client runner feeds it the global
parameters and the round's settings and sends back what it returns. The held-out part — the
last fifth of the facility's clean windows in time — is never trained on and gives the
evaluation loss every round.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..core.dataset import SensorData
from ..core.detection import DetectionSettings, threshold_from_errors
from ..core.detector import Detector, check_trainable, prepare
from ..core.model import ModelSpec, build_model, get_parameters, set_parameters
from ..core.model_store import save_detector
from ..core.pooling import error_sketch, scaling_stats
from ..core.task import TaskState
from ..core.training import EpochResult, train_epochs, window_errors
from ..core.windows import Scaler, window_view
from .protocol import train_settings_from_config

HELD_OUT_FRACTION = 0.2
# Every 4th held-out window gives the evaluation loss: neighbours share 31 of 32 rows, so the
# mean barely moves (measured: README, "Measured") and evaluating costs a quarter.
EVAL_STRIDE = 4


def split_held_out(clean: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """(training windows, held-out windows): the last fifth of ``clean`` in time is held out."""
    cut = int(len(clean) * (1 - HELD_OUT_FRACTION))
    # Windows straddling the cut would leak held-out rows into training: drop them.
    limit = clean[cut] if cut < len(clean) else 1 << 62
    return clean[:cut][clean[:cut] + window <= limit], clean[cut:]


class Facility:
    """A facility's data — one file, or several whose windows never cross from one to the next.

    Each file keeps its own scaler, fitted on its own training rows (``wander_below``: see
    :meth:`Scaler.fit`), until the federation agrees one for all (:meth:`use_scaler`).
    """

    def __init__(
        self,
        data: SensorData | Sequence[SensorData],
        spec: ModelSpec,
        name: str | None = None,
        seed: int = 0,
        wander_below: float | None = None,
    ) -> None:
        parts = [data] if isinstance(data, SensorData) else list(data)
        if not parts:
            raise ValueError("a facility needs at least one data file")
        for part in parts:
            check_trainable(part, spec.window)
        self.parts = parts
        self.data = parts[0]
        self.spec = spec
        self.name = name or self.data.path.stem
        self.seed = seed
        self.shared_scaler: Scaler | None = None  # the federation's, once agreed (shared scaling)
        self._scale([Scaler.fit(p.values[p.train_mask()], wander_below, spec.window) for p in parts])
        self.model = build_model(spec)

    def _scale(self, scalers: list[Scaler]) -> None:
        parts, spec = self.parts, self.spec
        self.scalers = scalers
        self.scaler = scalers[0]
        self.preps = [prepare(p, spec.window, sc) for p, sc in zip(parts, scalers)]
        # One row array for all files; window starts are kept inside each file.
        self.offsets = np.cumsum([0] + [p.rows for p in parts])[:-1]
        scaled = self.preps[0].scaled if len(parts) == 1 else np.concatenate([pr.scaled for pr in self.preps])
        self.view = window_view(scaled, spec.window)
        pools, held = [], []
        for prep, offset in zip(self.preps, self.offsets):
            pool, held_out = split_held_out(prep.clean_starts, spec.window)
            pools.append(pool + offset)
            held.append(held_out + offset)
        self.train_pool = np.concatenate(pools)
        self.held_out = np.concatenate(held)
        if len(self.train_pool) == 0 or len(self.held_out) == 0:
            raise ValueError(f"{self.data.path.name} is too short to keep a held-out part for evaluation")

    # -- shared scaling: aggregates out, the agreed scaler in ---------------------------------

    def scaling_stats(self) -> dict:
        """Per-sensor counts, means and variances of the training rows (core/pooling.py)."""
        return scaling_stats([p.values[p.train_mask()] for p in self.parts])

    def use_scaler(self, scaler: Scaler) -> None:
        """Scale every file with the federation's agreed scaler from now on."""
        if scaler.mean.shape != (len(self.data.sensors),):
            raise ValueError(f"the shared scaler has {scaler.mean.shape[0]} sensors; this facility has {len(self.data.sensors)}")
        self.shared_scaler = scaler
        self._scale([scaler] * len(self.parts))

    def error_sketch(self, parameters: list[np.ndarray], state: TaskState | None = None) -> dict:
        """Quantiles of the model's errors on every clean window of every file (core/pooling.py)."""
        set_parameters(self.model, parameters)
        clean = np.concatenate([pr.clean_starts + off for pr, off in zip(self.preps, self.offsets)])
        return error_sketch(window_errors(self.model, self.view, clean, state=state))

    @property
    def samples(self) -> int:
        return int(len(self.train_pool))

    def fit(
        self,
        parameters: list[np.ndarray],
        config: dict,
        state: TaskState | None = None,
        on_epoch: Callable[[EpochResult], None] | None = None,
    ) -> tuple[list[np.ndarray], int, dict]:
        settings = train_settings_from_config(config, self.seed)
        set_parameters(self.model, parameters)
        starts = self.train_pool[:: settings.stride]
        t0 = time.perf_counter()
        results = train_epochs(self.model, self.view, starts, settings, state, on_epoch)
        metrics = {"train_loss": float(results[-1].loss), "epochs": len(results), "seconds": time.perf_counter() - t0}
        return get_parameters(self.model), int(len(starts)), metrics

    def evaluate(self, parameters: list[np.ndarray], state: TaskState | None = None) -> tuple[float, int]:
        set_parameters(self.model, parameters)
        errs = window_errors(self.model, self.view, self.held_out[::EVAL_STRIDE], state=state)
        return float(errs.mean()), int(len(errs))

    def detector(
        self, parameters: list[np.ndarray], detection: DetectionSettings = DetectionSettings(), agreed_threshold: float | None = None
    ) -> Detector:
        """The global model with this facility's scaler (or the shared one) and threshold: the
        agreed one, else computed locally on its first file, the one the app shows."""
        set_parameters(self.model, parameters)
        info = {"data_file": self.data.path.name, "trained": "federated", "facility": self.name}
        if agreed_threshold is not None:
            info["threshold"] = "agreed across facilities"
            threshold = float(agreed_threshold)
        else:
            threshold = threshold_from_errors(window_errors(self.model, self.preps[0].view, self.preps[0].clean_starts), detection)
        if self.shared_scaler is not None:
            info["scaler"] = "agreed across facilities"
        return Detector(self.spec, self.model, self.scaler, list(self.data.sensors), threshold, detection, info)

    def save_final(self, parameters: list[np.ndarray], folder: Path, agreed_threshold: float | None = None) -> Path:
        return save_detector(self.detector(parameters, agreed_threshold=agreed_threshold), folder)
