"""Keyboard: the window's shortcuts, the sheet that lists them (F1 or ?), and the
accessible names screen readers announce for tables and buttons.

Panel keys (the Approvals triage keys A, R, N) belong to their tables and work while
the table has the focus; they are listed here so the sheet shows every key.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QKeyEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QLineEdit,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)


@dataclass(frozen=True)
class Key:
    keys: str  # as QKeySequence reads it, or a description for panel keys
    what: str
    where: str = "Anywhere"


PANEL_KEYS = (
    Key("A", "Approve the selected proposal (with the reason typed)", "Approvals table"),
    Key("R", "Reject the selected proposal (with the reason typed)", "Approvals table"),
    Key("N", "Next proposal", "Approvals table"),
    Key("Enter", "Open the member's detail window", "Members table"),
    Key("Tab / Shift+Tab", "Move between fields, tables and buttons", "Anywhere"),
    Key("Ctrl+Tab", "Next tab", "Anywhere"),
    Key("Esc", "Close a dialog or the shortcuts sheet", "Dialogs"),
)


def install(window: QWidget, actions: list[tuple[str, str, Callable[[], object]]]) -> list[Key]:
    """A window-wide shortcut per (keys, description, action); returns the sheet's rows."""
    rows: list[Key] = []
    for keys, what, action in actions:
        shortcut = QShortcut(QKeySequence(keys), window)
        shortcut.setContext(Qt.ShortcutContext.WindowShortcut)
        shortcut.activated.connect(action)
        rows.append(Key(keys, what))
    return rows + list(PANEL_KEYS)


class ShortcutsSheet(QDialog):
    """Every key the app answers to, in one table (F1 or ? opens it, Esc closes it)."""

    def __init__(self, keys: list[Key], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("shortcutsSheet")
        self.setWindowTitle("Keyboard shortcuts · Loyalty Desk")
        self.table = QTableWidget(len(keys), 3, self)
        self.table.setObjectName("shortcutsTable")
        self.table.setAccessibleName("Keyboard shortcuts")
        self.table.setHorizontalHeaderLabels(["Keys", "Does", "Where"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        for row, key in enumerate(keys):
            shown = QKeySequence(key.keys).toString(QKeySequence.SequenceFormat.NativeText)
            for column, text in enumerate((shown or key.keys, key.what, key.where)):
                self.table.setItem(row, column, QTableWidgetItem(text))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Every action is reachable from the keyboard:", self))
        layout.addWidget(self.table, 1)
        layout.addWidget(buttons)
        self.resize(640, 520)


def name_for_assistive_tech(root: QWidget) -> None:
    """Every table and button under `root` gets an accessible name (kept if set):
    a table from its object name, a button from its text."""
    for view in root.findChildren(QAbstractItemView):
        if not view.accessibleName():
            view.setAccessibleName(_words(view.objectName()) or "Table")
    for button in root.findChildren(QAbstractButton):
        if not button.accessibleName():
            text = re.sub(r"\s*\([A-Z]\)$", "", button.text().replace("&", "")).rstrip("…")
            parent = button.parentWidget()
            if not text and isinstance(parent, QLineEdit):
                text = f"Clear {parent.accessibleName() or _words(parent.objectName())}"
            button.setAccessibleName(
                text or _words(button.objectName()) or button.toolTip() or "Button"
            )


class QuestionMark(QObject):
    """ "?" pressed in a table (which would take it for a keyboard search) calls `show`."""

    def __init__(self, root: QWidget, show: Callable[[], object]) -> None:
        super().__init__(root)
        self._show = show
        for view in root.findChildren(QAbstractItemView):
            view.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.KeyPress:
            assert isinstance(event, QKeyEvent)
            if event.text() == "?":
                self._show()
                return True
        return super().eventFilter(watched, event)


def _words(object_name: str) -> str:
    """ "approvalsTable" -> "Approvals table"."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", object_name).strip().lower()
    return words[:1].upper() + words[1:]
