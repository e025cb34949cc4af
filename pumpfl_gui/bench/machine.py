"""What a benchmark ran on, recorded beside its figures (bench; no Qt)."""

from __future__ import annotations

import os
import platform

import numpy as np
import torch

from ..core.runtime import choose_device, warm_up
from ..core.windows import Scaler


def ready_for_timing() -> None:
    """PumpFL's torch thread setting, with torch's and scikit-learn's lazy imports done, so no
    benchmark times an import."""
    warm_up()
    Scaler.fit(np.zeros((2, 1)))


def machine(device: torch.device | None = None) -> dict:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "device": str(device or choose_device()),
        "load_average_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }
