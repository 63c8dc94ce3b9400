"""The app remembers the operator: geometry, splitters, column widths, sort order, tab
and filters come back on the next start; a member's detail window opens fully on the
screen of the main window."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QApplication

from desktop.main_window import MainWindow
from desktop.member_detail import MemberDetail
from desktop.session import Session
from runtime.connect import Target

# driven by keys and clicks from plain code: the app's loop must be current
pytestmark = pytest.mark.usefixtures("gui_loop")


def new_window(qtbot: Any, data_dir: Path) -> MainWindow:
    session = Session(
        target=Target(address=None, namespace="default", data_dir=data_dir), start_worker=False
    )
    window = MainWindow(session=session, open_url=lambda _url: True)
    qtbot.addWidget(window)
    return window


def test_layout_tab_sorting_and_filters_come_back_on_the_next_start(
    qtbot: Any, tmp_path: Path, isolated_qsettings: Path
) -> None:
    first = new_window(qtbot, tmp_path)
    first.show()
    first.resize(700, 500)  # the offscreen screen is 800 x 800
    first.move(40, 30)
    first.show_panel("Approvals")
    approvals = first.approvals
    approvals.splitter.setSizes([150, 250])
    sizes = approvals.splitter.sizes()
    approvals.table.setColumnWidth(2, 211)
    approvals.table.sortByColumn(4, Qt.SortOrder.DescendingOrder)  # by age
    approvals.filters.tier_filter.setCurrentText("Gold")
    approvals.filters.min_points.setValue(250)
    first.members.search.setText("tier:Gold")
    first.releases.splitter.setSizes([120, 300])
    release_sizes = first.releases.splitter.sizes()
    geometry = first.geometry()
    first.close()
    # written where the tests keep their own settings, not the operator's
    assert Path(QSettings("loyalty-desk", "Loyalty Desk").fileName()).is_relative_to(
        isolated_qsettings
    )

    second = new_window(qtbot, tmp_path)
    second.show()
    assert second.tabs.currentWidget() is second.approvals
    assert (second.geometry().width(), second.geometry().height()) == (
        geometry.width(),
        geometry.height(),
    )
    assert second.approvals.splitter.sizes() == sizes
    assert second.releases.splitter.sizes() == release_sizes
    assert second.approvals.table.columnWidth(2) == 211
    header = second.approvals.table.horizontalHeader()
    assert (header.sortIndicatorSection(), header.sortIndicatorOrder()) == (
        4,
        Qt.SortOrder.DescendingOrder,
    )
    assert second.approvals.proxy.sortColumn() == 4  # the rows are sorted, not just the arrow
    assert second.approvals.filters.tier_filter.currentText() == "Gold"
    assert second.approvals.filters.min_points.value() == 250
    assert second.approvals.proxy.queue_filter.tier == "Gold"  # and the filter applies
    assert second.members.search.text() == "tier:Gold"


def test_a_first_start_has_the_defaults(qtbot: Any, tmp_path: Path) -> None:
    window = new_window(qtbot, tmp_path)
    assert window.tabs.currentWidget() is window.members
    assert window.approvals.filters.tier_filter.currentText() == "Any"
    assert window.approvals.table.horizontalHeader().sortIndicatorSection() == -1


def test_a_detail_window_opens_fully_on_the_main_windows_screen(qtbot: Any, tmp_path: Path) -> None:
    window = new_window(qtbot, tmp_path)
    window.show()
    area = window.screen().availableGeometry()
    # the main window near the screen's bottom-right corner: centred on it, the detail
    # window would hang off the screen
    window.resize(600, 400)
    window.move(area.right() - 620, area.bottom() - 420)
    detail = window.open_member("m-1")
    assert isinstance(detail, MemberDetail)
    assert area.contains(detail.frameGeometry()), (detail.frameGeometry(), area)
    # moved away, then opened again: back on the screen, whole
    detail.move(area.right() + 500, area.bottom() + 500)
    window.open_member("m-1")
    assert area.contains(detail.frameGeometry())
    # a detail window larger than the screen is made to fit
    detail.resize(area.width() * 2, area.height() * 2)
    window.open_member("m-1")
    assert area.contains(detail.frameGeometry())
    window.close()
    QApplication.processEvents()
