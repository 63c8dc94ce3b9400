"""The members the table shows, without Qt: rows keyed by member id, in a stable order.

A row keeps its place while it lives: the server lists members in an order that moves
(a member that continues-as-new jumps to the top), so the store keeps the order in
which it first saw each member, updates rows in place and appends new ones. Every
change is announced to a listener before and after, which is what a Qt model needs
for its begin/end pairs; the store itself knows nothing of Qt.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

Row = dict[str, Any]


@dataclass(frozen=True)
class Column:
    key: str
    title: str


COLUMNS: tuple[Column, ...] = (
    Column("member_id", "Member"),
    Column("tier", "Tier"),
    Column("points", "Points"),
    Column("last_event_at", "Last event"),
    Column("build_id", "Build"),
    Column("pending_proposals", "Pending proposals"),
)
# Shown in a column without being one (the build column labels drills).
_SHOWN_WITH_COLUMN = {"drill": "build_id"}


class StoreListener(Protocol):
    """Told about every change; `before_*` comes first, then the change, then `after_*`."""

    def before_reset(self) -> None: ...
    def after_reset(self) -> None: ...
    def before_insert(self, first: int, last: int) -> None: ...
    def after_insert(self) -> None: ...
    def before_remove(self, first: int, last: int) -> None: ...
    def after_remove(self) -> None: ...
    def rows_changed(self, first: int, last: int, first_column: int, last_column: int) -> None: ...


@dataclass(frozen=True)
class MergeResult:
    updated: int = 0
    inserted: int = 0
    removed: int = 0


class MembersStore:
    """Member rows in first-seen order, with the paging state of the query that found them."""

    def __init__(self, *, listener: StoreListener | None = None) -> None:
        self.listener = listener
        self._rows: list[Row] = []
        self._index: dict[str, int] = {}
        # paging: whether the query has more rows than loaded, and whether a load runs
        self.more_available = False
        self.loading = False

    def __len__(self) -> int:
        return len(self._rows)

    def row(self, position: int) -> Row:
        return self._rows[position]

    def position_of(self, member_id: str) -> int | None:
        """Where a member's row is (not to be asked from inside a change notice)."""
        return self._index.get(member_id)

    def member_ids(self, first: int = 0, last: int | None = None) -> list[str]:
        stop = len(self._rows) if last is None else last + 1
        return [row["member_id"] for row in self._rows[first:stop]]

    def replace_all(self, rows: Iterable[Row]) -> None:
        """A new query: everything goes, the new rows come in their given order."""
        listener = self.listener
        if listener:
            listener.before_reset()
        self._rows = list(_dedupe(rows).values())
        self._reindex(0)
        if listener:
            listener.after_reset()

    def merge(self, rows: Iterable[Row]) -> MergeResult:
        """Update known members in place (only when a value changed) and append new ones."""
        incoming = _dedupe(rows)
        updated = 0
        runs: list[tuple[int, int, int, int]] = []  # first, last, first column, last column
        new_rows: list[Row] = []
        for member_id, row in incoming.items():
            position = self._index.get(member_id)
            if position is None:
                new_rows.append(row)
                continue
            old = self._rows[position]
            if old == row:
                continue
            self._rows[position] = row
            updated += 1
            first_col, last_col = _changed_columns(old, row)
            runs.append((position, position, first_col, last_col))
        if self.listener:
            for first, last, first_col, last_col in _coalesce(runs):
                self.listener.rows_changed(first, last, first_col, last_col)
        if new_rows:
            self._append(new_rows)
        return MergeResult(updated=updated, inserted=len(new_rows))

    def sync(self, rows: Iterable[Row], *, scope: Iterable[str]) -> MergeResult:
        """Merge `rows`, the complete answer for the members in `scope`: members of the
        scope that are not among the rows are gone (no longer match, or closed)."""
        incoming = _dedupe(rows)
        gone = [member_id for member_id in scope if member_id not in incoming]
        merged = self.merge(incoming.values())
        removed = self.remove(gone)
        return MergeResult(updated=merged.updated, inserted=merged.inserted, removed=removed)

    def remove(self, member_ids: Iterable[str]) -> int:
        positions = sorted(
            {p for p in (self._index.get(m) for m in member_ids) if p is not None}, reverse=True
        )
        if not positions:
            return 0
        # contiguous blocks from the bottom up, so the positions still to do stay valid
        blocks: list[tuple[int, int]] = []
        for position in positions:
            if blocks and blocks[-1][0] == position + 1:
                blocks[-1] = (position, blocks[-1][1])
            else:
                blocks.append((position, position))
        for first, last in blocks:
            if self.listener:
                self.listener.before_remove(first, last)
            for row in self._rows[first : last + 1]:
                del self._index[row["member_id"]]
            del self._rows[first : last + 1]
            if self.listener:
                self.listener.after_remove()
        # once, not per block: positions shift for every row below the first block
        self._reindex(blocks[-1][0])
        return len(positions)

    def _append(self, rows: Sequence[Row]) -> None:
        first = len(self._rows)
        if self.listener:
            self.listener.before_insert(first, first + len(rows) - 1)
        self._rows.extend(rows)
        self._reindex(first)
        if self.listener:
            self.listener.after_insert()

    def _reindex(self, start: int) -> None:
        if start == 0:
            self._index = {}
        for position in range(start, len(self._rows)):
            self._index[self._rows[position]["member_id"]] = position


def _dedupe(rows: Iterable[Row]) -> dict[str, Row]:
    """By member id, the last row winning (a page can list a member twice while it
    continues-as-new), keeping first-seen order."""
    result: dict[str, Row] = {}
    for row in rows:
        result[row["member_id"]] = row
    return result


def _changed_columns(old: Row, new: Row) -> tuple[int, int]:
    changed = [
        i
        for i, column in enumerate(COLUMNS)
        if old.get(column.key) != new.get(column.key)
        or any(
            old.get(extra) != new.get(extra)
            for extra, shown_in in _SHOWN_WITH_COLUMN.items()
            if shown_in == column.key
        )
    ]
    if not changed:
        # only hidden fields (e.g. the run id) changed: the raw row of every column did
        return 0, len(COLUMNS) - 1
    return min(changed), max(changed)


def _coalesce(runs: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    """Adjacent changed rows become one rectangle, so a big refresh is a few signals."""
    merged: list[tuple[int, int, int, int]] = []
    for first, last, first_col, last_col in sorted(runs):
        if merged and merged[-1][1] + 1 == first:
            m_first, _, m_first_col, m_last_col = merged[-1]
            merged[-1] = (m_first, last, min(m_first_col, first_col), max(m_last_col, last_col))
        else:
            merged.append((first, last, first_col, last_col))
    return merged
