"""Local training and reconstruction errors (core layer; plain PyTorch).

The training loop knows nothing of files or federation: it gets a window view, the start rows
of the windows it may learn from and its settings, and it is used unchanged by local training,
the Flower client and the benchmarks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from .runtime import choose_device, seed_everything
from .task import TaskState
from .windows import gather


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = 3
    lr: float = 1e-3
    batch_size: int = 256
    stride: int = 4  # step between training windows (README, "Choosing the model"); scoring uses every window
    seed: int = 0
    device: str | None = None  # None: CUDA when present, else CPU
    proximal_mu: float = 0.0  # FedProx: pull of strength mu/2 * |w - w_start|^2 towards the starting weights
    # Early stopping: with ``patience``, the last ``held_back`` of the windows (in time) are not
    # trained on; training stops once their loss has not improved for ``patience`` epochs and
    # the weights of the best epoch are kept. ``epochs`` is then the most it may run.
    patience: int | None = None
    held_back: float = 0.1
    max_windows: int | None = None  # an epoch visits at most this many windows, evenly spaced (stride raised)

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError("epochs must be at least 1")
        if not (self.lr > 0):
            raise ValueError("learning rate must be positive")
        if self.batch_size < 1 or self.stride < 1:
            raise ValueError("batch size and stride must be at least 1")
        if not (self.proximal_mu >= 0):
            raise ValueError("the proximal term mu cannot be negative")
        if self.patience is not None and self.patience < 1:
            raise ValueError("patience must be at least 1 epoch")
        if not (0 < self.held_back < 1):
            raise ValueError("the held-back fraction must be between 0 and 1")
        if self.max_windows is not None and self.max_windows < 1:
            raise ValueError("an epoch must visit at least one window")

    def stride_for(self, windows: int) -> int:
        """The step between training windows for a facility with ``windows`` clean ones."""
        if self.max_windows is None:
            return self.stride
        return max(self.stride, -(-windows // self.max_windows))

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class EpochResult:
    epoch: int  # 1-based
    epochs: int
    loss: float  # mean squared reconstruction error over the epoch's windows
    windows: int
    seconds: float
    held_back_loss: float | None = None  # with early stopping: the loss on the held-back windows


def split_held_back(starts: np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """(windows to train on, held-back windows): the newest ``fraction`` of ``starts``.

    Training windows next to the cut share rows with held-back ones; dropping them would cost
    a 400-row file a fifth of its windows, and early stopping only needs the newest readings'
    error to stop falling (measured on SKAB, docs/BENCHMARKS.md).
    """
    starts = np.sort(starts)
    cut = min(len(starts) - 1, max(1, int(round(len(starts) * (1 - fraction)))))
    return starts[:cut], starts[cut:]


def train_epochs(
    model: nn.Module,
    view: np.ndarray,
    starts: np.ndarray,
    settings: TrainSettings,
    state: TaskState | None = None,
    on_epoch: Callable[[EpochResult], None] | None = None,
) -> list[EpochResult]:
    """Train ``model`` in place for ``settings.epochs`` epochs on the windows at ``starts``.

    With ``settings.proximal_mu`` > 0 each batch's loss gains FedProx's proximal term
    (Li et al., 2020), anchoring the weights to those the model started from (the global ones).
    """
    if len(starts) == 0:
        raise ValueError("no training windows")
    held = None
    if settings.patience is not None and len(starts) >= 4:
        starts, held = split_held_back(starts, settings.held_back)
    device = choose_device(settings.device)
    generator = seed_everything(settings.seed)
    model.to(device).train()
    optimiser = torch.optim.Adam(model.parameters(), lr=settings.lr)
    loss_fn = nn.MSELoss()
    mu = settings.proximal_mu
    anchor = [p.detach().clone() for p in model.parameters()] if mu > 0 else None
    results: list[EpochResult] = []
    n_batches = -(-len(starts) // settings.batch_size)
    best, best_state, waited = np.inf, None, 0
    for epoch in range(1, settings.epochs + 1):
        t0 = time.perf_counter()
        order = starts[torch.randperm(len(starts), generator=generator).numpy()]
        total = 0.0
        for b in range(n_batches):
            if state is not None:
                state.check()
                done = ((epoch - 1) * n_batches + b) / (settings.epochs * n_batches)
                state.report(f"epoch {epoch}/{settings.epochs}", done)
            idx = order[b * settings.batch_size : (b + 1) * settings.batch_size]
            x = torch.from_numpy(gather(view, idx)).to(device)
            optimiser.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), x)
            fitted = loss.detach()  # the epoch's loss reports reconstruction only
            if anchor is not None:
                loss = loss + (mu / 2) * sum(((p - a) ** 2).sum() for p, a in zip(model.parameters(), anchor))
            loss.backward()
            optimiser.step()
            total += float(fitted) * len(idx)
        held_loss = None
        if held is not None:
            held_loss = float(window_errors(model, view, held, device=settings.device).mean())
            model.train()
        result = EpochResult(epoch, settings.epochs, total / len(starts), len(starts), time.perf_counter() - t0, held_loss)
        results.append(result)
        if on_epoch is not None:
            on_epoch(result)
        if held_loss is not None:
            if held_loss < best:
                best, waited = held_loss, 0
                best_state = {k: t.detach().clone() for k, t in model.state_dict().items()}
            else:
                waited += 1
                if waited >= settings.patience:
                    break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return results


@torch.no_grad()
def window_errors(
    model: nn.Module,
    view: np.ndarray,
    starts: np.ndarray | None = None,
    batch_size: int = 2048,
    device: str | None = None,
    state: TaskState | None = None,
) -> np.ndarray:
    """Mean squared reconstruction error of each window (all windows when ``starts`` is None)."""
    if starts is None:
        starts = np.arange(view.shape[0])
    dev = choose_device(device)
    model.to(dev).eval()
    out = np.empty(len(starts), dtype=np.float64)
    for i in range(0, len(starts), batch_size):
        if state is not None:
            state.check()
            state.report("scoring", i / max(len(starts), 1))
        x = torch.from_numpy(gather(view, starts[i : i + batch_size])).to(dev)
        err = ((model(x) - x) ** 2).mean(dim=(1, 2))
        out[i : i + len(err)] = err.cpu().numpy()
    return out


@torch.no_grad()
def newest_residuals(
    model: nn.Module,
    view: np.ndarray,
    batch_size: int = 2048,
    device: str | None = None,
    state: TaskState | None = None,
    start: int = 0,
    stop: int | None = None,
) -> np.ndarray:
    """Per window and sensor: the newest reading minus its reconstruction, (windows, sensors),
    for the windows ``start:stop`` (all by default; progress counts against all of them).

    The window ending at row ``t`` judges row ``t`` from readings up to ``t`` only, so an alarm
    never waits for, or uses, a later reading.
    """
    dev = choose_device(device)
    model.to(dev).eval()
    n = view.shape[0]
    stop = n if stop is None else min(stop, n)
    out = np.empty((max(stop - start, 0), view.shape[1]), dtype=np.float32)
    for i in range(start, stop, batch_size):
        if state is not None:
            state.check()
            state.report("scoring", i / max(n, 1))
        x = torch.from_numpy(gather(view, np.arange(i, min(stop, i + batch_size)))).to(dev)
        out[i - start : i - start + len(x)] = (x[:, :, -1] - model(x)[:, :, -1]).cpu().numpy()
    return out
