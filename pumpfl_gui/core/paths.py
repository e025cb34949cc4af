"""Where PumpFL keeps its files (core layer; no Qt).

From a source checkout the default data lives in the repository's ``federated_data/``; an
installed or frozen app uses the user data folder instead, since its own folder may be
read-only.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import platformdirs

APP_NAME = "PumpFL"
DEFAULT_DATASET = "hybrid"


def _source_root() -> Path | None:
    """The repository root when running from a checkout, else None."""
    if getattr(sys, "frozen", False):
        return None
    root = Path(__file__).resolve().parents[2]
    return root if (root / "federated_data" / "README.md").is_file() else None


def user_data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def default_data_dir() -> Path:
    """Folder holding ``client_0.csv`` … ``client_4.csv`` of the embedded default data.

    ``PUMPFL_DATA_DIR`` overrides it (a shared drive, a test's temporary folder).
    """
    if os.environ.get("PUMPFL_DATA_DIR"):
        return Path(os.environ["PUMPFL_DATA_DIR"])
    root = _source_root()
    base = root / "federated_data" if root else user_data_dir() / "federated_data"
    return base / DEFAULT_DATASET


def default_client_csv(client_id: int) -> Path:
    return default_data_dir() / f"client_{client_id}.csv"
