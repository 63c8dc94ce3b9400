"""The members the table shows, without Qt: rows keyed by member id, in a stable order.

A row keeps its place while it lives: the server lists members in an order that moves
(a member that continues-as-new jumps to the top), so the store keeps the order in
which it first saw each member, updates rows in place and appends new ones. Sorted by
a column (clicking its header), rows are in that column's order instead, and a row
whose value changes moves alone to its new place. Every
change is announced to a listener before and after, which is what a Qt model needs
for its begin/end pairs; the store itself knows nothing of Qt.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import methodcaller
from typing import Any, Protocol

from desktop.members_keys import (
    MEMBER_ID,
    MISSING,
    natural,
    none_text,
    tier_ranks,
    time_key,
)

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
    """Told about every change; `before_*` comes first, then the change, then `after_*`.
    Positions are the rows' places as shown (in the store's current order)."""

    def before_reset(self) -> None: ...
    def after_reset(self) -> None: ...
    def before_insert(self, first: int, last: int) -> None: ...
    def after_insert(self) -> None: ...
    def before_remove(self, first: int, last: int) -> None: ...
    def after_remove(self) -> None: ...
    def before_move(self, source: int, destination: int) -> None:
        """One row moves to before `destination` (counted before the move)."""
        ...

    def after_move(self) -> None: ...
    def before_layout(self) -> None: ...
    def after_layout(self) -> None: ...
    def rows_changed(self, first: int, last: int, first_column: int, last_column: int) -> None: ...


@dataclass(frozen=True)
class MergeResult:
    updated: int = 0
    inserted: int = 0
    removed: int = 0


@dataclass(frozen=True)
class SortOrder:
    """Rows by one column's value; members without one come last either way."""

    column: str  # a key of COLUMNS
    descending: bool = False


SortKey = Any  # int, str or (str, int), one type per order, unique per member


