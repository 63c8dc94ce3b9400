"""The members table model: Qt's model tester, in-place updates, lazy paging."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtTest import QSignalSpy

from desktop.members_model import COLUMNS, MembersStore, MembersTableModel
from desktop.members_store import SortOrder
from desktop.units import local_time_text
from tests.kit.members import member

POINTS = [c.key for c in COLUMNS].index("points")
BUILD = [c.key for c in COLUMNS].index("build_id")


def make_model(count: int = 5) -> MembersTableModel:
    store = MembersStore()
    model = MembersTableModel(store=store)
    store.replace_all(member(f"m{i}", points=i * 100) for i in range(count))
    return model


@pytest.mark.parametrize("force_py", [False, True], ids=["qt-tester", "py-tester"])
def test_model_passes_the_model_tester_loaded_and_after_changes(
    qtmodeltester: Any, force_py: bool
) -> None:
    model = make_model()
    # both testers stay connected and check every change as it happens; the Qt one
    # reports through warnings, which fail the test (qt_log_level_fail)
    qtmodeltester.check(model, force_py=force_py)
    store = model.store

    store.merge([member("m2", 250), member("new-1"), member("new-2", tier="Gold")])
    store.remove(["m0", "new-1"])
    store.sync([member("m3", 1)], scope=["m3", "m4"])
    store.more_available = True
    qtmodeltester.check(model, force_py=force_py)
    assert model.store.member_ids() == ["m1", "m2", "m3", "new-2"]


def test_update_in_place_emits_data_changed_with_roles_and_keeps_indexes(qtbot: Any) -> None:
    model = make_model()
    held = QPersistentModelIndex(model.index(3, 0))
    changed = QSignalSpy(model.dataChanged)
    reset = QSignalSpy(model.modelReset)

    model.store.merge([member("m3", 999)])

    assert changed.count() == 1
    top_left, bottom_right, roles = (changed.at(0)[i] for i in range(3))
    assert (top_left.row(), top_left.column()) == (3, POINTS)
    assert (bottom_right.row(), bottom_right.column()) == (3, POINTS)
    assert Qt.ItemDataRole.DisplayRole in roles and MembersTableModel.RowRole in roles
    assert reset.count() == 0
    assert held.isValid() and held.row() == 3
    assert model.data(model.index(3, POINTS)) == "999"


def test_insert_and_remove_keep_persistent_indexes_of_other_rows() -> None:
    model = make_model()
    held = QPersistentModelIndex(model.index(4, 0))

    model.store.merge([member("late")])
    model.store.remove(["m1"])

    assert held.isValid() and held.row() == 3
    assert held.data(MembersTableModel.MemberIdRole) == "m4"
    assert model.rowCount() == 5


def test_display_and_raw_roles() -> None:
    store = MembersStore()
    model = MembersTableModel(store=store)
    store.replace_all(
        [member("ann", 12345, build_id="2.0", drill="zero-on-trip", pending_proposals=2)]
    )
    row = [model.data(model.index(0, c)) for c in range(model.columnCount())]

    # the time in the operator's zone (tests/desktop/test_units.py sets one), UTC on hover
    last_event = local_time_text("2026-01-19T09:02:00Z", seconds=False)
    assert row == ["ann", "Blue", "12,345", last_event, "2.0 · DRILL zero-on-trip", "2"]
    assert model.data(model.index(0, 3), Qt.ItemDataRole.ToolTipRole) == "2026-01-19 09:02:00 UTC"
    assert model.data(model.index(0, 0), MembersTableModel.RowRole)["points"] == 12345
    assert model.data(model.index(0, BUILD), Qt.ItemDataRole.ForegroundRole) is not None
    assert model.headerData(0, Qt.Orientation.Horizontal) == "Member"
    assert model.index_of("ann").row() == 0
    assert not model.index_of("nobody").isValid()
    # a drill build's id names its bug already: the narrow column says DRILL once
    store.replace_all([member("bo", 1, build_id="0.2+drill-zero-on-trip", drill="zero-on-trip")])
    assert model.data(model.index(0, BUILD)) == "0.2+drill-zero-on-trip · DRILL"


def test_fetch_more_asks_once_per_load() -> None:
    model = make_model()
    store = model.store
    requests = QSignalSpy(model.more_requested)

    assert not model.canFetchMore(QModelIndex())
    store.more_available = True
    assert model.canFetchMore(QModelIndex())
    model.fetchMore(QModelIndex())
    assert requests.count() == 1

    store.loading = True  # what the loader sets while a page is on its way
    assert not model.canFetchMore(QModelIndex())
    model.fetchMore(QModelIndex())
    assert requests.count() == 1
    assert not model.canFetchMore(model.index(0, 0))  # a table: no children


@pytest.mark.parametrize("descending", [False, True], ids=["ascending", "descending"])
def test_sorted_model_passes_the_model_tester_through_moves_inserts_and_removals(
    qtmodeltester: Any, descending: bool
) -> None:
    model = make_model(8)
    held = QPersistentModelIndex(model.index(3, 0))  # m3, e.g. the current row
    qtmodeltester.check(model, force_py=True)  # and then every change as it comes
    order = Qt.SortOrder.DescendingOrder if descending else Qt.SortOrder.AscendingOrder
    model.sort(POINTS, order)
    assert held.data(MembersTableModel.MemberIdRole) == "m3"  # it follows its member
    store = model.store
    store.merge([member("m0", 450), member("m7", 5), member("n1", 333), member("n2", None)])  # type: ignore[arg-type]
    store.remove(["m2", "n1"])
    store.merge([member("m5", 1_000)])
    # the tester checked every change as it came (connected once: twice doubles its checks)
    shown = [model.data(model.index(r, POINTS)) for r in range(model.rowCount())]
    numbers = [int(v.replace(",", "")) for v in shown if v]
    assert numbers == sorted(numbers, reverse=descending) and shown[-1] == ""
    # every row where the store says it is
    assert all(
        model.index(r, 0).data(MembersTableModel.MemberIdRole) == m
        for r, m in enumerate(store.member_ids())
    )
    assert held.data(MembersTableModel.MemberIdRole) == "m3"
    model.sort(-1)
    assert store.order is None
    assert store.member_ids() == ["m0", "m1", "m3", "m4", "m5", "m6", "m7", "n2"]
    assert store.order is None and SortOrder("points") != store.order
