"""The approval queue's item models: pending proposals, and the filter in front of them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QSortFilterProxyModel

from desktop.keyed_rows_model import Column, KeyedRowsModel, Row
from desktop.member_detail_text import proposal_text, short_time
from desktop.units import duration_text, money_text, utc_time_text

AnyIndex = QModelIndex | QPersistentModelIndex


def created_at(proposal: Row) -> datetime | None:
    text = proposal.get("created_at")
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def age_text(seconds: float) -> str:
    """A proposal's age: "5 min", "2 h 5 min", "2 days" (under a minute: "0 min")."""
    return duration_text(seconds) if seconds >= 60 else "0 min"


class ApprovalsModel(KeyedRowsModel):
    """Pending proposals across members, oldest first, with their model and cost."""

    KEY_FIELD = "id"
    COLUMNS = (
        Column("member_id", "Member"),
        Column("member_tier", "Tier"),
        Column("action", "Action"),
        Column("what", "Proposal"),
        Column("age", "Age", numeric=True),
        Column("model", "Model"),
        Column("tokens", "Tokens", numeric=True),
        Column("cost_usd", "Cost", numeric=True),
        Column("reason", "Agent's reason"),  # last: it takes the room that is left
    )

    def __init__(self, *, now: Any = None, parent: Any = None) -> None:
        super().__init__(parent=parent)
        # the clock ages are read from; tests pass their own
        self.now = now or (lambda: datetime.now(UTC))

    def display(self, row: Row, key: str) -> str:
        if key == "what":
            return proposal_text(row)
        if key == "age":
            created = created_at(row)
            return age_text((self.now() - created).total_seconds()) if created else ""
        if key == "cost_usd":
            cost = row.get("cost_usd")
            return money_text(cost) if isinstance(cost, int | float) else ""
        if key == "tokens":
            tokens = row.get("tokens")
            return f"{tokens:,}" if isinstance(tokens, int) else ""
        return super().display(row, key)

    def tooltip(self, row: Row, key: str) -> str | None:
        if key in ("reason", "what"):
            return self.display(row, key) or None
        if key == "age":
            return (
                f"Proposed {short_time(row.get('created_at'))} "
                f"({utc_time_text(row.get('created_at'))}), expires "
                f"{short_time(row.get('expires_at'))} ({utc_time_text(row.get('expires_at'))})"
            )
        if key == "member_id":
            return str(row.get("id"))
        return None


@dataclass(frozen=True)
class QueueFilter:
    """What the queue shows: every field None (or empty) shows everything."""

    action: str | None = None
    tier: str | None = None
    min_points: int | None = None
    max_points: int | None = None
    min_age: timedelta | None = None

    def matches(self, proposal: Row, now: datetime) -> bool:
        if self.action and proposal.get("action") != self.action:
            return False
        if self.tier and proposal.get("member_tier") != self.tier:
            return False
        if self.min_points is not None or self.max_points is not None:
            points = (proposal.get("arguments") or {}).get("points")
            if not isinstance(points, int):
                return False  # amount bounds select grants, as bulk policies do
            if self.min_points is not None and points < self.min_points:
                return False
            if self.max_points is not None and points > self.max_points:
                return False
        if self.min_age is not None:
            created = created_at(proposal)
            if created is None or now - created < self.min_age:
                return False
        return True


class ApprovalsFilterModel(QSortFilterProxyModel):
    """The queue as filtered by action, tier, amount and age."""

    def __init__(self, *, source: ApprovalsModel, parent: Any = None) -> None:
        super().__init__(parent)
        self._filter = QueueFilter()
        self._source = source
        self.setSourceModel(source)

    @property
    def queue_filter(self) -> QueueFilter:
        return self._filter

    def set_filter(self, queue_filter: QueueFilter) -> None:
        if queue_filter != self._filter:
            self.beginFilterChange()
            self._filter = queue_filter
            self.endFilterChange()

    def filterAcceptsRow(self, source_row: int, source_parent: AnyIndex) -> bool:
        row = self._source.row_at(source_row)
        return row is not None and self._filter.matches(row, self._source.now())

    def lessThan(self, left: AnyIndex, right: AnyIndex) -> bool:
        """Sorting by a column sorts by its value (ages by time, costs by amount)."""
        key = self._source.COLUMNS[left.column()].key
        a = self._sort_key(self._source.row_at(left.row()), key)
        b = self._sort_key(self._source.row_at(right.row()), key)
        return a < b

    def _sort_key(self, row: Row | None, key: str) -> tuple[int, Any]:
        if row is None:
            return (1, "")
        if key == "age":
            created = created_at(row)
            # the oldest proposal has the greatest age
            return (0, -created.timestamp()) if created else (1, 0)
        value = row.get(key)
        if isinstance(value, int | float):
            return (0, value)
        if value is None:
            return (1, "")
        return (0, self._source.display(row, key).casefold())
