"""The app's two kinds of table: a small read-only table of records sized to its contents,
and a long one with fixed column widths (measuring every row's text, as
ResizeToContents does, grows with the rows)."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView, QWidget


def _rows_table(model: Any, parent: QWidget, name: str) -> QTableView:
    """Read-only, whole rows selected, one at a time, no row numbers."""
    table = QTableView(parent)
    table.setObjectName(name)
    table.setModel(model)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setAlternatingRowColors(True)
    table.setWordWrap(False)
    table.verticalHeader().hide()
    return table


def records_table(parent: QWidget, model: Any, name: str) -> QTableView:
    """A small table of `model`'s records, its columns sized to their contents."""
    table = _rows_table(model, parent, name)
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setStretchLastSection(True)
    return table


def fixed_table(
    model: Any,
    parent: QWidget,
    name: str,
    *,
    widths: tuple[int, ...],
    stretch: int | None = None,
) -> QTableView:
    """A long table: columns of `widths` (the `stretch` column, else the last, takes the
    room left)."""
    table = _rows_table(model, parent, name)
    table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 8)
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    if stretch is None:
        header.setStretchLastSection(True)
    else:
        header.setSectionResizeMode(stretch, QHeaderView.ResizeMode.Stretch)
    for column, width in enumerate(widths):
        if column != stretch:
            table.setColumnWidth(column, width)
    return table
