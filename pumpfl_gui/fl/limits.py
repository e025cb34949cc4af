"""Bounds on every setting the coordinator decides, checked on both sides (fl layer; no Qt).

The coordinator checks its own settings (``FederationSettings``); a facility checks the same
bounds on every handshake and every round's settings it receives, so a rogue or broken
coordinator cannot make it allocate 120 GB (channels 100,000) or train forever (epochs 1e9).

The bounds are generous for real use and far from what breaks a facility:

- window: the data picks 32-128 rows (``core/model.py``); a coordinator may fix up to 1,024;
- channels: the data picks 16/4 or 32/16; up to 1,024 each;
- kernel: odd, 1-63 (the data picks 3 or 7), and no wider than the window;
- the whole network: at most 2 million weights, 8 MB as float32 — half of one message on the
  wire (``flower/wire.py``), so a model always fits with room for the framing;
- epochs per round: up to 1,000 (the trial used 3);
- learning rate: above 0 and at most 1 (Adam's default is 0.001; above 1 it only diverges);
- batch: 8-65,536 windows (batch 1 would take a step per window: hours per round, no gain);
- stride: 1-1,024 rows between training windows;
- rounds: up to 10,000; FedProx's mu: 0-100 (0.01 is usual).
"""

from __future__ import annotations

import math

from ..core.model_spec import ModelSpec

WINDOW = (4, 1024)
CHANNELS = (1, 1024)
KERNEL = (1, 63)
MAX_PARAMETERS = 2_000_000
EPOCHS = (1, 1000)
MAX_LR = 1.0
BATCH = (8, 65_536)
STRIDE = (1, 1024)
ROUNDS = (1, 10_000)
# Facilities one coordinator admits at once: each holds a stream and a worker thread. Measured
# with `pumpfl bench scale` (docs/BENCHMARKS.md, "Scale"): 100 facilities take well under a
# megabyte of the coordinator's memory each.
FACILITIES = (1, 256)
MAX_MU = 100.0


def _within(name: str, value, bounds: tuple[int, int]) -> None:
    low, high = bounds
    if not (low <= value <= high):
        raise ValueError(f"{name} {value} is outside the bounds {low:,}-{high:,}")


def model_parameters(spec: ModelSpec) -> int:
    """How many weights the network of ``spec`` has (``core/model.py``'s five layers)."""
    s, (c1, c2), k = spec.sensors, spec.channels, spec.kernel
    return (s * c1 * k + c1) + (c1 * c2 * k + c2) + (c2 * c2 * k + c2) + (c2 * c1 * k + c1) + (c1 * s * k + s)


def check_shape(window: int, channels, kernel: int) -> None:
    """Raise ValueError, in words, unless the network's shape is within bounds."""
    _within("the window", window, WINDOW)
    if len(channels) != 2:
        raise ValueError(f"the network needs two channel counts (got {len(channels)})")
    for c in channels:
        _within("the channel count", c, CHANNELS)
    _within("the kernel", kernel, KERNEL)
    if kernel % 2 == 0 or kernel > window:
        raise ValueError(f"the kernel must be odd and no wider than the window (got {kernel} for a window of {window})")


def check_model(spec: ModelSpec) -> None:
    """The shape's bounds, and the whole network's size for this many sensors."""
    check_shape(spec.window, spec.channels, spec.kernel)
    weights = model_parameters(spec)
    if weights > MAX_PARAMETERS:
        raise ValueError(
            f"the network would have {weights:,} weights for {spec.sensors} sensors, above the limit of {MAX_PARAMETERS:,}"
        )


def check_training(epochs: int, lr: float, batch_size: int, stride: int, proximal_mu: float = 0.0) -> None:
    """Raise ValueError, in words, unless a round's training settings are within bounds."""
    _within("local epochs", epochs, EPOCHS)
    if not (math.isfinite(lr) and 0 < lr <= MAX_LR):
        raise ValueError(f"the learning rate {lr} is outside the bounds (above 0, at most {MAX_LR:g})")
    _within("the batch size", batch_size, BATCH)
    _within("the stride", stride, STRIDE)
    if not (math.isfinite(proximal_mu) and 0 <= proximal_mu <= MAX_MU):
        raise ValueError(f"FedProx's mu {proximal_mu} is outside the bounds 0-{MAX_MU:g}")


def check_rounds(rounds: int) -> None:
    _within("the number of rounds", rounds, ROUNDS)
