"""A table model over keyed rows that merges refreshes in place.

Panels that poll Temporal (ledger, timeline, approvals) get a whole new list every
few seconds. Resetting the model each time would lose selection and scroll, so
`set_rows` turns the new list into removals, insertions and `dataChanged` for the
rows whose values moved, each inside Qt's begin/end pair.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

from desktop.units import utc_time_text

AnyIndex = QModelIndex | QPersistentModelIndex
Row = dict[str, Any]
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
_LEFT = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
# rows the person selects and reads, never edits
READ_ONLY = (
    Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemNeverHasChildren
)


ROW_ROLE = Qt.ItemDataRole.UserRole + 1  # the raw row dict
KEY_ROLE = Qt.ItemDataRole.UserRole + 2  # what identifies the row
# the roles whose value comes from the row, for dataChanged
ROW_VALUE_ROLES = (
    Qt.ItemDataRole.DisplayRole,
    Qt.ItemDataRole.ToolTipRole,
    Qt.ItemDataRole.ForegroundRole,
    ROW_ROLE,
)


def header(
    titles: Sequence[tuple[str, bool]], section: int, orientation: Qt.Orientation, role: int
) -> Any:
    """A table model's `headerData` over (title, numeric) columns: titles, numbers right."""
    if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(titles):
        return None
    title, numeric = titles[section]
    if role == Qt.ItemDataRole.DisplayRole:
        return title
    if role == Qt.ItemDataRole.TextAlignmentRole:
        return _RIGHT if numeric else _LEFT
    return None


def read_only_flags(index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
    return READ_ONLY if index.isValid() else Qt.ItemFlag.NoItemFlags


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    numeric: bool = False
    time: bool = False  # shown in the operator's zone, UTC in the tooltip


class KeyedRowsModel(QAbstractTableModel):
    """Rows (dicts) identified by their `KEY_FIELD`; subclasses say how a cell reads."""

    RowRole = ROW_ROLE
    KeyRole = KEY_ROLE
    ROW_ROLES = ROW_VALUE_ROLES
    COLUMNS: tuple[Column, ...] = ()
    KEY_FIELD = "key"  # the row field that identifies it

    def __init__(self, *, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[Row] = []
        self._keys: list[str] = []

    # -- what subclasses define ---------------------------------------------------

    def key_of(self, row: Row) -> str:
        return str(row[self.KEY_FIELD])

    def display(self, row: Row, key: str) -> str:
        value = row.get(key)
        return "" if value is None else str(value)

    def tooltip(self, row: Row, key: str) -> str | None:
        return None

    def foreground(self, row: Row, key: str) -> Any:
        return None

    # -- rows -----------------------------------------------------------------------

    @property
    def rows(self) -> list[Row]:
        return list(self._rows)

    def row_at(self, position: int) -> Row | None:
        return self._rows[position] if 0 <= position < len(self._rows) else None

    def position_of(self, key: str) -> int | None:
        try:
            return self._keys.index(key)
        except ValueError:
            return None

    def set_rows(self, rows: Sequence[Row]) -> None:
        """Show `rows`, changing only what changed (selection and scroll survive).

        Removals and insertions go in contiguous blocks, one begin/end pair each, so
        a first load or a burst of new rows costs one notice, not one per row.
        """
        new_keys = [self.key_of(r) for r in rows]
        if len(set(new_keys)) != len(new_keys):
            raise ValueError("rows must have distinct keys")
        if not self._rows or not rows:
            self._reset(rows, new_keys)
            return
        wanted = set(new_keys)
        end = len(self._keys)
        while end > 0:
            if self._keys[end - 1] in wanted:
                end -= 1
                continue
            start = end - 1
            while start > 0 and self._keys[start - 1] not in wanted:
                start -= 1
            self.beginRemoveRows(QModelIndex(), start, end - 1)
            del self._rows[start:end], self._keys[start:end]
            self.endRemoveRows()
            end = start
        kept = set(self._keys)
        if self._keys != [k for k in new_keys if k in kept]:
            # the order of surviving rows changed: no cheap merge keeps it meaningful
            self._reset(rows, new_keys)
            return
        # invariant: self._keys[:position] == new_keys[:position]
        position = 0
        while position < len(new_keys):
            if new_keys[position] not in kept:
                stop = position
                while stop < len(new_keys) and new_keys[stop] not in kept:
                    stop += 1
                self.beginInsertRows(QModelIndex(), position, stop - 1)
                self._rows[position:position] = rows[position:stop]
                self._keys[position:position] = new_keys[position:stop]
                self.endInsertRows()
                position = stop
                continue
            if self._rows[position] != rows[position]:
                self._rows[position] = rows[position]
                self.dataChanged.emit(
                    self.index(position, 0),
                    self.index(position, len(self.COLUMNS) - 1),
                    list(self.ROW_ROLES),
                )
            position += 1

    def _reset(self, rows: Sequence[Row], keys: list[str]) -> None:
        self.beginResetModel()
        self._rows, self._keys = list(rows), keys
        self.endResetModel()

    def remove_key(self, key: str) -> bool:
        position = self.position_of(key)
        if position is None:
            return False
        self._remove(position)
        return True

    def _remove(self, position: int) -> None:
        self.beginRemoveRows(QModelIndex(), position, position)
        del self._rows[position]
        del self._keys[position]
        self.endRemoveRows()

    # -- Qt model interface -------------------------------------------------------

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.COLUMNS)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        row = self._rows[index.row()]
        column = self.COLUMNS[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return self.display(row, column.key)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return _RIGHT if column.numeric else _LEFT
        if role == Qt.ItemDataRole.ToolTipRole:
            tip = self.tooltip(row, column.key)
            if tip is None and column.time:
                return utc_time_text(row.get(column.key)) or None
            return tip
        if role == Qt.ItemDataRole.ForegroundRole:
            return self.foreground(row, column.key)
        if role == self.RowRole:
            return row
        if role == self.KeyRole:
            return self._keys[index.row()]
        return None

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        return header([(c.title, c.numeric) for c in self.COLUMNS], section, orientation, role)

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        return read_only_flags(index)
