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
    :meth:`Scaler.fit`).
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
        self.scalers = [Scaler.fit(p.values[p.train_mask()], wander_below, spec.window) for p in parts]
        self.scaler = self.scalers[0]
        self.preps = [prepare(p, spec.window, sc) for p, sc in zip(parts, self.scalers)]
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
        self.model = build_model(spec)

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

    def detector(self, parameters: list[np.ndarray], detection: DetectionSettings = DetectionSettings()) -> Detector:
        """The global model with this facility's own scaler and locally computed threshold
        (of its first file, the one the app shows)."""
        set_parameters(self.model, parameters)
        errs = window_errors(self.model, self.preps[0].view, self.preps[0].clean_starts)
        info = {"data_file": self.data.path.name, "trained": "federated", "facility": self.name}
        return Detector(self.spec, self.model, self.scaler, list(self.data.sensors), threshold_from_errors(errs, detection), detection, info)

    def save_final(self, parameters: list[np.ndarray], folder: Path) -> Path:
        return save_detector(self.detector(parameters), folder)
