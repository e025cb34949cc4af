"""What federating gave this facility: its own rows trained alone beside the federation (fl; no Qt).

While a facility takes part, :class:`AloneTraining` trains a second model on the very same
windows, in the federation's rounds and with each round's settings, but never averaged with
anyone: a background thread, one round's training per round, while the facility waits for the
others. At the end both models are calibrated on the facility's rows and scored on its file
(:func:`compare`); ``comparison.json`` in the facility's output folder keeps both sets of
figures and which model the facility keeps for Monitor, and why.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..core.data_fit import detection_for
from ..core.dataset import SensorData
from ..core.detector import Detector, score_data
from ..core.files import write_atomic
from ..core.metrics import headline_figures
from ..core.model import build_model, get_parameters
from ..core.model_store import save_detector
from ..core.task import TaskState
from ..core.training import train_epochs
from .facility import Facility
from .protocol import train_settings_from_config

COMPARISON_FILE = "comparison.json"
ALONE_FOLDER = "alone"  # the model trained alone, inside the facility's output folder
ALONE, FEDERATED = "alone", "federated"
MODEL_WORDS = {ALONE: "the model trained alone", FEDERATED: "the federated model"}


class AloneTraining:
    """The facility's own model, trained in the federation's rounds with the same settings.

    It takes the facility's windows as they are at the start (each file scaled by its own
    training rows: a facility alone agrees no scaler with anyone) and trains without FedProx's
    pull, since there is no global model to be pulled to."""

    def __init__(self, facility: Facility) -> None:
        self.spec = facility.spec
        self.seed = facility.seed
        self._view = facility.view
        self._pool = facility.train_pool
        self.model = build_model(facility.spec, facility.seed)
        self.rounds = 0
        self._task = TaskState()
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"pumpfl-alone-{facility.name}")
        self._futures: list[Future] = []

    def add_round(self, config: dict) -> None:
        """Train one more round in the background with this round's settings (already checked
        by the facility before its own training)."""
        settings = replace(train_settings_from_config(config, self.seed), proximal_mu=0.0)
        self._futures.append(self._executor.submit(self._round, settings))

    def _round(self, settings) -> None:
        train_epochs(self.model, self._view, self._pool[:: settings.stride], settings, self._task)
        with self._lock:
            self.rounds += 1

    def parameters(self, state: TaskState | None = None) -> list[np.ndarray]:
        """The model after every round asked for so far; waits for the background work
        (``state`` may cancel the wait)."""
        for future in self._futures:
            while True:
                if state is not None:
                    state.check()
                try:
                    future.result(timeout=0.2)
                    break
                except TimeoutError:
                    continue
        return get_parameters(self.model)

    def finish(self, federated: Detector, data: SensorData, folder: Path, state: TaskState | None) -> dict:
        """The comparison (:func:`save_comparison`) once every round asked for is trained; with
        ``state`` None (a stop) at once, with the rounds finished so far."""
        if state is None:
            self.close()
        else:
            self.parameters(state)
        return save_comparison(self, federated, data, folder, state)

    def close(self) -> None:
        """Stop the background training (a round in progress stops at its next batch)."""
        self._task.cancel()
        self._executor.shutdown(wait=True, cancel_futures=True)


def alone_detector(training: AloneTraining, data: SensorData, state: TaskState | None = None) -> Detector:
    """The model trained alone, calibrated on ``data``'s normal rows with its own scaler."""
    detection = detection_for(data, training.spec.window)  # a model trained alone: its margin, not a federation's
    info = {"data_file": data.path.name, "model": "trained alone", "rounds": training.rounds}
    untrained = Detector(training.spec, training.model, None, list(data.sensors), None, detection, info)
    detector = untrained.calibrate(data, state)
    detector.info["trained"] = "alone, in the federation's rounds"
    return detector


