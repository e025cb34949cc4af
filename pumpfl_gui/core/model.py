"""The 1-D convolutional autoencoder (core layer; plain PyTorch).

Input and output are windows of shape (batch, sensors, window) of standardised readings. Two
strided convolutions squeeze the window to a quarter of its length; two transposed
convolutions and a last same-length convolution rebuild it. How far the newest rebuilt
readings miss is the anomaly score (``core/scoring.py``).

The shape follows the data (:meth:`ModelSpec.for_data`): a window of about a minute of
readings, at least 32; a wider network for few sensors. Both were chosen by measurement
(docs/BENCHMARKS.md, "Choosing the detector").
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

ARCHITECTURE = "conv1d-ae-v2"
WINDOW_SECONDS = 60.0  # a window spans about a minute of readings ...
MIN_WINDOW, MAX_WINDOW = 32, 128  # ... but never fewer than 32 readings nor more than 128
FEW_SENSORS = 16  # up to this many sensors get the wider network (chosen on SKAB's 8)


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild the network, stored with every model."""

    sensors: int
    window: int = 32
    channels: tuple[int, int] = (16, 4)
    kernel: int = 3
    architecture: str = ARCHITECTURE

    def __post_init__(self) -> None:
        if self.sensors < 1:
            raise ValueError("a model needs at least one sensor")
        if self.window < 4 or self.window % 4:
            raise ValueError(f"window must be a multiple of 4 (got {self.window})")
        if self.kernel < 1 or self.kernel % 2 == 0:
            raise ValueError(f"kernel must be odd (got {self.kernel})")
        if self.architecture != ARCHITECTURE:
            raise ValueError(f"unknown architecture {self.architecture!r}")

    @classmethod
    def for_data(cls, sensors: int, interval_s: float | None) -> ModelSpec:
        """The shape for data with ``sensors`` columns read every ``interval_s`` seconds.

        The window covers about a minute (SKAB, read each second: 60 rows), never fewer than 32
        rows (the pump schema, read each minute: 32) nor more than 128. Few sensors get
        channels 32/16 and kernel 7 (chosen on SKAB); many get the compact 16/4, kernel 3
        (chosen on the pump schema's 51).
        """
        rows = WINDOW_SECONDS / interval_s if interval_s and interval_s > 0 else MIN_WINDOW
        window = int(min(MAX_WINDOW, max(MIN_WINDOW, 4 * round(rows / 4))))
        if sensors <= FEW_SENSORS:
            return cls(sensors=sensors, window=window, channels=(32, 16), kernel=7)
        return cls(sensors=sensors, window=window, channels=(16, 4), kernel=3)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channels"] = list(self.channels)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelSpec:
        return cls(
            sensors=int(d["sensors"]),
            window=int(d["window"]),
            channels=tuple(int(c) for c in d["channels"]),
            kernel=int(d["kernel"]),
            architecture=str(d.get("architecture")),
        )


class ConvAutoencoder(nn.Module):
    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.spec = spec
        c1, c2 = spec.channels
        k, p = spec.kernel, spec.kernel // 2
        self.encoder = nn.Sequential(
            nn.Conv1d(spec.sensors, c1, k, stride=2, padding=p),
            nn.ReLU(),
            nn.Conv1d(c1, c2, k, stride=2, padding=p),
            nn.ReLU(),
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose1d(c2, c2, k, stride=2, padding=p, output_padding=1),
            nn.ReLU(),
            nn.ConvTranspose1d(c2, c1, k, stride=2, padding=p, output_padding=1),
            nn.ReLU(),
            nn.Conv1d(c1, spec.sensors, k, padding=p),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


# Initial weights come from torch's global random stream, which every thread shares: a server
# and facilities in one process (the demo, the benchmarks, the tests) build models at the same
# moments, so without this lock a seeded model's weights would depend on thread timing.
_INIT_LOCK = threading.Lock()


def build_model(spec: ModelSpec, seed: int | None = None) -> ConvAutoencoder:
    """A new network; with ``seed``, the same initial weights every time (those that
    ``torch.manual_seed(seed)`` then building it gives), whatever other threads do meanwhile."""
    with _INIT_LOCK:
        if seed is None:
            return ConvAutoencoder(spec)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return ConvAutoencoder(spec)


def get_parameters(model: nn.Module) -> list[np.ndarray]:
    """The model's weights as float32 arrays in state_dict order (what federation exchanges)."""
    return [t.detach().cpu().numpy().astype(np.float32, copy=True) for t in model.state_dict().values()]


def set_parameters(model: nn.Module, arrays: list[np.ndarray]) -> None:
    """Load arrays given in state_dict order; shapes must match exactly."""
    state = model.state_dict()
    if len(arrays) != len(state):
        raise ValueError(f"expected {len(state)} parameter arrays, got {len(arrays)}")
    new_state = {}
    for (name, current), arr in zip(state.items(), arrays):
        if tuple(arr.shape) != tuple(current.shape):
            raise ValueError(f"parameter {name} has shape {tuple(arr.shape)}, expected {tuple(current.shape)}")
        new_state[name] = torch.as_tensor(np.asarray(arr), dtype=current.dtype)
    model.load_state_dict(new_state)
