"""Is one facility's answer fit to count? Checks on plain arrays and values (fl layer; no Flower).

Everything a facility sends is hostile until checked. A fit answer must hold the global
model's arrays (same count and shapes, floating-point), all finite; only the whitelisted metrics
(``protocol.FIT_METRICS``), numeric and finite; and ``0 < num_examples <=`` the training
windows it registered when it joined — FedAvg weights by that number, so an unchecked claim
of 10^12 would make the global model that facility's. An evaluate answer needs a finite,
non-negative loss, a count within what it registered, and a sound error summary.

Each check returns None when the answer may count, else the reason in words; the strategy
wrapper (``fl/flower/strategies.py``) drops the facility from the round with that reason.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence

import numpy as np

from ..core.pooling import check_sketch
from . import protocol as P

# An update more than this many times farther from the global model than the median of the
# others' is dropped. Honest facilities move the model by amounts that grow with their windows
# (more windows, more steps): measured on the default data's five facilities, round 1, one local
# epoch, norms 0.42-2.88 — the largest facility (7x the windows of the smallest) 6.8x the
# smallest. 100 leaves room for a site with about a hundred times another's history; a scaled
# or runaway update (x1e3 to x1e6, as attacks and overflows give) is far beyond it. The rule
# needs at least 3 answers: with 2, "the others" is one facility, and nothing says which of the
# two is the odd one.
NORM_FACTOR = 100.0
NORM_MIN_ANSWERS = 3
# The error summary counts every clean window: the trained ones a facility registered, plus
# its held-out fifth and the windows across the cut between them (one window's width per file);
# 1.23-1.25 times what it registered on the default data. The bound leaves room for many files.
SKETCH_SLACK = 3
SKETCH_EXTRA = 1024


def _count_problem(num_examples, registered: int | None, what: str) -> str | None:
    if registered is None or registered < 1:
        return "it registered no training windows when it joined"
    if isinstance(num_examples, bool) or not isinstance(num_examples, (int, np.integer)):
        return f"its {what} is not a whole number"
    if not 0 < num_examples <= registered:
        return f"it claimed {num_examples} {what}, where it registered {registered} training windows"
    return None


def _finite_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) and math.isfinite(value)


def check_arrays(arrays: Sequence[np.ndarray], reference: Sequence[np.ndarray]) -> str | None:
    """None when ``arrays`` have the global model's count and shapes, as finite
    floating-point numbers."""
    if len(arrays) != len(reference):
        return f"it sent {len(arrays)} parameter arrays where the model has {len(reference)}"
    for i, (mine, ref) in enumerate(zip(arrays, reference)):
        # Any floating-point width: FedAdam's server step gives float64, facilities send float32.
        if not isinstance(mine, np.ndarray) or mine.dtype.kind != "f":
            return f"parameter array {i} is not floating-point numbers ({getattr(mine, 'dtype', type(mine).__name__)})"
        if mine.shape != ref.shape:
            return f"parameter array {i} has shape {mine.shape}, expected {ref.shape}"
        if not np.all(np.isfinite(mine)):
            return f"parameter array {i} holds non-finite values (NaN or infinity)"
    return None


def check_fit(
    arrays: Sequence[np.ndarray],
    reference: Sequence[np.ndarray],
    num_examples,
    metrics: Mapping,
    registered: int | None,
) -> str | None:
    """None when one facility's training answer may count, else the reason in words."""
    problem = _count_problem(num_examples, registered, "training windows")
    if problem:
        return problem
    extra = set(metrics) - P.FIT_METRICS
    if extra:
        return f"it sent metrics outside the protocol ({', '.join(sorted(map(str, extra)))[:80]})"
    if "train_loss" not in metrics:
        return "it sent no training loss"
    for key, value in metrics.items():
        if not _finite_number(value) or value < 0:
            return f"its {key} is not a finite, non-negative number"
    return check_arrays(arrays, reference)


def update_norm(arrays: Sequence[np.ndarray], reference: Sequence[np.ndarray]) -> float:
    """How far ``arrays`` are from the global model (L2 over every weight)."""
    return float(np.sqrt(sum(np.sum((a.astype(np.float64) - r) ** 2) for a, r in zip(arrays, reference))))


def outlying_norms(norms: Mapping[str, float]) -> dict[str, str]:
    """Who moved the model absurdly farther than the others: ``{who: reason}``."""
    if len(norms) < NORM_MIN_ANSWERS:
        return {}
    odd = {}
    for who, norm in norms.items():
        others = float(np.median([n for w, n in norms.items() if w != who]))
        if others > 0 and norm > NORM_FACTOR * others:
            odd[who] = f"its update is {norm / others:.3g} times larger than the others' (at most {NORM_FACTOR:g} counts)"
    return odd


def check_evaluate(loss, num_examples, metrics: Mapping, registered: int | None) -> str | None:
    """None when one facility's evaluation answer may count, else the reason in words."""
    problem = _count_problem(num_examples, registered, "evaluation windows")
    if problem:
        return problem
    if not _finite_number(loss) or loss < 0:
        return "its evaluation loss is not a finite, non-negative number"
    extra = set(metrics) - P.EVAL_METRICS
    if extra:
        return f"it sent metrics outside the protocol ({', '.join(sorted(map(str, extra)))[:80]})"
    if "eval_loss" in metrics and (not _finite_number(metrics["eval_loss"]) or metrics["eval_loss"] < 0):
        return "its evaluation loss is not a finite, non-negative number"
    if metrics.get(P.CFG_SKETCH):
        return sketch_problem(metrics[P.CFG_SKETCH], registered)
    return None


def sketch_problem(text, registered: int) -> str | None:
    """None when ``text`` is a sound error summary for a facility that registered ``registered``."""
    try:
        check_sketch(json.loads(str(text)), max_n=SKETCH_SLACK * registered + SKETCH_EXTRA)
    except ValueError as exc:  # json's errors are ValueErrors too
        return f"its error summary is unusable ({exc})"
    return None
