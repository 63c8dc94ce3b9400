"""The members panel: search, refresh, and the lazily paged members table."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QItemSelectionModel, QModelIndex, Qt, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QTableView,
    QWidget,
)

from desktop import theme
from desktop.asyncutil import async_slot, cancel_slot_tasks
from desktop.layouts import button, hbox, label, line_edit, ticker, vbox
from desktop.members_loader import MembersLoader, MembersSource, search_query
from desktop.members_model import MembersStore, MembersTableModel
from workflows.visibility import check_fragment

if TYPE_CHECKING:
    import asyncio

log = logging.getLogger(__name__)

REFRESH_INTERVAL_MS = 2000
_COLUMN_WIDTHS = (90, 100, 170, 250, 130)  # after the member column, which stretches


class MembersPanel(QWidget):
    """Members of the current search, kept up to date every two seconds.

    Signals:
        member_selected(member_id): the current row changed ("" when none).
        member_activated(member_id): a row was double-clicked or Enter pressed on it
            (the window opens the member's detail).
        status_posted(text): a short message for the status bar.
        simulate_requested(): "Simulate traffic…" was clicked (the window opens the dialog).
    """

    member_selected = Signal(str)
    member_activated = Signal(str)
    status_posted = Signal(str)
    simulate_requested = Signal()

    def __init__(self, *, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._store = MembersStore()
        self.model = MembersTableModel(store=self._store, parent=self)
        self._loader: MembersLoader | None = None

        self.search = line_edit(
            self,
            "Member id prefix, or a visibility query such as "
            "LoyaltyTier = 'Gold' AND LoyaltyPoints > 500",
            name="memberSearch",
        )
        self.search.setClearButtonEnabled(True)
        self.refresh_button = button("Refresh", self, "refreshButton", enabled=False)
        self.simulate_button = button(
            "Simulate traffic…",
            self,
            "simulateButton",
            tip="Send generated events to members, as a feed would",
            enabled=False,
        )
        self.count_label = label(self, "memberCount", "Waiting for the Temporal server…")
        self.error_label = label(self, "queryError", wrap=True)
        theme.set_tone(self.error_label, "bad")
        self.error_label.hide()

        self.table = QTableView(self)
        self.table.setObjectName("membersTable")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        # rows keep the order they were first seen in until a header is clicked; a
        # third click on it goes back to that order
        self.table.horizontalHeader().setSortIndicatorClearable(True)
        self.table.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.table.setSortingEnabled(True)
        self.table.setWordWrap(False)
        self.table.setStyleSheet("QTableView::item { padding: 0 6px; }")
        self.table.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        rows = self.table.verticalHeader()
        rows.hide()
        # fixed row heights: with 100,000 rows Qt must never measure them
        rows.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        rows.setDefaultSectionSize(self.fontMetrics().height() + 8)
        header = self.table.horizontalHeader()
        header.setHighlightSections(False)
        # never ResizeToContents: it measures every row
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column, width in enumerate(_COLUMN_WIDTHS, start=1):
            self.table.setColumnWidth(column, width)

        top = hbox((self.search, 1), self.refresh_button, self.simulate_button)
        vbox(self, top, self.error_label, (self.table, 1), self.count_label)

        self._timer = ticker(self, REFRESH_INTERVAL_MS, self._on_timer_timeout)
        self.search.returnPressed.connect(self._on_search_return_pressed)
        self.search.textChanged.connect(self._on_search_text_changed)
        self.refresh_button.clicked.connect(self._on_refresh_button_clicked)
        self.simulate_button.clicked.connect(self.simulate_requested)
        self.model.more_requested.connect(self._on_model_more_requested)
        self.model.rowsInserted.connect(self._on_model_rows_changed)
        self.model.rowsRemoved.connect(self._on_model_rows_changed)
        self.model.modelReset.connect(self._on_model_rows_changed)
        self.model.layoutChanged.connect(self._on_model_rows_changed)
        self.table.activated.connect(self._on_table_activated)
        selection = self.table.selectionModel()
        selection.currentRowChanged.connect(self._on_selection_current_row_changed)

    # -- public ---------------------------------------------------------------

    @property
    def loader(self) -> MembersLoader | None:
        return self._loader

    def set_source(self, source: MembersSource) -> asyncio.Task[Any]:
        """Show members from `source` (once connected); returns the first load."""
        self._loader = MembersLoader(store=self._store, source=source)
        self.refresh_button.setEnabled(True)
        self.simulate_button.setEnabled(True)
        self._timer.start()
        return self._reload()

    def selected_member_id(self) -> str:
        index = self.table.selectionModel().currentIndex()
        return (self.model.member_id_at(index.row()) or "") if index.isValid() else ""

    def select_member(self, member_id: str) -> bool:
        index = self.model.index_of(member_id)
        if not index.isValid():
            return False
        self.table.selectionModel().setCurrentIndex(
            index,
            QItemSelectionModel.SelectionFlag.ClearAndSelect
            | QItemSelectionModel.SelectionFlag.Rows,
        )
        self.table.scrollTo(index, QAbstractItemView.ScrollHint.PositionAtCenter)
        return True

    def visible_member_ids(self) -> list[str]:
        rows = len(self._store)
        if not rows:
            return []
        first = self.table.rowAt(0)
        if first < 0:
            return []
        last = self.table.rowAt(self.table.viewport().height() - 1)
        return self._store.member_ids(first, rows - 1 if last < 0 else last)

    def stop(self) -> list[asyncio.Task[Any]]:
        """No more refreshes; returns the running loads to await."""
        self._timer.stop()
        return cancel_slot_tasks(self)

    # -- loading ----------------------------------------------------------------

    @async_slot(errors="status")
    async def _reload(self) -> None:
        loader = self._loader
        if loader is None:
            return
        query = search_query(self.search.text())
        self.count_label.setText("Loading members…")
        if query:
            try:
                check_fragment(query)  # refused here: it could widen the list, not narrow it
            except Exception as error:
                self._update_count()
                if not self._show_query_error(error):
                    raise
                return
        await self._load(loader.reload(query), clear=True)

    @async_slot(overlap="skip", errors="status")
    async def _refresh(self) -> None:
        loader = self._loader
        if loader is None or self._store.loading:
            return
        await self._load(loader.refresh(self.visible_member_ids()), clear=True)

    @async_slot(overlap="skip", errors="status")
    async def _load_more(self) -> None:
        if self._loader is not None:
            await self._load(self._loader.load_more(), clear=False)

    async def _load(self, loading: Awaitable[Any], *, clear: bool) -> None:
        """Await a load; a bad query says why under the search box (and `clear`: a good
        one clears what it said), then the count."""
        try:
            await loading
        except Exception as error:
            self._update_count()
            if not self._show_query_error(error):
                raise
            return
        if clear:
            self._clear_query_error()
        self._update_count()

    def _update_count(self) -> None:
        loader = self._loader
        loaded = len(self._store)
        total = loader.total if loader else None
        if total is None:
            text = _members(loaded)
        elif loaded < total:
            text = f"{_members(total)} · {loaded:,} loaded (scroll for more)"
            if self._store.order is not None:  # a sort orders what is here, not the rest
                text += f" · sorted among the {loaded:,} loaded"
        else:
            text = _members(total)
        if loader and loader.query:
            text += f" matching {loader.query}"
        elif loader and not loaded and total == 0:
            # a new install: say where members come from
            text = (
                "No members yet: a member appears with its first event. Click "
                "Simulate traffic…, or send events with loyalty-desk feed."
            )
        self.count_label.setText(text)

    def _show_query_error(self, error: Exception) -> bool:
        """Temporal's refusals (a bad query, the server away) are shown here, not in dialogs."""
        from temporalio.service import RPCError, RPCStatusCode

        from workflows.visibility import QueryError

        if isinstance(error, QueryError):  # refused here, before it could widen the list
            text = f"Invalid query: {error}"
        elif not isinstance(error, RPCError):
            return False
        elif error.status == RPCStatusCode.INVALID_ARGUMENT:
            # the position would count from the start of the whole query, which
            # includes the members filter the user never typed
            reason = re.sub(r"^invalid query: | at position \d+", "", error.message)
            text = f"Invalid query: {reason}"
        else:
            text = f"Temporal did not answer: {error.message}"
        self.error_label.setText(text)
        self.error_label.show()
        self.status_posted.emit(text)
        return True

    def _clear_query_error(self) -> None:
        if self.error_label.text():
            self.status_posted.emit("")  # the status bar still told of the error
        self.error_label.hide()
        self.error_label.clear()

    # -- slots --------------------------------------------------------------------

    def _on_search_return_pressed(self) -> None:
        self._reload()

    def _on_search_text_changed(self, text: str) -> None:
        if not text.strip() and self._loader is not None:
            self._reload()  # the clear button: back to every member (and no error)

    def _on_refresh_button_clicked(self) -> None:
        if self._loader is not None and self._loader.query != search_query(self.search.text()):
            self._reload()  # the search text changed without Enter: search first
        else:
            self._refresh()

    def _on_timer_timeout(self) -> None:
        if self.isVisible():
            self._refresh()

    def showEvent(self, event: QShowEvent) -> None:
        """Shown again (its tab picked): the rows on screen are refreshed at once, not
        at the next tick (a rollback may have repaired them while another tab showed)."""
        super().showEvent(event)
        if self._timer.isActive():
            self._refresh()

    def _on_model_more_requested(self) -> None:
        self._load_more()

    def _on_model_rows_changed(self, *_: Any) -> None:
        if self._loader is not None and not self._store.loading:
            self._update_count()

    def _on_table_activated(self, index: QModelIndex) -> None:
        member_id = self.model.member_id_at(index.row())
        if member_id:
            self.member_activated.emit(member_id)

    def _on_selection_current_row_changed(
        self, current: QModelIndex, _previous: QModelIndex
    ) -> None:
        self.member_selected.emit(self.model.member_id_at(current.row()) or "")


def _members(count: int) -> str:
    return f"{count:,} member" + ("" if count == 1 else "s")
