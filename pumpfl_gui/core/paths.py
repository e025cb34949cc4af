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

from .errors import UserError

APP_NAME = "PumpFL"
DEFAULT_DATASET = "hybrid"
DEFAULT_FACILITIES = 5  # the default data: client_0.csv … client_4.csv


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


def client_csv_name(client_id: int) -> str:
    """The file name of one facility's CSV in a data folder (the default data, a partition)."""
    return f"client_{client_id}.csv"


def default_client_csv(client_id: int, folder: Path | None = None) -> Path:
    """One default facility's CSV, in ``folder`` (default: `default_data_dir`); UserError for a
    number the default data does not have. It names the file: ``ensure_default_data`` makes it."""
    if not 0 <= client_id < DEFAULT_FACILITIES:
        raise UserError(f"client number {client_id} does not exist; the default data has clients 0 to {DEFAULT_FACILITIES - 1}")
    return (default_data_dir() if folder is None else Path(folder)) / client_csv_name(client_id)


def default_client_csvs(count: int = DEFAULT_FACILITIES, folder: Path | None = None) -> list[Path]:
    """The first ``count`` default facilities' CSVs (all five by default), as `default_client_csv`
    names them."""
    return [default_client_csv(i, folder) for i in range(count)]
