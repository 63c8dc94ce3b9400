"""What the app remembers of the operator's layout (QSettings): the window's geometry,
every named splitter's sizes, every named table's column widths and sort order, the
tab in view and the filters set.

Widgets are found by object name under the window, so a panel's table or splitter is
remembered as soon as it has a name; a name that no longer matches a widget is
ignored, and a stored state Qt does not accept leaves the widget as it was.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QByteArray, QRect
from PySide6.QtWidgets import (
    QComboBox,
    QLineEdit,
    QMainWindow,
    QSpinBox,
    QSplitter,
    QTableView,
    QTabWidget,
    QWidget,
)

from desktop import preferences

log = logging.getLogger(__name__)


def _named(window: QWidget, kind: type[Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for widget in window.findChildren(kind):
        name = widget.objectName()
        if name and name not in found:
            found[name] = widget
    return found


def save(window: QMainWindow, tabs: QTabWidget, filters: dict[str, QWidget]) -> None:
    store = preferences.settings()
    store.setValue("window/geometry", window.saveGeometry())
    store.setValue("window/state", window.saveState())
    store.setValue("window/tab", tabs.tabText(tabs.currentIndex()).split(" (")[0])
    for name, splitter in _named(window, QSplitter).items():
        store.setValue(f"splitters/{name}", splitter.saveState())
    for name, table in _named(window, QTableView).items():
        store.setValue(f"tables/{name}", table.horizontalHeader().saveState())
    for name, widget in filters.items():
        store.setValue(f"filters/{name}", _value_of(widget))
    store.sync()


def restore(window: QMainWindow, tabs: QTabWidget, filters: dict[str, QWidget]) -> None:
    store = preferences.settings()
    geometry = store.value("window/geometry")
    if isinstance(geometry, QByteArray) and not window.restoreGeometry(geometry):
        log.info("the stored window geometry was not usable")
    state = store.value("window/state")
    if isinstance(state, QByteArray):
        window.restoreState(state)
    for name, splitter in _named(window, QSplitter).items():
        value = store.value(f"splitters/{name}")
        if isinstance(value, QByteArray):
            splitter.restoreState(value)
    for name, table in _named(window, QTableView).items():
        value = store.value(f"tables/{name}")
        if isinstance(value, QByteArray):
            table.horizontalHeader().restoreState(value)
    for name, widget in filters.items():
        value = store.value(f"filters/{name}")
        if value is not None:
            _set_value(widget, value)
    tab = store.value("window/tab")
    for index in range(tabs.count()):
        if tabs.tabText(index).split(" (")[0] == tab:
            tabs.setCurrentIndex(index)
            break


def _value_of(widget: QWidget) -> Any:
    if isinstance(widget, QComboBox):
        return widget.currentText()
    if isinstance(widget, QSpinBox):
        return widget.value()
    if isinstance(widget, QLineEdit):
        return widget.text()
    raise TypeError(f"cannot remember a {type(widget).__name__}")


def _set_value(widget: QWidget, value: Any) -> None:
    if isinstance(widget, QComboBox):
        index = widget.findText(str(value))
        if index >= 0:
            widget.setCurrentIndex(index)
    elif isinstance(widget, QSpinBox):
        try:
            widget.setValue(int(value))
        except (TypeError, ValueError):
            pass
    elif isinstance(widget, QLineEdit):
        widget.setText(str(value))


def fit_on_screen(widget: QWidget, anchor: QWidget) -> None:
    """Move and if needed shrink `widget` so that all of it (frame included) lies on
    the screen that holds `anchor`, centred on `anchor` when it fits there."""
    screen = anchor.screen()
    area: QRect = screen.availableGeometry()
    frame = widget.frameGeometry()
    margin_w = frame.width() - widget.width()
    margin_h = frame.height() - widget.height()
    width = min(widget.width(), area.width() - margin_w)
    height = min(widget.height(), area.height() - margin_h)
    if (width, height) != (widget.width(), widget.height()):
        widget.resize(width, height)
    outer_w, outer_h = width + margin_w, height + margin_h
    centre = anchor.frameGeometry().center()
    x = centre.x() - outer_w // 2
    y = centre.y() - outer_h // 2
    x = max(area.left(), min(x, area.right() + 1 - outer_w))
    y = max(area.top(), min(y, area.bottom() + 1 - outer_h))
    widget.move(x, y)
