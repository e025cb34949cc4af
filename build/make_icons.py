"""Render resources/pumpfl.svg into the icon files PyInstaller wants for each platform.

    python build/make_icons.py

Writes resources/pumpfl.ico (Windows, 256 px; the system scales it) and resources/pumpfl.icns
(macOS, 1024 px), with Qt's
own SVG renderer and image writers, so no extra imaging library is needed. build.sh and
build.ps1 run it before each build; the outputs are not checked in.
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtGui import QGuiApplication, QImage, QImageWriter, QPainter  # noqa: E402
from PySide6.QtSvg import QSvgRenderer  # noqa: E402

RESOURCES = Path(__file__).resolve().parents[1] / "resources"
SIZES = {"ico": 256, "icns": 1024}  # the largest each format holds


def render(svg: QSvgRenderer, size: int) -> QImage:
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    svg.render(painter)
    painter.end()
    return image


def main() -> int:
    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841 (Qt needs it)
    svg = QSvgRenderer(str(RESOURCES / "pumpfl.svg"))
    if not svg.isValid():
        print("error: resources/pumpfl.svg could not be read", file=sys.stderr)
        return 2
    for fmt, size in SIZES.items():
        out = RESOURCES / f"pumpfl.{fmt}"
        writer = QImageWriter(str(out), fmt.encode())
        if not writer.write(render(svg, size)):
            print(f"error: could not write {out}: {writer.errorString()}", file=sys.stderr)
            return 2
        print(f"wrote {out.name} ({out.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