def keep_which(alone: dict, federated: dict) -> tuple[str, str]:
    """Which model a facility keeps for Monitor, and why, from the two models' figures on its
    own file, criterion by criterion: more failures caught before breakdown (or, without a
    machine status, more labelled anomalies); fewer false alarms; a longer warning; a ROC-AUC
    higher by 0.01 or more. Where none tells them apart, the federated one: it has learned from
    every facility's rows."""
    failures = bool(alone.get("failures") or federated.get("failures"))
    if not failures and not (alone.get("labelled_events") or federated.get("labelled_events")):
        return (
            FEDERATED,
            (
                "your file has no failures or labelled anomalies to judge by, "
                "and the federated one has learned from every facility's rows"
            ),
        )
    caught, unit = ("caught", "failures") if failures else ("labelled_caught", "labelled anomalies")
    alarms = "false_alarms" if alone.get("false_alarms") is not None else "false_alarm_pct"
    criteria = (  # (key, higher is better, smallest difference that counts, words)
        (caught, True, 0.5, "catches {mine:g} {unit} on your file, {other} {theirs:g}"),
        (alarms, False, 1e-9, "catches as much and raises fewer false alarms ({mine:g} against {theirs:g} for {other})"),
        ("median_lead_hours", True, 0.1, "catches as much, as quietly, and warns earlier ({mine:.1f} h against {theirs:.1f} h)"),
        (
            "roc_auc",
            True,
            0.01,
            "catches as much, as quietly, and ranks readings better (ROC-AUC {mine:.3f} against {theirs:.3f})",
        ),
    )
    words = MODEL_WORDS
    for key, higher, margin, sentence in criteria:
        a, f = alone.get(key), federated.get(key)
        if a is None or f is None or abs(a - f) < margin:
            continue
        best = ALONE if (a > f) == higher else FEDERATED
        mine, theirs = (a, f) if best == ALONE else (f, a)
        other = words[FEDERATED if best == ALONE else ALONE]
        return best, f"{words[best]} " + sentence.format(mine=mine, theirs=theirs, other=other, unit=unit)
    return FEDERATED, "both models score your file about the same, and the federated one has learned from every facility's rows"


def compare(alone: Detector, federated: Detector, data: SensorData, state: TaskState | None = None) -> dict:
    """Both detectors scored on ``data``: their figures side by side and which one to keep."""
    figures = {}
    for name, detector in ((ALONE, alone), (FEDERATED, federated)):
        figures[name] = {**headline_figures(score_data(detector, data, state).metrics), "model": detector.info.get("model")}
    keep, why = keep_which(figures[ALONE], figures[FEDERATED])
    return {"data_file": data.path.name, **figures, "keep": keep, "why": why}


def save_comparison(training: AloneTraining, federated: Detector, data: SensorData, folder: Path, state=None) -> dict:
    """Calibrate the model trained alone, save it in ``folder/alone``, compare it with the
    facility's federated model (saved in ``folder``) and write ``folder/comparison.json``."""
    alone = alone_detector(training, data, state)
    save_detector(alone, folder / ALONE_FOLDER)
    result = compare(alone, federated, data, state)
    result["rounds"] = training.rounds
    result["models"] = {ALONE: str(folder / ALONE_FOLDER), FEDERATED: str(folder)}
    result["kept_model"] = result["models"][result["keep"]]
    write_atomic(folder / COMPARISON_FILE, (json.dumps(result, indent=2) + "\n").encode())
    return result


def _num(value, spec: str, suffix: str = "") -> str:
    return "–" if value is None else f"{format(value, spec)}{suffix}"


def comparison_rows(comparison: dict) -> list[tuple[str, str, str]]:
    """(what, alone, federated) lines for a table or a terminal; only what the file can show."""
    a, f = comparison[ALONE], comparison[FEDERATED]
    rows: list[tuple[str, str, str]] = []
    if a.get("failures"):
        rows.append(("Failures caught", f"{a['caught']} of {a['failures']}", f"{f['caught']} of {f['failures']}"))
        lead = "Median warning time" if max(a["caught"], f["caught"]) > 1 else "Warning time"
        rows.append((lead, _num(a["median_lead_hours"], ".1f", " h"), _num(f["median_lead_hours"], ".1f", " h")))
    if a.get("false_alarms_per_day") is not None:
        rows.append(("False alarms per day", _num(a["false_alarms_per_day"], ".2f"), _num(f["false_alarms_per_day"], ".2f")))
    if a.get("labelled_events"):
        n = a["labelled_events"]
        rows.append(("Labelled anomalies caught", f"{a['labelled_caught']} of {n}", f"{f['labelled_caught']} of {n}"))
    if a.get("false_alarm_pct") is not None and a.get("false_alarms_per_day") is None:
        rows.append(("Normal readings alarmed", _num(a["false_alarm_pct"], ".1f", " %"), _num(f["false_alarm_pct"], ".1f", " %")))
    if a.get("roc_auc") is not None or f.get("roc_auc") is not None:
        rows.append(("ROC-AUC", _num(a["roc_auc"], ".3f"), _num(f["roc_auc"], ".3f")))
    return rows


def kept_sentence(comparison: dict) -> str:
    """The model kept for Monitor and why, as two sentences."""
    why = comparison["why"]
    return f"Kept for Monitor: {MODEL_WORDS[comparison['keep']]}. {why[0].upper()}{why[1:]}."
