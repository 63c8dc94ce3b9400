"""One look for the whole app: no colour written into desktop/, both themes readable,
a switch shows at once, and the app names itself and shows its icon."""

from __future__ import annotations

import io
import re
import tokenize
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QImage, QPalette
from PySide6.QtWidgets import QApplication, QLabel

import resources
from desktop import theme
from desktop.members_model import MembersTableModel
from desktop.members_store import COLUMNS, MembersStore

DESKTOP = Path(__file__).resolve().parents[2] / "desktop"

_HEX = re.compile(r"#[0-9a-fA-F]{3}(?:[0-9a-fA-F]{3}(?:[0-9a-fA-F]{2})?)?\b")
_CSS_FUNCTION = re.compile(r"\b(?:rgba?|hsla?|hsva?)\s*\(", re.IGNORECASE)
# a stylesheet colour that is not the palette's: "color: red", "background: white"
_CSS_COLOR = re.compile(
    r"(?:^|[;{\s\"'])(?:color|background(?:-color)?|border(?:-color)?)\s*:(?!\s*palette\()",
    re.IGNORECASE,
)


# Python 3.12 splits f-strings into parts
_STRING_TOKENS = {tokenize.STRING, getattr(tokenize, "FSTRING_MIDDLE", tokenize.STRING)}


def colour_literals(source: str) -> list[str]:
    """Every colour written into `source`: hex and CSS colours in strings, QColor of
    numbers or of a string, Qt's named global colours."""
    found: list[str] = []
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    for i, token in enumerate(tokens):
        where = f"line {token.start[0]}"
        if token.type in _STRING_TOKENS:
            text = token.string
            for pattern in (_HEX, _CSS_FUNCTION, _CSS_COLOR):
                match = pattern.search(text)
                if match:
                    found.append(f"{where}: {text.strip()[:60]}")
                    break
        elif token.type == tokenize.NAME and token.string in ("QColor", "QColorConstants"):
            after = tokens[i + 1 : i + 3]
            if token.string == "QColorConstants" or (
                len(after) == 2
                and after[0].string == "("
                and after[1].type in (tokenize.NUMBER, tokenize.STRING)
            ):
                found.append(f"{where}: {token.string}{''.join(t.string for t in after)}…")
        elif token.type == tokenize.NAME and token.string == "GlobalColor":
            found.append(f"{where}: Qt.GlobalColor")
    return found


def test_the_scan_finds_each_way_of_writing_a_colour() -> None:
    # the literals desktop/ had before the themes (the scan must catch every one)
    for source in (
        "_REFUSED = QColor(179, 38, 30)\n",
        'DRILL_BACKGROUND = QColor("#c62828")\n',
        'label.setStyleSheet("color: #b3261e;")\n',
        'label.setStyleSheet(f"color: {color.name()}; font-weight: bold")\n',
        "pen = QPen(Qt.GlobalColor.red)\n",
        'label.setStyleSheet("background: rgb(1, 2, 3)")\n',
        "c = QColorConstants.Red\n",
    ):
        assert colour_literals(source), source
    # what is not a colour: the palette's own names, comments, a colour from the theme
    for source in (
        'label.setStyleSheet("color: palette(placeholder-text);")\n',
        "# see issue #123 for the colours\n",
        'brush = theme.brush("bad")\n',
        "color = QColor(value)\n",
        'text = f"#{number}"\n',
    ):
        assert not colour_literals(source), source


def test_desktop_writes_no_colour_of_its_own() -> None:
    found = {
        path.name: literals
        for path in sorted(DESKTOP.glob("*.py"))
        if (literals := colour_literals(path.read_text(encoding="utf-8")))
    }
    assert found == {}, f"colours belong in resources/theme-*.json: {found}"


def contrast(a: QColor, b: QColor) -> float:
    """WCAG contrast ratio of two colours."""

    def luminance(color: QColor) -> float:
        def channel(value: float) -> float:
            return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4

        return (
            0.2126 * channel(color.redF())
            + 0.7152 * channel(color.greenF())
            + 0.0722 * channel(color.blueF())
        )

    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize("name", resources.THEMES)
