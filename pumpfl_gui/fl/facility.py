"""One facility's side of federated training, without any networking (fl layer; no Qt).

It owns the facility's data, scaler and local model; the client runner feeds it the global
parameters and the round's settings and sends back what it returns. The held-out part — the
last fifth of the facility's clean windows in time — is never trained on and gives the
evaluation loss every round.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..core.dataset import SensorData
from ..core.detection import DetectionSettings, threshold_from_errors
from ..core.detector import Detector, check_trainable, prepare
from ..core.model import ModelSpec, build_model, get_parameters, set_parameters
from ..core.model_store import save_detector
from ..core.task import TaskState
from ..core.training import EpochResult, train_epochs, window_errors
from ..core.windows import Scaler
from .protocol import train_settings_from_config

HELD_OUT_FRACTION = 0.2


class Facility:
    def __init__(self, data: SensorData, spec: ModelSpec, name: str | None = None, seed: int = 0) -> None:
        check_trainable(data, spec.window)
        self.data = data
        self.spec = spec
        self.name = name or data.path.stem
        self.seed = seed
        # The scaler is the facility's own, fitted on its training rows only.
        self.scaler = Scaler.fit(data.values[data.train_mask()])
        self.prep = prepare(data, spec.window, self.scaler, train_stride=1)
        clean = self.prep.clean_starts
        cut = int(len(clean) * (1 - HELD_OUT_FRACTION))
        # Windows straddling the cut would leak held-out rows into training: drop them.
        self.train_pool = clean[:cut][clean[:cut] + spec.window <= (clean[cut] if cut < len(clean) else 1 << 62)]
        self.held_out = clean[cut:]
        if len(self.train_pool) == 0 or len(self.held_out) == 0:
            raise ValueError(f"{data.path.name} is too short to keep a held-out part for evaluation")
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
        results = train_epochs(self.model, self.prep.view, starts, settings, state, on_epoch)
        metrics = {"train_loss": float(results[-1].loss), "epochs": len(results), "seconds": time.perf_counter() - t0}
        return get_parameters(self.model), int(len(starts)), metrics

    def evaluate(self, parameters: list[np.ndarray], state: TaskState | None = None) -> tuple[float, int]:
        set_parameters(self.model, parameters)
        errs = window_errors(self.model, self.prep.view, self.held_out, state=state)
        return float(errs.mean()), int(len(errs))

    def detector(self, parameters: list[np.ndarray], detection: DetectionSettings = DetectionSettings()) -> Detector:
        """The global model with this facility's own scaler and locally computed threshold."""
        set_parameters(self.model, parameters)
        errs = window_errors(self.model, self.prep.view, self.prep.clean_starts)
        info = {"data_file": self.data.path.name, "trained": "federated", "facility": self.name}
        return Detector(self.spec, self.model, self.scaler, list(self.data.sensors), threshold_from_errors(errs, detection), detection, info)

    def save_final(self, parameters: list[np.ndarray], folder: Path) -> Path:
        return save_detector(self.detector(parameters), folder)
