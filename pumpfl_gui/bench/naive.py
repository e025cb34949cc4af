"""The naive reference pipeline that the speed benchmark measures PumpFL against (bench; torch).

Written from the original trial's description alone: the first 10 sensors min-max scaled to
[0, 1] on the rows a facility may train on, a Python loop that builds each 10-row window as
its own array, a ``DataLoader`` with batch size 32, and an autoencoder of one Conv1d (16
filters, kernel 3) + max-pool + one ConvTranspose1d + sigmoid, trained with Adam (lr 1e-3)
on the mean squared error. Training and held-out windows are split as a PumpFL facility
splits its own (the last fifth of the clean windows in time is held out).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ..core.dataset import SensorData
from ..core.runtime import choose_device, seed_everything
from ..fl.facility import HELD_OUT_FRACTION

WINDOW = 10
SENSORS = 10  # at most: the first 10 sensors of the file
FILTERS = 16
KERNEL = 3
BATCH_SIZE = 32
LR = 1e-3


class NaiveAutoencoder(nn.Module):
    def __init__(self, sensors: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(sensors, FILTERS, KERNEL, padding=KERNEL // 2),
            nn.ReLU(),
            nn.MaxPool1d(2),
            nn.ConvTranspose1d(FILTERS, sensors, 2, stride=2),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@dataclass
class NaiveWindows:
    """Windows built one by one, each (sensors, WINDOW), float32."""

    train: np.ndarray  # (n, sensors, WINDOW)
    held_out: np.ndarray  # (m, sensors, WINDOW)


@dataclass
class NaiveRound:
    """One local round: build the windows, train the local epochs, score the held-out windows."""

    model: NaiveAutoencoder
    train_windows: int
    held_out_windows: int
    windows_s: float
    train_s: float
    evaluate_s: float

    @property
    def round_s(self) -> float:
        return self.windows_s + self.train_s + self.evaluate_s


def sensor_count(data: SensorData) -> int:
    return min(SENSORS, len(data.sensors))


def minmax_scale(data: SensorData) -> np.ndarray:
    """The first sensors of every row scaled by the minimum and maximum of the training rows."""
    values = data.values[:, : sensor_count(data)].astype(np.float64)
    train = values[data.train_mask()]
    low, high = train.min(axis=0), train.max(axis=0)
    span = np.where(high > low, high - low, 1.0)
    return ((values - low) / span).astype(np.float32)


def build_windows(scaled: np.ndarray, ok_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(windows, start rows) of every 10-row window whose rows are all ``ok_rows``, one by one."""
    windows: list[np.ndarray] = []
    starts: list[int] = []
    for i in range(len(scaled) - WINDOW + 1):
        if ok_rows[i : i + WINDOW].all():
            windows.append(scaled[i : i + WINDOW].T.copy())
            starts.append(i)
    stacked = np.array(windows, dtype=np.float32).reshape(len(windows), scaled.shape[1], WINDOW)
    return stacked, np.array(starts, dtype=np.int64)


def prepare_windows(data: SensorData) -> NaiveWindows:
    """Scale, build the clean windows and hold out the last fifth of them in time."""
    windows, starts = build_windows(minmax_scale(data), data.train_mask())
    cut = int(len(starts) * (1 - HELD_OUT_FRACTION))
    first_held_out = starts[cut] if cut < len(starts) else data.rows
    # Windows straddling the cut would train on held-out rows: drop them.
    keep = starts[:cut] + WINDOW <= first_held_out
    return NaiveWindows(train=windows[:cut][keep], held_out=windows[cut:])


def train(model: NaiveAutoencoder, windows: np.ndarray, epochs: int, seed: int, device: torch.device) -> list[float]:
    """Train ``model`` in place; returns the seconds of each epoch."""
    generator = seed_everything(seed)
    loader = DataLoader(TensorDataset(torch.from_numpy(windows)), batch_size=BATCH_SIZE, shuffle=True, generator=generator)
    optimiser = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = nn.MSELoss()
    model.to(device).train()
    seconds = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        for (x,) in loader:
            x = x.to(device)
            optimiser.zero_grad()
            loss = loss_fn(model(x), x)
            loss.backward()
            optimiser.step()
        seconds.append(time.perf_counter() - t0)
    model.eval()
    return seconds


@torch.no_grad()
def window_errors(model: NaiveAutoencoder, windows: np.ndarray, device: torch.device) -> np.ndarray:
    """Mean squared reconstruction error of each window, in order."""
    model.to(device).eval()
    errors = []
    for (x,) in DataLoader(TensorDataset(torch.from_numpy(windows)), batch_size=BATCH_SIZE):
        x = x.to(device)
        errors.append(((model(x) - x) ** 2).mean(dim=(1, 2)).cpu().numpy())
    return np.concatenate(errors).astype(np.float64) if errors else np.empty(0)


def run_round(data: SensorData, epochs: int, seed: int = 0, device: str | None = None) -> NaiveRound:
    """One full local round from the rows, timed in its three parts."""
    dev = choose_device(device)
    seed_everything(seed)
    model = NaiveAutoencoder(sensor_count(data))
    t0 = time.perf_counter()
    windows = prepare_windows(data)
    t1 = time.perf_counter()
    train(model, windows.train, epochs, seed, dev)
    t2 = time.perf_counter()
    window_errors(model, windows.held_out, dev)
    t3 = time.perf_counter()
    return NaiveRound(model, len(windows.train), len(windows.held_out), t1 - t0, t2 - t1, t3 - t2)


def all_window_errors(model: NaiveAutoencoder, data: SensorData, device: str | None = None) -> np.ndarray:
    """The error of every stride-1 window of ``data``; entry ``i`` is the window starting at
    row ``i``."""
    windows, _ = build_windows(minmax_scale(data), np.ones(data.rows, dtype=bool))
    return window_errors(model, windows, choose_device(device))
