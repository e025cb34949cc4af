"""The server's outputs, written after every round: global model, history, resume state (fl).

``OUT/global_model/`` is an ordinary model folder (``core/model_store.py``). Without shared
scaling it holds no scaler or threshold: each facility calibrates it on its own normal rows
when it scores, so ``pumpfl score --model OUT/global_model --data CSV`` works on any
facility's file. With shared scaling it holds the agreed scaler and, after the last round, the
agreed threshold, and scores every facility's file with them. ``OUT/history.json`` holds one
record per round.

What ``--resume OUT`` continues from is one round folder, ``OUT/rounds/round-NNNN/`` (model,
history, state), written completely under a temporary name and renamed into place; only
then does ``OUT/state.json`` — the pointer to the latest complete round — change, atomically.
A crash or a full disk at any moment leaves the previous round resumable, never half of one.
Folders are private (0700), files 0600. Nothing non-finite is ever saved or resumed, and a
resume checks the saved settings, sensors and network against the run it continues.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.alarm_rules import DetectionSettings
from ..core.detector import AGREED, Detector
from ..core.errors import ModelError, UserError
from ..core.files import private_dir, write_private
from ..core.model import build_model, set_parameters
from ..core.model_spec import ModelSpec
from ..core.model_store import load_detector, save_detector
from ..core.paths import user_data_dir
from ..core.windows import Scaler

MODEL_DIR = "global_model"
HISTORY = "history.json"
STATE = "state.json"  # OUT/state.json: the latest complete round; inside a round folder: its state
ROUNDS_DIR = "rounds"
KEEP_ROUNDS = 2  # round folders kept: the latest and the one before
FORMAT = 2  # 2: one round folder per round behind a pointer (1: four loose files)
# Settings a resumed run must share with the saved one: the network's shape, how readings are
# scaled, whether privacy is spent. Rounds, timeouts, epochs and the strategy may change.
MUST_MATCH = ("window", "channels", "kernel", "shared_scaling")


def new_run_dir() -> Path:
    return user_data_dir() / "runs" / time.strftime("server-%Y%m%d-%H%M%S")


def round_name(rnd: int) -> str:
    return f"round-{rnd:04d}"


def _check_finite(params: list[np.ndarray], scaler: Scaler | None, threshold: float | None) -> None:
    if not all(np.all(np.isfinite(a)) for a in params):
        raise ModelError("the global model holds non-finite values (NaN or infinity); the round is not saved")
    if scaler is not None and not (
        np.all(np.isfinite(scaler.mean)) and np.all(np.isfinite(scaler.scale)) and np.all(scaler.scale > 0)
    ):
        raise ModelError("the shared scaler holds non-finite values; the round is not saved")
    if threshold is not None and not (math.isfinite(threshold) and threshold > 0):
        raise ModelError(f"the agreed threshold ({threshold}) is not a positive number; the round is not saved")


def _detector(rnd, params, spec, sensors, settings, scaler, threshold) -> Detector:
    model = build_model(spec)
    set_parameters(model, params)
    info = {"trained": "federated", "model": "global", "rounds_completed": rnd, "settings": settings.to_dict()}
    if scaler is not None:
        info["scaler"] = AGREED
    if threshold is not None:
        info["threshold"] = AGREED
    return Detector(spec, model, scaler, list(sensors), threshold, DetectionSettings(), info)


def _write_json(path: Path, value) -> None:
    write_private(path, json.dumps(value, indent=2).encode())


def _private_tree(folder: Path) -> None:
    """Files 0600, folders 0700, below and including ``folder``."""
    for root, _dirs, files in os.walk(folder):
        os.chmod(root, 0o700)
        for name in files:
            os.chmod(Path(root) / name, 0o600)


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
    """Write the round's outputs; ``scaler`` and ``threshold``: the agreed ones (shared scaling).

    Returns the people's copy of the global model (``OUT/global_model``)."""
    _check_finite(params, scaler, threshold)
    out = Path(out)
    detector = _detector(rnd, params, spec, sensors, settings, scaler, threshold)
    rounds = private_dir(out / ROUNDS_DIR)
    name = round_name(rnd)
    staging = Path(tempfile.mkdtemp(dir=rounds, prefix=f".{name}.", suffix=".tmp"))
    try:
        save_detector(detector, staging / MODEL_DIR)
        _write_json(staging / HISTORY, {"rounds": history})
        state = {"format": FORMAT, "round": rnd, "sensors": list(sensors), "settings": settings.to_dict(), "spec": spec.to_dict()}
        if scaler is not None:
            state["shared_scaler"] = scaler.to_dict()
        if threshold is not None:
            state["agreed_threshold"] = float(threshold)
        _write_json(staging / STATE, state)
        _private_tree(staging)
        final = rounds / name
        if final.exists():  # left by a run that stopped before its pointer moved: never pointed to
            shutil.rmtree(final)
        os.rename(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _write_json(out / STATE, {"format": FORMAT, "round": rnd, "folder": f"{ROUNDS_DIR}/{name}"})
    _prune(rounds, rnd)
    # The people's copies: what `pumpfl score` and a reader of the history open.
    save_detector(detector, out / MODEL_DIR)
    _write_json(out / HISTORY, {"rounds": history})
    return out / MODEL_DIR


def _prune(rounds: Path, latest: int) -> None:
    """Keep the latest KEEP_ROUNDS round folders; drop older ones and stray staging folders."""
    for child in rounds.iterdir():
        stray = child.name.startswith(".") and child.name.endswith(".tmp")
        try:
            old = child.name.startswith("round-") and int(child.name[6:]) <= latest - KEEP_ROUNDS
        except ValueError:
            old = False
        if child.is_dir() and (stray or old):
            shutil.rmtree(child, ignore_errors=True)


@dataclass
class ResumeState:
    round: int
    sensors: list[str]
    parameters: list[np.ndarray]
    history: list
    join_code: str | None = field(default=None, repr=False)
    scaler: Scaler | None = None  # the agreed one, when the run used shared scaling
    spec: ModelSpec | None = None  # the network the run trains


def _refuse(folder: Path, why: str) -> UserError:
    return UserError(f"cannot resume from {folder}: {why}")


def _latest_round(folder: Path) -> tuple[int, Path]:
    try:
        pointer = json.loads((folder / STATE).read_text())
        if isinstance(pointer, dict) and "sensors" in pointer and "folder" not in pointer:
            raise _refuse(folder, "it was saved by an older PumpFL, whose checkpoints could be half-written; start a new run")
        rnd, where = int(pointer["round"]), folder / str(pointer["folder"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise _refuse(folder, f"it holds no finished round of a PumpFL server ({type(exc).__name__}: {exc})") from None
    if where.parent != folder / ROUNDS_DIR or where.name != round_name(rnd):
        raise _refuse(folder, "its state.json points outside its round folders")
    if not where.is_dir():
        raise _refuse(folder, f"its latest round ({where.name}) is missing")
    return rnd, where


def load(folder: Path, settings=None) -> ResumeState:
    """The latest complete round saved in ``folder``; with ``settings`` (the run that resumes),
    refused when they do not fit the saved run. UserError, in words, for anything unusable."""
    folder = Path(folder)
    rnd, where = _latest_round(folder)
    try:
        state = json.loads((where / STATE).read_text())
        history = json.loads((where / HISTORY).read_text())["rounds"]
        det = load_detector(where / MODEL_DIR)
    except ModelError as exc:
        raise _refuse(folder, f"its saved model is unusable ({exc})") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise _refuse(folder, f"round {rnd} is incomplete ({type(exc).__name__}: {exc})") from None
    if int(state.get("round", -1)) != rnd or not isinstance(history, list) or not history or history[-1].get("round") != rnd:
        raise _refuse(folder, f"round {rnd}'s files disagree about how many rounds were done")
    sensors = state.get("sensors")
    if sensors != det.sensors:
        raise _refuse(folder, "its saved sensors and its model's sensors differ")
    try:
        saved_spec = ModelSpec.from_dict(state["spec"])
        scaler = Scaler.from_dict(state["shared_scaler"]) if state.get("shared_scaler") else None
    except (KeyError, TypeError, ValueError) as exc:
        raise _refuse(folder, f"its saved network or shared scaler is damaged ({exc})") from None
    if saved_spec != det.spec:
        raise _refuse(folder, "its saved network and its model differ")
    params = [t.detach().numpy().copy() for t in det.model.state_dict().values()]
    try:
        _check_finite(params, scaler, None)
    except ModelError as exc:
        raise _refuse(folder, str(exc).replace("; the round is not saved", "")) from None
    if settings is not None:
        _check_settings(folder, rnd, state.get("settings") or {}, settings, det.spec)
    return ResumeState(rnd, list(sensors), params, history, _join_code(folder), scaler, det.spec)


def _check_settings(folder: Path, rnd: int, saved: dict, settings, spec: ModelSpec) -> None:
    """The resuming run's settings against the saved run's: same network, scaling and privacy."""
    now = settings.to_dict()
    for key in MUST_MATCH:
        if saved.get(key) != now.get(key):
            raise _refuse(
                folder,
                f"it was saved with {key} {saved.get(key)!r}; this run asks for {now.get(key)!r} (start a new run instead)",
            )
    if (saved.get("dp_noise_multiplier") is None) != (settings.dp_noise_multiplier is None):
        raise _refuse(
            folder,
            "it was saved with differential privacy "
            + ("off" if saved.get("dp_noise_multiplier") is None else "on")
            + "; a resumed run keeps that choice (its epsilon counts every round)",
        )
    if settings.rounds <= rnd:
        raise _refuse(folder, f"it has already done {rnd} rounds; ask for more than {rnd} to continue")


def _join_code(folder: Path) -> str | None:
    """The saved run's join code, from its invite file (a damaged one only costs the old code)."""
    invite_file = folder / "invite.txt"
    if not invite_file.is_file():
        return None
    from .invite import parse_invite

    try:
        return parse_invite(invite_file.read_text()).join_code or None
    except UserError:
        return None
