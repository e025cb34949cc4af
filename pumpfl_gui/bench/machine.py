"""What a benchmark ran on, recorded beside its figures (bench; no Qt)."""

from __future__ import annotations

import os
import platform

import torch

from ..core.runtime import choose_device


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
