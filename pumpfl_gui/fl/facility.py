"""One facility's side of federated training, without any networking (fl layer; no Qt).

It owns the facility's data, scaler and local model; the client runner feeds it the global
parameters and the round's settings and sends back what it returns. The held-out part — the
last fifth of the facility's clean windows in time — is never trained on and gives the
evaluation loss every round.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..core.alarm_rules import DetectionSettings
from ..core.data_fit import check_trainable, detection_for
from ..core.dataset import SensorData
from ..core.detector import AGREED, INCOMPLETE_RUN, PERSONALISING, Detector, fit_scaler, prepare
from ..core.errors import ModelError
from ..core.model import build_model, get_parameters, set_parameters
from ..core.model_spec import ModelSpec
from ..core.model_store import save_detector
from ..core.pooling import error_sketch, scaling_stats
from ..core.task import TaskState
from ..core.training import EpochResult, train_epochs, window_errors
from ..core.windows import ScaledWindows, Scaler
from .limits import check_model
from .protocol import train_settings_from_config

HELD_OUT_FRACTION = 0.2
# Every 4th held-out window gives the evaluation loss: neighbours share 31 of 32 rows, so the
# mean barely moves (measured: README, "Measured") and evaluating costs a quarter.
EVAL_STRIDE = 4
# ... and at most this many, evenly spread: a facility with months of readings a second holds
# millions of held-out windows (20 s a round for 20 million rows), and the mean settles long before.
MAX_EVAL_WINDOWS = 25_000


def split_held_out(clean: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """(training windows, held-out windows): the last fifth of ``clean`` in time is held out."""
    cut = int(len(clean) * (1 - HELD_OUT_FRACTION))
    # Windows straddling the cut would leak held-out rows into training: drop them.
    limit = clean[cut] if cut < len(clean) else 1 << 62
    return clean[:cut][clean[:cut] + window <= limit], clean[cut:]


class Facility:
    """A facility's data — one file, or several whose windows never cross from one to the next.

    Each file keeps its own scaler, fitted on its own training rows (the detector's rule,
    :func:`~pumpfl_gui.core.detector.fit_scaler`), until the federation agrees one for all
    (:meth:`use_scaler`). After the last round the facility adapts the global model to its own
    rows (:meth:`final_detector`: personalised, or the global model calibrated as it is).
    """

    def __init__(
        self,
        data: SensorData | Sequence[SensorData],
        spec: ModelSpec,
        name: str | None = None,
        seed: int = 0,
        personalise: bool = True,
    ) -> None:
        parts = [data] if isinstance(data, SensorData) else list(data)
        if not parts:
            raise ValueError("a facility needs at least one data file")
        check_model(spec)  # the shape may come from the coordinator: bounded before any allocation
        for part in parts:
            check_trainable(part, spec.window)
        self.parts = parts
        self.data = parts[0]
        self.spec = spec
        self.name = name or self.data.path.stem
        self.seed = seed
        self.personalise = personalise  # fine-tune the global model on this facility's rows at the end
        self.shared_scaler: Scaler | None = None  # the federation's, once agreed (shared scaling)
        self._scale([fit_scaler(p, spec.window, detection_for(p, spec.window)) for p in parts])
        self.model = build_model(spec)
        self.final: Detector | None = None  # the detector saved at the end of the run

    def _scale(self, scalers: list[Scaler]) -> None:
        parts, spec = self.parts, self.spec
        self.scalers = scalers
        self.scaler = scalers[0]
        self.preps = [prepare(p, spec.window, sc) for p, sc in zip(parts, scalers)]
        # The files end to end, each scaled by its own scaler; window starts stay inside each file.
        self.offsets = np.cumsum([0] + [p.rows for p in parts])[:-1]
        self.view = ScaledWindows([(p.values, sc) for p, sc in zip(parts, scalers)], spec.window)
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
        if not (np.all(np.isfinite(scaler.mean)) and np.all(np.isfinite(scaler.scale)) and np.all(scaler.scale > 0)):
            raise ValueError("a shared scaler with non-finite means or scales that are not positive finite numbers")
        self.shared_scaler = scaler
        self._scale([scaler] * len(self.parts))

    def error_sketch(self, parameters: list[np.ndarray], state: TaskState | None = None) -> dict:
        """Quantiles of the global model's scores on the clean windows of every file, each file
        calibrated on its own rows (core/pooling.py)."""
        glob = self._global(parameters)
        scores = [glob.training_scores(part, state) for part in self.parts]
        rule = detection_for(self.data, self.spec.window)
        return error_sketch(np.concatenate(scores), (rule.quantile, rule.factor))

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

    @property
    def eval_starts(self) -> np.ndarray:
        """The held-out windows whose mean error is the evaluation loss."""
        return self.held_out[:: max(EVAL_STRIDE, -(-len(self.held_out) // MAX_EVAL_WINDOWS))]

    def evaluate(self, parameters: list[np.ndarray], state: TaskState | None = None) -> tuple[float, int]:
        set_parameters(self.model, parameters)
        errs = window_errors(self.model, self.view, self.eval_starts, state=state)
        return float(errs.mean()), int(len(errs))

    def _global(self, parameters: list[np.ndarray], rounds: int | None = None) -> Detector:
        """The federation's model, uncalibrated (with the agreed scaler, if any)."""
        model = build_model(self.spec)
        set_parameters(model, parameters)
        info = {"data_file": self.data.path.name, "trained": "federated", "facility": self.name, "model": "global"}
        if rounds is not None:
            info["rounds"] = rounds
        if self.shared_scaler is not None:
            info["scaler"] = AGREED
        return Detector(self.spec, model, self.shared_scaler, list(self.data.sensors), None, DetectionSettings(), info)

    def final_detector(
        self,
        parameters: list[np.ndarray],
        rounds: int | None = None,
        agreed_threshold: float | None = None,
        state: TaskState | None = None,
        data: SensorData | None = None,
        personalise: bool | None = None,
    ) -> Detector:
        """The facility's detector for ``data`` (its first file): the global model personalised
        on its own normal rows (or, with ``personalise`` off, calibrated as it is). When the
        facilities agreed a threshold (shared scaling), it was agreed for the global model's
        scores, so the global model is kept as it is and judged against it."""
        data = data or self.data
        base = self._global(parameters, rounds)
        if agreed_threshold is None and (self.personalise if personalise is None else personalise):
            detector = base.personalise(data, replace(PERSONALISING, seed=self.seed), state=state)
            detector.info["model"] = f"personalised from round {rounds}" if rounds is not None else "personalised"
        else:
            detector = base.calibrate(data, state)
        if agreed_threshold is not None:
            detector.threshold = float(agreed_threshold)
            detector.info["threshold"] = AGREED
        return detector

    def save_final(
        self,
        parameters: list[np.ndarray],
        folder: Path,
        rounds: int | None = None,
        agreed_threshold: float | None = None,
        planned: int | None = None,
        personalise: bool | None = None,
    ) -> Path:
        """Save this facility's detector; ``planned``: the run's rounds when it ended early (the
        model then says it comes from an incomplete run, core.detector.describe_model);
        ``personalise``: as :meth:`final_detector`."""
        if not all(np.all(np.isfinite(a)) for a in parameters):
            raise ModelError("the federation's model holds non-finite values (NaN or infinity); no model is saved")
        self.final = self.final_detector(parameters, rounds, agreed_threshold, personalise=personalise)
        if planned is not None:
            self.final.info[INCOMPLETE_RUN] = {"rounds": int(rounds or 0), "of": int(planned)}
        return save_detector(self.final, folder)
