"""Light and dark: follow the system, or the user's choice (View ▸ Appearance), and status colours
that stay readable on either (gui layer).

Qt 6.8 can ask the platform for a colour scheme (``QStyleHints.setColorScheme``); where the
platform cannot switch (the offscreen platform, older desktops) the palette is set directly, so
a choice always takes effect.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QWidget

THEMES = ("system", "light", "dark")

# (on light, on dark): each keeps >= 4.5:1 contrast with its background (#ffffff / #1e1e1e).
_STATUS = {
    "ok": ("#1d7a36", "#5cc878"),
    "warning": ("#8a5a00", "#e8b04a"),
    "failed": ("#c0292b", "#ff7b72"),
    "skipped": ("#666666", "#a0a0a0"),
    "running": ("#2a64a0", "#82b4ea"),
}

_DARK = {
    QPalette.ColorRole.Window: "#2b2b2b",
    QPalette.ColorRole.WindowText: "#e6e6e6",
    QPalette.ColorRole.Base: "#1e1e1e",
    QPalette.ColorRole.AlternateBase: "#262626",
    QPalette.ColorRole.ToolTipBase: "#2b2b2b",
    QPalette.ColorRole.ToolTipText: "#e6e6e6",
    QPalette.ColorRole.PlaceholderText: "#9a9a9a",
    QPalette.ColorRole.Text: "#e6e6e6",
    QPalette.ColorRole.Button: "#353535",
    QPalette.ColorRole.ButtonText: "#e6e6e6",
    QPalette.ColorRole.BrightText: "#ff7b72",
    QPalette.ColorRole.Light: "#4a4a4a",
    QPalette.ColorRole.Midlight: "#3c3c3c",
    QPalette.ColorRole.Mid: "#5c5c5c",
    QPalette.ColorRole.Dark: "#1a1a1a",
    QPalette.ColorRole.Shadow: "#000000",
    QPalette.ColorRole.Highlight: "#2f6fb0",
    QPalette.ColorRole.HighlightedText: "#ffffff",
    QPalette.ColorRole.Link: "#82b4ea",
    QPalette.ColorRole.LinkVisited: "#c39be8",
}
_DARK_DISABLED = (
    "#7a7a7a",
    (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.HighlightedText),
)


def dark_palette() -> QPalette:
    pal = QPalette()
    for role, colour in _DARK.items():
        pal.setColor(role, QColor(colour))
    colour, roles = _DARK_DISABLED
    for role in roles:
        pal.setColor(QPalette.ColorGroup.Disabled, role, QColor(colour))
    return pal


def is_dark(palette: QPalette) -> bool:
    return palette.color(QPalette.ColorRole.Window).lightness() < 128


def status_colour(status: str, widget: QWidget | None = None) -> str:
    """Colour for ok / warning / failed / skipped / running text or icons on this
    widget's palette."""
    palette = widget.palette() if widget is not None else QGuiApplication.palette()
    light, dark = _STATUS.get(status, _STATUS["skipped"])
    return dark if is_dark(palette) else light


def coloured(text: str, status: str, widget: QWidget | None = None) -> str:
    """Rich text for a label: ``text`` (already HTML-safe) in the status colour."""
    return f"<span style='color:{status_colour(status, widget)}'>{text}</span>"


def apply_theme(app: QApplication, choice: str, startup: bool = False) -> None:
    """Use ``choice`` (system | light | dark).

    At start-up "system" changes nothing, so Qt keeps following the desktop's own switches.
    """
    if choice not in THEMES:
        choice = "system"
    if startup and choice == "system":
        return
    wanted = {"system": Qt.ColorScheme.Unknown, "light": Qt.ColorScheme.Light, "dark": Qt.ColorScheme.Dark}[choice]
    app.styleHints().setColorScheme(wanted)  # asks the platform; a no-op where it cannot switch
    QApplication.processEvents()
    if choice == "system":
        app.setPalette(app.style().standardPalette())
    elif is_dark(app.palette()) != (choice == "dark"):  # the platform did not follow: do it here
        app.setPalette(dark_palette() if choice == "dark" else app.style().standardPalette())
