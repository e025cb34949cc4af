"""``PumpFL --self-test``, the GUI layer's part: Qt's pieces, then the federation check of
``fl/self_test.py``. No window opens; the summary is printed and written to the log file (a
Windows app has no console to print to).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

log = logging.getLogger(__name__)

# The platform plugin each desktop needs to open a window at all.
PLATFORM_PLUGINS = {
    "linux": ("libqxcb.so", "libqwayland.so", "libqwayland-generic.so"),
    "win32": ("qwindows.dll",),
    "darwin": ("libqcocoa.dylib",),
}


def check_qt() -> list[str]:
    """Problems with the Qt side (empty when all is well): platform plugin, icon, plotting."""
    problems = []
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # check without opening a window
    from PySide6.QtCore import QLibraryInfo
    from PySide6.QtGui import QGuiApplication

    folder = Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath)) / "platforms"
    wanted = next((names for prefix, names in PLATFORM_PLUGINS.items() if sys.platform.startswith(prefix)), ())
    if wanted and not any((folder / name).is_file() for name in wanted):
        problems.append(f"no Qt platform plugin for this system in {folder} (looked for {', '.join(wanted)})")
    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841 (drawing needs one)
    from .assets import app_icon

    if app_icon().pixmap(64, 64).isNull():
        problems.append("the app icon (resources/pumpfl.svg) could not be drawn: Qt's SVG support is missing")
    try:
        import pyqtgraph  # noqa: F401
    except ImportError as exc:
        problems.append(f"plotting library missing: {exc}")
    return problems


def main() -> int:
    def say(line: str) -> None:
        print(line, flush=True)
        log.info("self-test: %s", line)

    try:
        from ..fl.self_test import run_self_test
    except Exception as exc:  # in a bundle: a module that was left out
        log.exception("self-test: import failed")
        say(f"self-test failed: a component is missing: {type(exc).__name__}: {exc}")
        return 1
    problems = check_qt()
    for p in problems:
        say(f"problem: {p}")
    if not problems:
        say("Qt: platform plugin, SVG icon and plotting present")
    result = run_self_test(say)
    say(result.message)
    return 0 if result.ok and not problems else 1
