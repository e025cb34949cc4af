"""Model folders: weights plus JSON metadata, loaded without running any code (core layer).

A model folder holds ``model.json`` (architecture, sensors, window, scaler, residual spread,
threshold, detection rules, provenance) and ``weights.npz`` (one array per network tensor).
Arrays are read with ``allow_pickle=False`` and the JSON with the standard parser, so a hostile
model folder can at worst be refused — never execute anything (unlike ``torch.load`` of a pickle).
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import torch

from .. import __version__
from .alarm_rules import DetectionSettings
from .detector import Detector
from .errors import ModelError
from .files import write_atomic
from .model import build_model
from .model_spec import ModelSpec
from .windows import Scaler

FORMAT = "pumpfl-model"
FORMAT_VERSION = 2  # 2: scores from per-sensor residuals (core/alarm_rules.py); 1 is not comparable
META_FILE = "model.json"
WEIGHTS_FILE = "weights.npz"


def save_detector(detector: Detector, folder: str | Path) -> Path:
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ModelError(f"{folder} is a file; give a folder to save the model in")
    state = {k: v.detach().cpu().numpy() for k, v in detector.model.state_dict().items()}
    check_finite(detector, state)
    folder.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "app_version": __version__,
        "spec": detector.spec.to_dict(),
        "sensors": list(detector.sensors),
        # A federation's global model has neither (each facility calibrates it on its own rows),
        # unless the facilities agreed them (shared scaling).
        "scaler": detector.scaler.to_dict() if detector.scaler is not None else None,
        "threshold": detector.threshold,
        "spread": detector.spread.tolist() if detector.spread is not None else None,
        "fast_spread": detector.fast_spread.tolist() if detector.fast_spread is not None else None,
        "fast_weight": detector.fast_weight,
        "detection": detector.detection.to_dict(),
        "parameters": {k: list(v.shape) for k, v in state.items()},
        "info": detector.info,
    }
    weights = io.BytesIO()
    np.savez(weights, **state)
    write_atomic(folder / WEIGHTS_FILE, weights.getvalue())
    write_atomic(folder / META_FILE, json.dumps(meta, indent=2).encode())
    return folder


def check_finite(detector: Detector, state: dict[str, np.ndarray] | None = None) -> None:
    """Raise ModelError unless the weights, scaler and threshold are finite numbers: a NaN
    threshold never alarms (``score > nan`` is false), NaN weights score nothing."""
    if state is None:
        state = {k: v.detach().cpu().numpy() for k, v in detector.model.state_dict().items()}
    bad = [k for k, v in state.items() if not np.all(np.isfinite(v))]
    if bad:
        raise ModelError(f"the model's weights hold non-finite values ({bad[0]}); it is not saved")
    sc = detector.scaler
    if sc is not None and not (np.all(np.isfinite(sc.mean)) and np.all(np.isfinite(sc.scale)) and np.all(sc.scale > 0)):
        raise ModelError("the model's scaler holds non-finite or non-positive values; it is not saved")
    if detector.threshold is not None and not (np.isfinite(detector.threshold) and detector.threshold > 0):
        raise ModelError(f"the model's threshold ({detector.threshold}) is not a positive number; it is not saved")


def load_detector(folder: str | Path) -> Detector:
    folder = Path(folder)
    meta_path, weights_path = folder / META_FILE, folder / WEIGHTS_FILE
    if not folder.is_dir():
        raise ModelError(f"model folder {folder} does not exist")
    if not meta_path.is_file() or not weights_path.is_file():
        raise ModelError(f"{folder} is not a PumpFL model folder (it needs {META_FILE} and {WEIGHTS_FILE})")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{meta_path} is not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelError(f"{meta_path} is not a PumpFL model description")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise ModelError(f"{folder} was saved by a newer PumpFL ({meta.get('app_version')}); update the app")
    if meta.get("format_version", 0) < FORMAT_VERSION:
        raise ModelError(
            f"{folder} was saved by PumpFL {meta.get('app_version')}, which scored readings another way; train it again"
        )
    try:
        spec = ModelSpec.from_dict(meta["spec"])
        sensors = [str(s) for s in meta["sensors"]]
        scaler = Scaler.from_dict(meta["scaler"]) if meta["scaler"] is not None else None
        threshold = float(meta["threshold"]) if meta["threshold"] is not None else None
        detection = DetectionSettings.from_dict(meta.get("detection", {}))
        spread = np.asarray(meta["spread"], dtype=np.float64) if meta.get("spread") is not None else None
        fast_spread = np.asarray(meta["fast_spread"], dtype=np.float64) if meta.get("fast_spread") is not None else None
        fast_weight = float(meta["fast_weight"]) if meta.get("fast_weight") is not None else None
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{meta_path} is incomplete or malformed ({exc})") from None
    if len(sensors) != spec.sensors or (scaler is not None and scaler.mean.shape != (spec.sensors,)):
        raise ModelError(f"{meta_path} is inconsistent: sensors, scaler and architecture disagree")
    if spread is not None and (spread.shape != (spec.sensors,) or not np.all(np.isfinite(spread)) or not np.all(spread > 0)):
        raise ModelError(f"{meta_path} is inconsistent: the residual spread must be one positive number per sensor")
    if threshold is not None and not (np.isfinite(threshold) and threshold > 0):
        raise ModelError(f"{meta_path} holds an unusable threshold ({threshold})")
    fast_problem = _fast_look_problem(detection, spread, fast_spread, fast_weight, spec.sensors)
    if fast_problem:
        raise ModelError(f"{meta_path} is inconsistent: {fast_problem}")
    model = build_model(spec)
    try:
        with np.load(weights_path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ModelError(f"{weights_path} cannot be read as plain arrays ({exc})") from None
    expected = model.state_dict()
    if set(arrays) != set(expected):
        raise ModelError(f"{weights_path} does not hold this architecture's weights")
    for name, tensor in expected.items():
        if tuple(arrays[name].shape) != tuple(tensor.shape):
            raise ModelError(f"{weights_path}: {name} has shape {arrays[name].shape}, expected {tuple(tensor.shape)}")
    model.load_state_dict({k: torch.from_numpy(np.array(arrays[k], dtype=np.float32)) for k in expected})
    model.eval()
    info = dict(meta.get("info", {}))
    detector = Detector(spec, model, scaler, sensors, threshold, detection, info, spread, fast_spread, fast_weight)
    try:
        check_finite(detector)
    except ModelError as exc:
        raise ModelError(f"{folder} cannot be used: {str(exc).replace('; it is not saved', '')}") from None
    return detector


def _fast_look_problem(detection, spread, fast_spread, fast_weight, sensors: int) -> str | None:
    """Why a saved model's fast look (core/alarm_rules.py) cannot be used as saved, or None:
    a calibrated model whose rules have one needs its spread and weight, and nothing else does."""
    if fast_spread is None and fast_weight is None:
        if detection.fast is not None and spread is not None:
            return "its rules have a fast look but no spread or weight for it"
        return None
    if detection.fast is None or fast_spread is None or fast_weight is None:
        return "the fast look's spread and weight come together, with rules that have one"
    if fast_spread.shape != (sensors,) or not np.all(np.isfinite(fast_spread)) or not np.all(fast_spread > 0):
        return "the fast look's spread must be one positive number per sensor"
    if not (np.isfinite(fast_weight) and fast_weight > 0):
        return f"the fast look's weight ({fast_weight}) is not a positive number"
    return None
