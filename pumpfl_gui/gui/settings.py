"""The one place the app remembers things between runs (gui layer; QSettings, INI, user scope).

Read and written on the GUI thread only; workers get plain values.
"""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QSettings

from ..core.paths import APP_NAME

RECENT_MODELS = "monitor/recent_models"  # the Monitor's recent models; a run's kept model joins them


class AppSettings:
    def __init__(self, path: str | None = None) -> None:
        # An explicit path keeps tests (and portable installs) away from the user's real file.
        self._s = (
            QSettings(path, QSettings.Format.IniFormat)
            if path
            else QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, APP_NAME, APP_NAME)
        )

    def get(self, key: str, default=None, kind=str):
        value = self._s.value(key, default)
        if value is None:
            return default
        try:
            if kind is bool:
                return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
            return kind(value)
        except (TypeError, ValueError):
            return default

    def set(self, key: str, value) -> None:
        self._s.setValue(key, value)

    def recent(self, key: str) -> list[str]:
        """A remembered list of folders, newest first, without those gone since."""
        from pathlib import Path

        return [p for p in self.get(key, "", str).split("\n") if p and Path(p).is_dir()]

    def remember(self, key: str, folder: str, keep: int = 8) -> list[str]:
        """Put ``folder`` first in the list under ``key`` (at most ``keep``); the new list."""
        recent = [folder] + [p for p in self.recent(key) if p != folder]
        self._s.setValue(key, "\n".join(recent[:keep]))
        return recent[:keep]

    def geometry(self) -> QByteArray | None:
        value = self._s.value("window/geometry")
        return value if isinstance(value, QByteArray) else None

    def set_geometry(self, data: QByteArray) -> None:
        self._s.setValue("window/geometry", data)

    def sync(self) -> None:
        self._s.sync()

    @property
    def path(self) -> str:
        return self._s.fileName()
