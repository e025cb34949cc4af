"""The 1-D convolutional autoencoder (core layer; plain PyTorch).

Input and output are windows of shape (batch, sensors, window) of standardised readings. Two
strided convolutions squeeze the window to a quarter of its length; two transposed
convolutions and a last same-length convolution rebuild it. How far the newest rebuilt
readings miss is the anomaly score (``core/scoring.py``).

The shape (:class:`~pumpfl_gui.core.model_spec.ModelSpec`) follows the data.
"""

from __future__ import annotations

import threading

import numpy as np
import torch
from torch import nn

from .model_spec import ModelSpec


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
