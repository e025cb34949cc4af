"""What the coordinator asks a facility, in PumpFL's own terms (fl layer; no Flower, no Qt).

The transport (``fl/flower/``) turns each message off the wire into one of these and the
facility's answers back into wire messages, so the facility's logic (``fl/client_runner.py``,
``fl/join_probe.py``) matches on these classes and never sees Flower's types. Parameters arrive
decoded: ``arrays`` is None when the bytes were no arrays at all, with ``unreadable`` saying why.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Ask:
    """A question or a word from the coordinator: the handshake, the agreed threshold, why the
    run ends (the keys are ``fl/protocol.py``'s)."""

    config: dict


@dataclass(frozen=True)
class Train:
    """Train on your rows from these global parameters, with these round settings."""

    arrays: list[np.ndarray] | None
    config: dict
    unreadable: str = ""


@dataclass(frozen=True)
class Evaluate:
    """Measure these global parameters on your held-out rows."""

    arrays: list[np.ndarray] | None
    config: dict
    unreadable: str = ""


@dataclass(frozen=True)
class SendParameters:
    """Send your current parameters."""


@dataclass(frozen=True)
class LetGo:
    """The coordinator lets this facility go (after saying why, in an ``Ask``)."""


@dataclass(frozen=True)
class Unexpected:
    """Anything else: a facility answers none of it."""

    what: str = ""


Instruction = Ask | Train | Evaluate | SendParameters | LetGo | Unexpected


@dataclass(frozen=True)
class Answer:
    """One facility's answer in a round, as the coordinator reads it."""

    cid: str
    samples: int
    metrics: dict = field(default_factory=dict)
    loss: float | None = None  # evaluation answers only
