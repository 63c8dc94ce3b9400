"""The members table model: a thin Qt adapter over the Qt-free `MembersStore`."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    Signal,
)

from desktop import theme
from desktop.keyed_rows_model import (
    KEY_ROLE,
    ROW_ROLE,
    ROW_VALUE_ROLES,
    header,
    read_only_flags,
)
from desktop.members_store import COLUMNS, MembersStore, Row, SortOrder
from desktop.units import local_time_text, utc_time_text

__all__ = ["COLUMNS", "MembersStore", "MembersTableModel"]

AnyIndex = QModelIndex | QPersistentModelIndex
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
_LEFT = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
_NUMERIC = {"points", "pending_proposals"}
_HEADERS = [(c.title, c.key in _NUMERIC) for c in COLUMNS]


class MembersTableModel(QAbstractTableModel):
    """Members as table rows; the store owns the data and announces every change.

    Signals:
        more_requested: the view reached the end and the query has more rows
            (Qt asked `fetchMore`); whoever loads pages answers it.
    """

    more_requested = Signal()

    RowRole = ROW_ROLE  # the raw row dict (member_row's fields)
    MemberIdRole = KEY_ROLE
    # every role whose value comes from the row, for dataChanged
    ROW_ROLES = (*ROW_VALUE_ROLES, MemberIdRole)

    def __init__(self, *, store: MembersStore, parent: Any = None) -> None:
        super().__init__(parent)
        self._store = store
        self._held: list[tuple[QModelIndex, str]] = []
        store.listener = self

    @property
    def store(self) -> MembersStore:
        return self._store

    # -- Qt model interface ---------------------------------------------------

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._store)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._store):
            return None
        row = self._store.row(index.row())
        key = COLUMNS[index.column()].key
        if role == Qt.ItemDataRole.DisplayRole:
            return _display(key, row)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return _RIGHT if key in _NUMERIC else _LEFT
        if role == Qt.ItemDataRole.ToolTipRole:
            if key == "last_event_at":
                return utc_time_text(row.get(key)) or None
            if key == "build_id" and row.get("drill"):
                return (
                    f"Build {row.get('build_id')} is a drill with the injected bug {row['drill']}"
                )
            return None
        if role == Qt.ItemDataRole.ForegroundRole:
            if key == "build_id" and row.get("drill"):
                return theme.brush("bad")
            return None
        if role == self.RowRole:
            return row
        if role == self.MemberIdRole:
            return row["member_id"]
        return None

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        return header(_HEADERS, section, orientation, role)

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        return read_only_flags(index)

    def canFetchMore(self, parent: AnyIndex) -> bool:
        if parent.isValid():
            return False
        return self._store.more_available and not self._store.loading

    def fetchMore(self, parent: AnyIndex) -> None:
        if self.canFetchMore(parent):
            self.more_requested.emit()

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """A header click: by that column (-1: the order rows were first seen in)."""
        wanted = (
            SortOrder(COLUMNS[column].key, order == Qt.SortOrder.DescendingOrder)
            if 0 <= column < len(COLUMNS)
            else None
        )
        if wanted != self._store.order:
            self._store.sort(wanted)

    # -- helpers for views ------------------------------------------------------

    def member_id_at(self, row: int) -> str | None:
        return self._store.row(row)["member_id"] if 0 <= row < len(self._store) else None

    def index_of(self, member_id: str, column: int = 0) -> QModelIndex:
        position = self._store.position_of(member_id)
        return QModelIndex() if position is None else self.index(position, column)

    # -- StoreListener: the store's changes inside Qt's begin/end pairs ---------

    def before_reset(self) -> None:
        self.beginResetModel()

    def after_reset(self) -> None:
        self.endResetModel()

    def before_insert(self, first: int, last: int) -> None:
        self.beginInsertRows(QModelIndex(), first, last)

    def after_insert(self) -> None:
        self.endInsertRows()

    def before_remove(self, first: int, last: int) -> None:
        self.beginRemoveRows(QModelIndex(), first, last)

    def after_remove(self) -> None:
        self.endRemoveRows()

    def before_move(self, source: int, destination: int) -> None:
        moving = self.beginMoveRows(QModelIndex(), source, source, QModelIndex(), destination)
        assert moving, f"row {source} cannot move before {destination}"

    def after_move(self) -> None:
        self.endMoveRows()

    def before_layout(self) -> None:
        self.layoutAboutToBeChanged.emit()
        # the selection and the current row follow their members, not their places
        self._held = [
            (index, self._store.row(index.row())["member_id"])
            for index in self.persistentIndexList()
            if index.isValid() and index.row() < len(self._store)
        ]

    def after_layout(self) -> None:
        old, new = [], []
        for index, member_id in self._held:
            old.append(index)
            new.append(self.index_of(member_id, index.column()))
        self._held = []
        self.changePersistentIndexList(old, new)
        self.layoutChanged.emit()

    def rows_changed(self, first: int, last: int, first_column: int, last_column: int) -> None:
        self.dataChanged.emit(
            self.index(first, first_column), self.index(last, last_column), list(self.ROW_ROLES)
        )


def _display(key: str, row: Row) -> str:
    value = row.get(key)
    if key == "points":
        return "" if value is None else f"{value:,}"
    if key == "pending_proposals":
        return f"{value or 0:,}"
    if key == "last_event_at":
        # in the operator's zone, to the minute (the seconds add nothing here); UTC on hover
        return local_time_text(value, seconds=False)
    if key == "build_id":
        return build_text(value or "", row.get("drill"))
    return "" if value is None else str(value)


def build_text(build: str, drill: str | None) -> str:
    """A build as the tables show it: a drill build says so, once ("0.2+drill-zero-on-trip"
    names its bug already; the column is too narrow to say it twice)."""
    if not drill:
        return build
    return f"{build} · DRILL" if drill in build else f"{build} · DRILL {drill}"
