"""The server's outputs, written after every round: global model, history, resume state (fl).

``OUT/global_model/`` is an ordinary model folder (``core/model_store.py``). Without shared
scaling it holds no scaler or threshold: each facility calibrates it on its own normal rows
when it scores, so ``pumpfl score --model OUT/global_model --data CSV`` works on any
facility's file. With shared scaling it holds the agreed scaler and, after the last round, the
agreed threshold, and scores every facility's file with them.
``OUT/history.json`` holds one record per round; ``OUT/state.json`` lets ``--resume OUT``
continue after the last completed round.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.detection import DetectionSettings
from ..core.detector import AGREED, Detector
from ..core.errors import UserError
from ..core.files import write_atomic
from ..core.model import ModelSpec, build_model, set_parameters
from ..core.model_store import load_detector, save_detector
from ..core.paths import user_data_dir
from ..core.windows import Scaler

MODEL_DIR = "global_model"
HISTORY = "history.json"
STATE = "state.json"


def new_run_dir() -> Path:
    return user_data_dir() / "runs" / time.strftime("server-%Y%m%d-%H%M%S")


def save(
    out: Path,
    rnd: int,
    params: list[np.ndarray],
    spec: ModelSpec,
    sensors: list[str],
    history: list,
    settings,
    scaler: Scaler | None = None,
    threshold: float | None = None,
) -> Path:
    """Write the round's outputs; ``scaler`` and ``threshold``: the agreed ones (shared scaling)."""
    model = build_model(spec)
    set_parameters(model, params)
    info = {"trained": "federated", "model": "global", "rounds_completed": rnd, "settings": settings.to_dict()}
    if scaler is not None:
        info["scaler"] = AGREED
    if threshold is not None:
        info["threshold"] = AGREED
    save_detector(Detector(spec, model, scaler, list(sensors), threshold, DetectionSettings(), info), out / MODEL_DIR)
    write_atomic(out / HISTORY, json.dumps({"rounds": history}, indent=2).encode())
    state = {"round": rnd, "sensors": list(sensors), "settings": settings.to_dict()}
    if scaler is not None:
        state["shared_scaler"] = scaler.to_dict()
    write_atomic(out / STATE, json.dumps(state, indent=2).encode())
    return out / MODEL_DIR


@dataclass
class ResumeState:
    round: int
    sensors: list[str]
    parameters: list[np.ndarray]
    history: list
    join_code: str | None = None
    scaler: Scaler | None = None  # the agreed one, when the run used shared scaling
    spec: ModelSpec | None = None  # the network the run trains


def load(folder: Path) -> ResumeState:
    folder = Path(folder)
    try:
        state = json.loads((folder / STATE).read_text())
        history = json.loads((folder / HISTORY).read_text())["rounds"]
    except (OSError, ValueError, KeyError) as exc:
        raise UserError(f"cannot resume from {folder}: it holds no finished round of a PumpFL server ({exc})") from None
    det = load_detector(folder / MODEL_DIR)
    params = [t.detach().numpy().copy() for t in det.model.state_dict().values()]
    join_code = None
    invite_file = folder / "invite.txt"
    if invite_file.is_file():
        from .invite import parse_invite

        try:
            join_code = parse_invite(invite_file.read_text()).join_code or None
        except UserError:
            pass  # a damaged invite file only costs the old join code
    try:
        scaler = Scaler.from_dict(state["shared_scaler"]) if state.get("shared_scaler") else None
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"cannot resume from {folder}: its shared scaler is damaged ({exc})") from None
    return ResumeState(int(state["round"]), list(state["sensors"]), params, history, join_code, scaler, det.spec)
