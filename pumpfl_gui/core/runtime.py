"""Seeds, compute device and CPU threads, chosen in one place (core layer; torch only)."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

# The autoencoder is small: one CPU thread trains it as fast as two (about 20k windows/s here),
# and several threads collapse up to 30x when another process or a second facility in the
# same process competes for the cores (OpenMP workers spin waiting for a starved sibling).
# PUMPFL_TORCH_THREADS overrides it on machines that train alone on many cores.
_THREADS = int(os.environ.get("PUMPFL_TORCH_THREADS", "1") or 1)
_configured = False


def _configure_threads() -> None:
    global _configured
    if not _configured:
        torch.set_num_threads(max(1, _THREADS))
        _configured = True


def choose_device(prefer: str | None = None) -> torch.device:
    """CUDA when present (or asked for), else CPU with PumpFL's thread setting."""
    _configure_threads()
    if prefer:
        return torch.device(prefer)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, numpy and torch; return a torch generator for data shuffling."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def warm_up() -> None:
    """Run one tiny training step so torch's lazy imports (hundreds of modules on the first
    optimiser step, ~2 s here) happen now rather than in the middle of the first round.

    The desktop app calls it in a background thread at start-up, while people choose a role.
    """
    from torch import nn

    _configure_threads()
    model = nn.Sequential(nn.Conv1d(2, 2, 3, padding=1), nn.ConvTranspose1d(2, 2, 3, padding=1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.zeros(1, 2, 8)
    loss = ((model(x) - x) ** 2).mean()
    loss.backward()
    opt.step()
