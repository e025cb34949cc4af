"""One round's record, as ``history.json`` keeps it and the round's event reports it (fl layer;
no Flower, no Qt).

Built from PumpFL's own answers (``fl/messages.Answer``): what each facility trained on and its
loss, how the global model did on each one's held-out rows, who left or was dropped and why,
the traffic and time, and with differential privacy the epsilon spent so far.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import numpy as np

from ..core.pooling import check_sketch
from . import protocol as P
from .messages import Answer
from .privacy import epsilon
from .protocol import FederationSettings

log = logging.getLogger(__name__)


def trained_figures(answers: list[Answer], name_of: Callable[[str], str]) -> dict[str, dict]:
    """By facility name: the windows it trained on and its training loss."""
    return {name_of(a.cid): {"samples": a.samples, "train_loss": float(a.metrics.get("train_loss", np.nan))} for a in answers}


def add_evaluations(per_client: dict[str, dict], answers: list[Answer], name_of: Callable[[str], str]) -> list[dict]:
    """Each evaluation's loss into ``per_client``; returns the error summaries the facilities
    sent (shared scaling's last round), malformed ones left out."""
    sketches = []
    for a in answers:
        mine = per_client.setdefault(name_of(a.cid), {})
        mine["eval_loss"], mine["eval_samples"] = a.loss, a.samples
        sketch = read_sketch(a.metrics.get(P.CFG_SKETCH))
        if sketch is not None:
            sketches.append(sketch)
    return sketches


def read_sketch(value) -> dict | None:
    """A facility's error summary, or None when it sent none or a malformed one."""
    if not value:
        return None
    try:
        sketch = json.loads(str(value))
        check_sketch(sketch)
    except ValueError:
        log.warning("ignored a malformed error summary")
        return None
    return sketch


def round_record(
    s: FederationSettings,
    rnd: int,
    per_client: dict,
    eval_loss: float | None,
    failures: int,
    left: dict[str, str],
    dropped: dict[str, str],
    history: list[dict],
    released: bool,
    *,
    traffic: tuple[int, int],
    seconds: float,
    model_bytes: int = 0,
    agreed: tuple[float | None, int] = (None, 0),
) -> dict:
    """The round's entry in history.json. ``traffic``: bytes sent and received during the round
    (per facility too, and against ``model_bytes``, the global model's float32 size);
    ``agreed``: the threshold the facilities' error summaries set (shared scaling) and how many
    summaries it came from."""
    total = sum(c.get("samples", 0) for c in per_client.values())
    trained = [c for c in per_client.values() if "train_loss" in c]
    train_loss = sum(c["samples"] * c["train_loss"] for c in trained) / total if total else None
    record = {
        "round": rnd,
        "participants": sorted(per_client),
        "per_client": per_client,
        "train_loss": train_loss,
        "eval_loss": eval_loss,
        "failures": failures,
        "bytes_sent": traffic[0],
        "bytes_received": traffic[1],
        **_per_facility(traffic, len(set(per_client) | set(left) | set(dropped)), model_bytes),
        "seconds": round(seconds, 3),
        "strategy": s.strategy,
    }
    if left:
        record["left"] = dict(left)  # facilities that gave no answer this round, and why
    if dropped:
        record["dropped"] = dict(dropped)  # answers that failed the server's checks
    if s.dp_noise_multiplier is not None:
        record["dp_noise_multiplier"] = s.dp_noise_multiplier if released else 0.0
        spent = [r["dp_noise_multiplier"] for r in [*history, record] if r.get("dp_noise_multiplier")]
        record["epsilon"] = epsilon(spent, s.dp_delta)
        record["delta"] = s.dp_delta
    threshold, summaries = agreed
    if threshold is not None:
        record["agreed_threshold"] = threshold
        record["threshold_from"] = summaries
    return record


def _per_facility(traffic: tuple[int, int], facilities: int, model_bytes: int) -> dict:
    """Bytes each way per facility this round, and as a multiple of the model's size (about 1:
    each facility receives the model once a round and sends its update once)."""
    if not facilities or not model_bytes:
        return {}
    sent, received = (t / facilities for t in traffic)
    return {
        "model_bytes": model_bytes,
        "per_facility": {
            "sent": round(sent),
            "received": round(received),
            "sent_x_model": round(sent / model_bytes, 3),
            "received_x_model": round(received / model_bytes, 3),
        },
    }
