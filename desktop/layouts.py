"""Building a panel's widgets and layouts in one line each: the rows, columns and forms
every panel has, splitters and tabs, named buttons, labels, text fields and choices, and
the refresh timer."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtWidgets import (
    QBoxLayout,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLayout,
    QLineEdit,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

Obj = TypeVar("Obj", bound=QObject)

# what a row or a column holds: a widget or layout, (one, its stretch), or a bare stretch
Item = QWidget | QLayout | int | tuple[QWidget | QLayout, int]


def _fill(box: QBoxLayout, items: tuple[Item, ...]) -> None:
    for item in items:
        part, stretch = item if isinstance(item, tuple) else (item, 0)
        if isinstance(part, int):
            box.addStretch(part)
        elif isinstance(part, QLayout):
            box.addLayout(part, stretch)
        else:
            box.addWidget(part, stretch)


def hbox(*items: Item) -> QHBoxLayout:
    """A row of `items`, left to right (an int is a stretch)."""
    box = QHBoxLayout()
    _fill(box, items)
    return box


def vbox(parent: QWidget | None, *items: Item) -> QVBoxLayout:
    """A column of `items`, top to bottom; the layout of `parent` when one is given."""
    box = QVBoxLayout(parent) if parent is not None else QVBoxLayout()
    _fill(box, items)
    return box


def form(parent: QWidget, *rows: tuple[str, QWidget | QLayout] | QWidget) -> QFormLayout:
    """`parent`'s form: ("Label:", field) rows, or a widget across the whole width."""
    layout = QFormLayout(parent)
    for row in rows:
        if not isinstance(row, tuple):
            layout.addRow(row)
        elif isinstance(row[1], QLayout):
            layout.addRow(row[0], row[1])
        else:
            layout.addRow(row[0], row[1])
    return layout


def _named(thing: Obj, name: str | None) -> Obj:
    """`thing`, with the object name `name` when one is given (tests and styles find it)."""
    if name:
        thing.setObjectName(name)
    return thing


def split(
    parent: QWidget,
    orientation: Qt.Orientation,
    *parts: QWidget | tuple[QWidget, int],
    name: str | None = None,
) -> QSplitter:
    """A splitter over `parts` (a widget, or (one, its stretch factor)), in order."""
    splitter = _named(QSplitter(orientation, parent), name)
    for index, part in enumerate(parts):
        widget, stretch = part if isinstance(part, tuple) else (part, None)
        splitter.addWidget(widget)
        if stretch is not None:
            splitter.setStretchFactor(index, stretch)
    return splitter


def tabbed(parent: QWidget, *pages: tuple[QWidget, str], name: str | None = None) -> QTabWidget:
    """A tab widget with `pages` ((page, its tab's title)), in order."""
    tabs = _named(QTabWidget(parent), name)
    for page, title in pages:
        tabs.addTab(page, title)
    return tabs


def button(
    text: str,
    parent: QWidget,
    name: str | None = None,
    *,
    tip: str | None = None,
    enabled: bool = True,
    default: bool = False,
) -> QPushButton:
    widget = _named(QPushButton(text, parent), name)
    if tip:
        widget.setToolTip(tip)
    widget.setEnabled(enabled)
    if default:
        widget.setDefault(True)
    return widget


def label(parent: QWidget, name: str, text: str = "", *, wrap: bool = False) -> QLabel:
    widget = QLabel(text, parent)
    widget.setObjectName(name)
    widget.setWordWrap(wrap)
    return widget


def line_edit(parent: QWidget, placeholder: str, *, name: str | None = None) -> QLineEdit:
    """A text field showing `placeholder` while it is empty."""
    edit = _named(QLineEdit(parent), name)
    edit.setPlaceholderText(placeholder)
    return edit


def choices(
    parent: QWidget, items: Iterable[tuple[str, Any]], *, name: str | None = None
) -> QComboBox:
    """A combo box of `items`, (the text shown, the data it stands for), in order."""
    combo = _named(QComboBox(parent), name)
    for text, data in items:
        combo.addItem(text, data)
    return combo


def ticker(parent: QWidget, interval_ms: int, on_timeout: Callable[[], Any]) -> QTimer:
    """A timer (not started) calling `on_timeout` every `interval_ms`."""
    timer = QTimer(parent)
    timer.setInterval(interval_ms)
    timer.timeout.connect(on_timeout)
    return timer


def elided(text: str, limit: int) -> str:
    """`text` on one line, cut to `limit` characters with an ellipsis."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
