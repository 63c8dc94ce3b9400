"""The Effects view: approved messages, fraud cases and tier-change requests, and what
became of them (runtime/effects.py). Across members as a tab of the window; one
member's in the member detail (`member=`).

Each row: status (pending = undelivered, delivered, failed), kind, member, attempts and,
for a failure, the destination's last answer. A failed or waiting effect can be
retried (audited, like `loyalty-desk effects retry`).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from desktop import preload
from desktop.asyncutil import async_slot, cancel_slot_tasks
from desktop.layouts import button, choices, label, line_edit, ticker, vbox
from desktop.units import local_time_text, utc_time_text

if TYPE_CHECKING:
    from desktop.session import Session

EFFECTS_MODULE = "runtime.effects"
REFRESH_INTERVAL_MS = 5_000
COLUMNS = ("Status", "Kind", "Member", "Attempts", "Decided", "Last answer", "Effect")
STATUS_CHOICES = (
    ("All", None),
    ("Pending", "pending"),
    ("Delivered", "delivered"),
    ("Failed", "failed"),
    ("Superseded", "superseded"),
)


def last_answer(row: dict[str, Any]) -> str:
    """A failure's answer from the destination, else the effect's own line."""
    if row.get("status") == "delivered":
        answers = [d.get("answer", "") for d in (row.get("deliveries") or {}).values()]
        return "; ".join(a for a in answers if a)
    return str(row.get("answer") or row.get("detail") or "")


class EffectsPanel(QWidget):
    """Effects from visibility (no worker needs to answer), refreshed while in view."""

    status_posted = Signal(str)

    def __init__(
        self, *, session: Session, member: str | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._session = session
        self.member = member
        self.rows: list[dict[str, Any]] = []
        self.counts: dict[str, int] = {}

        self.status_filter = choices(self, STATUS_CHOICES, name="effectsStatus")
        self.member_filter = line_edit(self, "member id", name="effectsMember")
        self.member_filter.setVisible(member is None)
        self.refresh_button = button("Refresh", self, "effectsRefresh")
        self.retry_button = button(
            "Retry",
            self,
            "effectsRetry",
            tip="Try the selected failed or waiting effect again (audited)",
            enabled=False,
        )
        filters = QHBoxLayout()
        filters.addWidget(QLabel("Status:", self))
        filters.addWidget(self.status_filter)
        if member is None:
            filters.addWidget(QLabel("Member:", self))
            filters.addWidget(self.member_filter)
        filters.addStretch(1)
        filters.addWidget(self.retry_button)
        filters.addWidget(self.refresh_button)

        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setObjectName("effectsTable")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(5, QHeaderView.ResizeMode.Stretch)
        self.count_label = label(self, "effectsCount", "Effects load once connected.", wrap=True)
        vbox(self, filters, (self.table, 1), self.count_label)

        self._timer = ticker(self, REFRESH_INTERVAL_MS, self._on_timer_timeout)
        self.status_filter.currentIndexChanged.connect(self._on_filter_changed)
        self.member_filter.editingFinished.connect(self._on_filter_changed)
        self.refresh_button.clicked.connect(self._on_refresh_button_clicked)
        self.retry_button.clicked.connect(self._on_retry_button_clicked)
        self.table.itemSelectionChanged.connect(self._on_selection_changed)
        session.client_connected.connect(self._on_session_client_connected)

    def stop(self) -> list[asyncio.Task[Any]]:
        self._timer.stop()
        return cancel_slot_tasks(self)

    def current(self) -> dict[str, Any] | None:
        row = self.table.currentRow()
        return self.rows[row] if 0 <= row < len(self.rows) else None

    @async_slot(overlap="skip", errors="status")
    async def refresh(self) -> None:
        await preload.ready(EFFECTS_MODULE)
        from runtime import effects

        client = self._session.client
        if client is None:
            return
        target = self._session.target
        member = self.member or self.member_filter.text().strip() or None
        status = self.status_filter.currentData()
        rows, counts = await asyncio.gather(
            effects.list_effects(client, target, status=status, member=member),
            effects.counts(client, target, member),
        )
        self.show_rows(rows, counts)

    def show_rows(self, rows: list[dict[str, Any]], counts: dict[str, int]) -> None:
        chosen = (self.current() or {}).get("effect_id")
        self.rows, self.counts = rows, counts
        self.table.setRowCount(len(rows))
        for n, row in enumerate(rows):
            cells = (
                row.get("status", ""),
                row.get("kind", ""),
                row.get("member_id", ""),
                str(row.get("attempts", 0)),
                f"{local_time_text(row.get('decided_at')) or row.get('decided_at', '')}"
                f" by {row.get('decided_by', '')}",
                last_answer(row),
                row.get("effect_id", ""),
            )
            for column, text in enumerate(cells):
                item = QTableWidgetItem(str(text))
                if column == 4:  # the operator's time zone shown, UTC on hover
                    item.setToolTip(utc_time_text(row.get("decided_at")))
                if column == 5:
                    item.setToolTip(str(row.get("detail") or text))
                self.table.setItem(n, column, item)
            if row.get("effect_id") == chosen:
                self.table.selectRow(n)
        self.count_label.setText(
            f"{counts.get('pending', 0):,} pending (undelivered) · "
            f"{counts.get('delivered', 0):,} delivered · {counts.get('failed', 0):,} failed"
            + (f" · {counts['superseded']:,} superseded" if counts.get("superseded") else "")
            + (f" · {len(rows):,} shown" if len(rows) != sum(counts.values()) else "")
        )
        self._on_selection_changed()

    @async_slot(overlap="skip", title="Retry failed")
    async def retry_current(self) -> None:
        from runtime import effects

        row = self.current()
        client = self._session.client
        if row is None or client is None:
            return
        await effects.retry(
            client, self._session.target, row["effect_id"], reason="retried from the window"
        )
        self.status_posted.emit(f"Retrying {row['effect_id']}")
        await asyncio.sleep(1.0)
        await self.refresh()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._session.client is not None:
            self._timer.start()
            self.refresh()

    def _on_session_client_connected(self, _client: Any) -> None:
        if self.isVisible():
            self._timer.start()
            self.refresh()

    def _on_timer_timeout(self) -> None:
        try:
            asyncio.get_event_loop()
        except RuntimeError:  # the app's loop has ended
            self._timer.stop()
            return
        if self.isVisible():
            self.refresh()

    def _on_filter_changed(self, *_: Any) -> None:
        self.refresh()

    def _on_refresh_button_clicked(self) -> None:
        self.refresh()

    def _on_retry_button_clicked(self) -> None:
        self.retry_current()

    def _on_selection_changed(self) -> None:
        row = self.current()
        self.retry_button.setEnabled(
            row is not None and row.get("status") not in ("delivered", "superseded")
        )


__all__ = ["EffectsPanel"]