def test_status_colours_are_readable_in_both_themes(name: str) -> None:
    loaded = theme.load(name)
    base = loaded.palette.color(QPalette.ColorRole.Base)
    window = loaded.palette.color(QPalette.ColorRole.Window)
    text = loaded.palette.color(QPalette.ColorRole.Text)
    for role in ("bad", "good", "warn", "info", "build", "muted"):
        for background in (base, window):
            ratio = contrast(loaded.color(role), background)
            assert ratio >= 4.5, f"{name}: {role} on {background.name()}: {ratio:.1f}"
    assert contrast(loaded.color("drill_text"), loaded.color("drill_background")) >= 4.5
    assert contrast(text, loaded.color("changed_background")) >= 4.5
    assert contrast(loaded.color("notice_text"), loaded.color("notice_background")) >= 4.5
    assert contrast(text, base) >= 7
    assert set(theme.load("light").status) == set(theme.load("dark").status)


@pytest.fixture
def restore_theme(qapp: QApplication) -> Iterator[None]:
    yield
    theme.apply(qapp, "light")


def ink(label: QLabel) -> set[str]:
    """The colours of the label's text as painted (its background left out)."""
    image = label.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    background = image.pixelColor(0, 0).name()
    return {
        image.pixelColor(x, y).name()
        for x in range(image.width())
        for y in range(image.height())
        if image.pixelColor(x, y).name() != background
    }


def test_switching_theme_repaints_palette_labels_and_tables(
    qapp: QApplication, qtbot: Any, restore_theme: None
) -> None:
    theme.apply(qapp, "light")
    label = QLabel("NO-GO for 2.0 (DRILL: points-doubling)")
    qtbot.addWidget(label)
    theme.set_tone(label, "bad")
    label.resize(label.sizeHint())
    label.show()
    model = MembersTableModel(store=MembersStore())
    model.store.replace_all(
        [{"member_id": "m1", "build_id": "2.0", "drill": "points-doubling", "points": 5}]
    )
    build = model.index(0, [c.key for c in COLUMNS].index("build_id"))

    def drill_colour() -> str:
        return model.data(build, Qt.ItemDataRole.ForegroundRole).color().name()

    light = theme.load("light")
    dark = theme.load("dark")
    assert qapp.palette().color(QPalette.ColorRole.Window) == light.palette.color(
        QPalette.ColorRole.Window
    )
    assert light.color("bad").name() in ink(label)
    assert drill_colour() == light.color("bad").name()

    theme.apply(qapp, "dark")
    assert qapp.palette().color(QPalette.ColorRole.Window) == dark.palette.color(
        QPalette.ColorRole.Window
    )
    painted = ink(label)
    assert dark.color("bad").name() in painted and light.color("bad").name() not in painted
    assert drill_colour() == dark.color("bad").name()

    # "system" follows what Qt reports (unknown offscreen: light)
    assert theme.apply(qapp, "system").name == theme.system_scheme()
    with pytest.raises(ValueError, match="no theme 'pink'"):
        theme.apply(qapp, "pink")


def test_the_app_names_itself_and_shows_its_icon(
    qapp: QApplication, qtbot: Any, restore_theme: None, tmp_path: Path
) -> None:
    from desktop.main_window import MainWindow
    from desktop.session import Session
    from runtime.connect import Target

    theme.apply(qapp, "light")
    assert qapp.applicationName() == "Loyalty Desk"
    assert qapp.applicationDisplayName() == "Loyalty Desk"
    assert qapp.desktopFileName() == resources.APP_ID
    assert not qapp.windowIcon().isNull()
    session = Session(
        target=Target(address=None, namespace="default", data_dir=tmp_path), start_worker=False
    )
    window = MainWindow(session=session)
    qtbot.addWidget(window)
    icon = window.windowIcon()
    assert not icon.isNull()
    # the bundled artwork, not a blank: the card's colour is in the middle of the icon
    image = icon.pixmap(64, 64).toImage()
    assert image.pixelColor(10, 32).alpha() == 255
    for size in resources.ICON_SIZES:
        png = QImage(str(resources.icon_png(size)))
        assert (png.width(), png.height()) == (size, size)