class MembersStore:
    """Member rows in first-seen order, or sorted by a column, with the paging state of
    the query that found them.

    Rows are kept ascending by a sort key unique to each member (the column's value,
    then the order first seen or the member id), so finding a member's place is a
    binary search, and a row whose value changes moves alone. A descending order is
    the same list read from the end.
    """

    def __init__(self, *, listener: StoreListener | None = None) -> None:
        self.listener = listener
        self._rows: list[Row] = []  # ascending by key
        self._by_id: dict[str, Row] = {}  # first-seen order (a dict keeps its keys' order)
        self._seen: dict[str, int] = {}
        self._next_seen = 0
        self._order: SortOrder | None = None
        self._key: Any = self._seen_key
        # last event times as numbers, filled as rows arrive: a sort by time then costs
        # one dictionary lookup a row
        self._times: dict[Any, int] = {}
        # paging: whether the query has more rows than loaded, and whether a load runs
        self.more_available = False
        self.loading = False

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def order(self) -> SortOrder | None:
        """The sort in force; None: the order rows were first seen in."""
        return self._order

    def row(self, position: int) -> Row:
        return self._rows[self._stored(position)]

    def position_of(self, member_id: str) -> int | None:
        """Where a member's row is shown (not to be asked from inside a change notice)."""
        row = self._by_id.get(member_id)
        if row is None:
            return None
        return self._shown(self._find(self._key(row)))

    def member_ids(self, first: int = 0, last: int | None = None) -> list[str]:
        count = len(self._rows)
        last = count - 1 if last is None else min(last, count - 1)
        if first > last:
            return []
        if self._descending:
            rows = self._rows[count - 1 - last : count - first][::-1]
        else:
            rows = self._rows[first : last + 1]
        return [row["member_id"] for row in rows]

    def sort(self, order: SortOrder | None) -> None:
        """Show the rows in `order` (None: first seen); one layout change.

        A header click at 100,000 rows: the rows in first-seen order are sorted,
        stably, by the column's values alone (taken with C-level maps, no Python call
        per row), which is the order of the unique keys (value, then first seen)."""
        if order is not None and order.column not in _COLUMN_KEYS:
            raise ValueError(f"no column {order.column!r}")
        key = self._key_function(order)
        rows = self._ordered(list(self._by_id.values()), order)
        listener = self.listener
        if listener:
            listener.before_layout()  # rows still where they were shown
        self._order, self._key = order, key
        self._rows = rows
        if listener:
            listener.after_layout()

    def replace_all(self, rows: Iterable[Row]) -> None:
        """A new query: everything goes, the new rows come in their given order (or
        the sort's)."""
        listener = self.listener
        if listener:
            listener.before_reset()
        incoming = list(_dedupe(rows).values())
        self._seen.clear()  # in place: the sort's key function holds it
        self._seen.update((row["member_id"], n) for n, row in enumerate(incoming))
        self._next_seen = len(incoming)
        self._by_id = {row["member_id"]: row for row in incoming}
        self._times.clear()
        self._remember_times(incoming)
        self._rows = self._ordered(incoming, self._order)
        if listener:
            listener.after_reset()

    def merge(self, rows: Iterable[Row]) -> MergeResult:
        """Update known members in place (only when a value changed; a row whose sort
        value changed moves to its new place) and add new ones (at the end, or in
        their sorted places)."""
        incoming = _dedupe(rows)
        self._remember_times(incoming.values())
        updated = 0
        runs: list[tuple[int, int, int, int]] = []  # first, last, first column, last column
        moves: list[tuple[Row, Row]] = []  # old, new
        new_rows: list[Row] = []
        for member_id, row in incoming.items():
            old = self._by_id.get(member_id)
            if old is None:
                new_rows.append(row)
                continue
            if old == row:
                continue
            updated += 1
            old_key = self._key(old)
            if self._key(row) != old_key:
                moves.append((old, row))
                continue
            stored = self._find(old_key)
            self._rows[stored] = row
            self._by_id[member_id] = row
            position = self._shown(stored)
            first_col, last_col = _changed_columns(old, row)
            runs.append((position, position, first_col, last_col))
        if self.listener:
            for first, last, first_col, last_col in _coalesce(runs):
                self.listener.rows_changed(first, last, first_col, last_col)
        for old, row in moves:
            self._move(old, row)
        if new_rows:
            self._add(new_rows)
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
            {p for p in (self.position_of(m) for m in member_ids) if p is not None},
            reverse=True,
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
            count = len(self._rows)
            low, high = (count - 1 - last, count - first) if self._descending else (first, last + 1)
            for row in self._rows[low:high]:
                del self._by_id[row["member_id"]]
                del self._seen[row["member_id"]]
            del self._rows[low:high]
            if self.listener:
                self.listener.after_remove()
        return len(positions)

    # -- internals ------------------------------------------------------------------

    @property
    def _descending(self) -> bool:
        return self._order is not None and self._order.descending

    def _stored(self, position: int) -> int:
        return len(self._rows) - 1 - position if self._descending else position

    def _shown(self, stored: int) -> int:
        return len(self._rows) - 1 - stored if self._descending else stored

    def _move(self, old: Row, row: Row) -> None:
        """A row whose sort value changed: to its new place, as one move."""
        old_key, new_key = self._key(old), self._key(row)
        count = len(self._rows)
        source = self._find(old_key)
        target = self._find(new_key)  # before the move
        self._by_id[row["member_id"]] = row
        if target in (source, source + 1):  # its neighbours stay its neighbours
            self._rows[source] = row
        else:
            if self._descending:
                shown_source, shown_target = count - 1 - source, count - target
            else:
                shown_source, shown_target = source, target
            if self.listener:
                self.listener.before_move(shown_source, shown_target)
            del self._rows[source]
            at = target - 1 if target > source else target
            self._rows.insert(at, row)
            if self.listener:
                self.listener.after_move()
        if self.listener:
            position = self.position_of(row["member_id"])
            assert position is not None
            self.listener.rows_changed(position, position, *_changed_columns(old, row))

    def _add(self, rows: Sequence[Row]) -> None:
        for row in rows:
            self._seen[row["member_id"]] = self._next_seen
            self._next_seen += 1
            self._by_id[row["member_id"]] = row
        if self._order is None:  # first seen: all of them after every row there is
            first = len(self._rows)
            if self.listener:
                self.listener.before_insert(first, first + len(rows) - 1)
            self._rows.extend(rows)
            if self.listener:
                self.listener.after_insert()
            return
        for row in rows:
            stored = self._find(self._key(row))
            shown = len(self._rows) - stored if self._descending else stored
            if self.listener:
                self.listener.before_insert(shown, shown)
            self._rows.insert(stored, row)
            if self.listener:
                self.listener.after_insert()

    def _seen_key(self, row: Row) -> int:
        return self._seen[row["member_id"]]

    def _remember_times(self, rows: Iterable[Row]) -> None:
        times = self._times
        if len(times) > 2 * len(self._by_id) + 1024:  # mostly times no row has now
            times.clear()
            rows = [*self._by_id.values(), *rows]
        for row in rows:
            value = row.get("last_event_at")
            if value.__class__ is str and value not in times:
                times[value] = time_key(value)

    def _find(self, key: SortKey) -> int:
        """Where a row of this key is (or goes) in the rows, ascending by key."""
        return bisect.bisect_left(self._rows, key, key=self._key)

    def _ordered(self, rows: list[Row], order: SortOrder | None) -> list[Row]:
        """`rows`, given in first-seen order, in `order`."""
        if order is None:
            return rows
        values = self._sort_values(order, rows)
        return list(map(rows.__getitem__, sorted(range(len(rows)), key=values.__getitem__)))

    def _sort_values(self, order: SortOrder, rows: list[Row]) -> list[Any]:
        """Per row, the part of its key `order` compares before the first-seen order:
        sorting rows kept in first-seen order stably by these gives the keys' order."""
        column, last = order.column, not order.descending
        if column == "member_id":
            return list(map(MEMBER_ID, rows))
        values = list(map(methodcaller("get", column), rows))
        if column == "points":
            missing = MISSING if last else -MISSING
            return [v if isinstance(v, int) else missing for v in values]
        if column == "pending_proposals":
            return [v if isinstance(v, int) else 0 for v in values]
        if column == "tier":
            ranks, absent = tier_ranks(last)
            return [ranks.get(str(v), absent) for v in values]
        if column == "last_event_at":
            times = self._times
            times[None] = times[""] = no_time = MISSING if last else -MISSING
            try:
                return list(map(times.__getitem__, values))
            except (KeyError, TypeError):  # a value that is no text (never from the server)
                return [time_key(v) if v else no_time for v in values]
        no_build = none_text(last)
        builds = {v: natural(v) if v else no_build for v in set(values)}  # a few builds
        return list(map(builds.__getitem__, values))

    def _key_function(self, order: SortOrder | None) -> Any:
        """Ascending keys for `order`, unique per member (the value, then the order first
        seen): the missing values first when descending (the list is then read from the
        end), so they come last both ways. `_sort_values` gives the same order."""
        if order is None:
            return self._seen_key
        seen = self._seen
        last = not order.descending
        column = order.column
        if column == "member_id":
            return MEMBER_ID
        if column in ("points", "pending_proposals"):
            missing = 0 if column == "pending_proposals" else (MISSING if last else -MISSING)

            def number(row: Row) -> int:
                value = row.get(column)
                return ((value if isinstance(value, int) else missing) << 40) + seen[
                    row["member_id"]
                ]

            return number
        if column == "tier":
            ranks, absent = tier_ranks(last)

            def tier(row: Row) -> int:
                return (ranks.get(str(row.get("tier")), absent) << 40) + seen[row["member_id"]]

            return tier
        if column == "last_event_at":
            no_time = MISSING if last else -MISSING

            def time(row: Row) -> int:
                value = row.get("last_event_at")
                return ((time_key(value) if value else no_time) << 40) + seen[row["member_id"]]

            return time
        no_build = none_text(last)

        def build(row: Row) -> tuple[str, int]:
            value = row.get("build_id")
            return (natural(value) if value else no_build), seen[row["member_id"]]

        return build


_COLUMN_KEYS = {column.key for column in COLUMNS}


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
