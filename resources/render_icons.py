"""Renders icon.svg to the PNG sizes a desktop asks for: `python -m resources.render_icons`.

The PNGs are committed (a desktop without SVG support still gets a sharp icon);
run this after changing icon.svg.
"""

from __future__ import annotations

import os
import sys

from resources import _HERE, ICON_SIZES


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication(sys.argv)
    renderer = QSvgRenderer(str(_HERE / "icon.svg"))
    if not renderer.isValid():
        print("icon.svg does not parse", file=sys.stderr)
        return 1
    for size in ICON_SIZES:
        image = QImage(size, size, QImage.Format.Format_ARGB32)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter)
        painter.end()
        image.save(str(_HERE / f"icon-{size}.png"))
    print(f"rendered {len(ICON_SIZES)} sizes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
