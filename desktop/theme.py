"""The app's look, in one place: icon, light and dark palettes, the one stylesheet.

Every colour the desktop shows comes from resources/theme-<name>.json through this
module; desktop/ holds no colour literal (tests/desktop/test_theme.py scans for them).
Status colours are named by meaning ("bad", "good", "drill_background", …) and read
when painted, so a theme switch shows at the next repaint. "system" follows the
colour scheme Qt reports, and keeps following it while the app runs.

    theme.apply(app, "system")          # at start, and when the setting changes
    theme.brush("bad")                  # in a model's ForegroundRole
    theme.set_tone(label, "good")       # a label's colour, through the stylesheet
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import cache
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QGuiApplication, QIcon, QPalette
from PySide6.QtWidgets import QApplication, QWidget

import resources

log = logging.getLogger(__name__)

CHOICES = ("system", *resources.THEMES)
TONES = ("", "bad", "good", "warn", "muted")


@dataclass(frozen=True)
class Theme:
    name: str
    palette: QPalette
    status: dict[str, QColor]
    stylesheet: str

    def color(self, role: str) -> QColor:
        return self.status[role]


@cache
def load(name: str) -> Theme:
    """The theme `name` ("light" or "dark") from the bundled files."""
    if name not in resources.THEMES:
        raise ValueError(f"no theme {name!r}; there are {', '.join(resources.THEMES)}")
    spec = json.loads(resources.path(f"theme-{name}.json").read_text(encoding="utf-8"))
    palette = QPalette()
    for group, roles in (
        (QPalette.ColorGroup.All, spec["palette"]),
        (QPalette.ColorGroup.Disabled, spec.get("disabled", {})),
    ):
        for role_name, value in roles.items():
            palette.setColor(group, getattr(QPalette.ColorRole, role_name), QColor(value))
    status = {key: QColor(value) for key, value in spec["status"].items()}
    sheet = resources.path("theme.qss").read_text(encoding="utf-8")
    # longest names first, so @drill_text never becomes <drill>_text
    for key in sorted(spec["status"], key=len, reverse=True):
        sheet = sheet.replace("@" + key, spec["status"][key])
    return Theme(name=name, palette=palette, status=status, stylesheet=sheet)


class _State(QObject):
    """What is applied now; `changed(name)` after each switch."""

    changed = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.choice = "system"
        self.theme = load("light")
        self.following = False


_state: _State | None = None


def _current_state() -> _State:
    global _state
    if _state is None:
        _state = _State()
    return _state


def changed() -> Any:
    """The signal `changed(name)`, emitted after a switch (connect to repaint)."""
    return _current_state().changed


def current() -> Theme:
    return _current_state().theme


def color(role: str) -> QColor:
    return current().status[role]


def brush(role: str) -> QBrush:
    return QBrush(current().status[role])


def system_scheme() -> str:
    """ "dark" or "light" as Qt reports the desktop's scheme; "light" when unknown."""
    app = QGuiApplication.instance()
    if not isinstance(app, QGuiApplication):
        return "light"
    scheme = app.styleHints().colorScheme()
    return "dark" if scheme == Qt.ColorScheme.Dark else "light"


def resolve(choice: str) -> str:
    if choice not in CHOICES:
        raise ValueError(f"no theme {choice!r}; choose one of {', '.join(CHOICES)}")
    return system_scheme() if choice == "system" else choice


def apply(app: QApplication, choice: str = "system") -> Theme:
    """Palette, stylesheet, icon and names of the app for `choice` (system/light/dark)."""
    state = _current_state()
    theme = load(resolve(choice))
    state.choice = choice
    app.setApplicationName(resources.APP_NAME)
    app.setApplicationDisplayName(resources.APP_NAME)
    app.setOrganizationName("loyalty-desk")
    app.setDesktopFileName(resources.APP_ID)
    app.setWindowIcon(app_icon())
    app.setStyle("Fusion")  # the one style that paints with the palette everywhere
    app.setPalette(theme.palette)
    app.setStyleSheet(theme.stylesheet)
    if not state.following:
        state.following = True
        app.styleHints().colorSchemeChanged.connect(_on_color_scheme_changed)
    changed_name = theme.name != state.theme.name
    state.theme = theme
    if changed_name:
        log.info("theme %s (%s)", theme.name, choice)
    state.changed.emit(theme.name)
    return theme


def choice() -> str:
    return _current_state().choice


@cache
def app_icon() -> QIcon:
    """The app's icon: the SVG, with the PNG sizes for desktops that prefer them."""
    icon = QIcon()
    for size in resources.ICON_SIZES:
        icon.addFile(str(resources.icon_png(size)))
    icon.addFile(str(resources.path("icon.svg")))
    return icon


def set_tone(widget: QWidget, tone: str) -> None:
    """Colour a label by meaning ("bad", "good", "warn", "muted", "" for none)."""
    if tone not in TONES:
        raise ValueError(f"no tone {tone!r}")
    if widget.property("tone") == tone:
        return
    widget.setProperty("tone", tone)
    style = widget.style()
    style.unpolish(widget)
    style.polish(widget)
    widget.update()


def _on_color_scheme_changed(_scheme: Any) -> None:
    app = QApplication.instance()
    if isinstance(app, QApplication) and _current_state().choice == "system":
        apply(app, "system")
