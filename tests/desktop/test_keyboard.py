"""Keyboard and accessibility: the shortcuts sheet (F1, or ? from a table), tabs and
search by key, the Approvals triage keys in the table, and accessible names on every
table and button."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractButton, QAbstractItemView, QApplication

from desktop.main_window import MainWindow
from desktop.session import Session
from runtime.connect import Target

# driven by keys and clicks from plain code: the app's loop must be current
pytestmark = pytest.mark.usefixtures("gui_loop")


def active_window(qtbot: Any, tmp_path: Path) -> MainWindow:
    session = Session(
        target=Target(address=None, namespace="default", data_dir=tmp_path), start_worker=False
    )
    window = MainWindow(session=session, open_url=lambda _url: True)
    qtbot.addWidget(window)
    window.show()
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    return window


def proposal(n: int) -> dict[str, Any]:
    return {
        "id": f"m{n}:k:0",
        "member_id": f"m{n}",
        "member_tier": "Blue",
        "action": "grant_points",
        "arguments": {"points": 100 * n},
        "reason": "r",
        "status": "pending",
        "created_at": f"2026-03-0{n}T10:00:00Z",
    }


def test_shortcuts_reach_every_tab_and_the_sheet_lists_them(qtbot: Any, tmp_path: Path) -> None:
    window = active_window(qtbot, tmp_path)
    qtbot.keyClick(window.members.table, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    assert window.tabs.currentWidget() is window.approvals
    qtbot.keyClick(window.approvals.table, Qt.Key.Key_4, Qt.KeyboardModifier.ControlModifier)
    assert window.tabs.currentWidget() is window.settings
    qtbot.keyClick(window.settings, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert window.tabs.currentWidget() is window.members
    assert window.members.search.hasFocus()
    # "?" typed into the search is text, not a shortcut
    qtbot.keyClicks(window.members.search, "tier?")
    assert window.members.search.text() == "tier?"
    assert window.shortcuts_sheet is None or not window.shortcuts_sheet.isVisible()

    qtbot.keyClick(window.members.search, Qt.Key.Key_F1)
    sheet = window.shortcuts_sheet
    assert sheet is not None and sheet.isVisible()
    listed = {sheet.table.item(r, 1).text() for r in range(sheet.table.rowCount())}
    assert {
        "Show the keyboard shortcuts",
        "Show the Approvals tab",
        "Search members",
        "Refresh the tab in view",
        "Open the Temporal Web UI",
        "Approve the selected proposal (with the reason typed)",
    } <= listed
    sheet.close()
    # from a table, "?" opens it
    window.show_panel("Approvals")
    window.approvals.table.setFocus()
    qtbot.keyClick(
        window.approvals.table,
        Qt.Key.Key_Question,
        Qt.KeyboardModifier.NoModifier,
    )
    assert sheet.isVisible()
    sheet.close()


def test_triage_keys_work_with_the_focus_in_the_table(qtbot: Any, tmp_path: Path) -> None:
    window = active_window(qtbot, tmp_path)
    window.show_panel("Approvals")
    panel = window.approvals
    panel.model.set_rows([proposal(1), proposal(2), proposal(3)])
    panel.select_row(0)
    panel.table.setFocus()
    qtbot.keyClick(panel.table, Qt.Key.Key_N)
    assert panel.current_proposal()["id"] == "m2:k:0"
    qtbot.keyClick(panel.table, Qt.Key.Key_N)
    assert panel.current_proposal()["id"] == "m3:k:0"
    # A without a reason or a server: refused with a reason, nothing decided
    panel.select_row(0)
    qtbot.keyClick(panel.table, Qt.Key.Key_A)
    assert panel.model.rowCount() == 3
    assert panel.current_proposal()["id"] == "m1:k:0"  # A took no key-search step


def test_every_table_and_button_has_an_accessible_name(qtbot: Any, tmp_path: Path) -> None:
    window = active_window(qtbot, tmp_path)
    detail = window.open_member("m-1")
    for root in (window, detail):
        unnamed = [
            f"{type(w).__name__} {w.objectName()!r}"
            for w in (*root.findChildren(QAbstractItemView), *root.findChildren(QAbstractButton))
            if not w.accessibleName().strip()
        ]
        assert unnamed == []
    assert window.approvals.table.accessibleName() == "Approvals table"
    assert window.approvals.approve_button.accessibleName() == "Approve"
    assert window.strip.deployment_label.accessibleName() == "Current build of the deployment"
    detail.close()
