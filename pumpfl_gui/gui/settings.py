"""The one place the app remembers things between runs (gui layer; QSettings, INI, user scope).

Read and written on the GUI thread only; workers get plain values.
"""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QSettings

from ..core.paths import APP_NAME


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
