"""Finding the app's own files, from a checkout or inside a frozen bundle (gui layer)."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtGui import QIcon


def asset(name: str) -> Path:
    """Path of ``resources/NAME``; PyInstaller unpacks them under ``sys._MEIPASS``."""
    base = Path(getattr(sys, "_MEIPASS", Path(__file__).resolve().parents[2]))
    return base / "resources" / name


def app_icon() -> QIcon:
    return QIcon(str(asset("pumpfl.svg")))
