"""The approvals panel: every member's pending proposals in one queue, decided here.

Keyboard triage on the table: A approves, R rejects (both with the reason typed
once in the reason field), N moves to the next proposal. A bulk decision by
policy counts what it would decide and asks before it decides anything.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QEvent, QItemSelectionModel, QObject, Qt, Signal
from PySide6.QtGui import QKeyEvent, QShowEvent
from PySide6.QtWidgets import (
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QWidget,
)

from desktop import preload, theme
from desktop.approvals_filters import QueueFilters
from desktop.approvals_model import ApprovalsFilterModel, ApprovalsModel
from desktop.asyncutil import async_slot, cancel_slot_tasks, run_dialog, show_error
from desktop.layouts import button, elided, hbox, label, line_edit, split, ticker, vbox
from desktop.member_detail_text import proposal_text
from desktop.proposal_view import ProposalView
from desktop.tables import fixed_table

APPROVALS_MODULE = "runtime.approvals"  # imports the workflows and the Agents SDK

if TYPE_CHECKING:
    import asyncio

    from desktop.session import Session

log = logging.getLogger(__name__)

REFRESH_INTERVAL_MS = 3000
# hidden, the queue is read every third tick (9 s): the count in the title, the tab and
# the tray stays current without asking every waiting member every 3 s
BACKGROUND_EVERY_TICKS = 3
_COLUMN_WIDTHS = (110, 70, 130, 260, 90, 140, 70, 80)  # the agent's reason stretches
_TRIAGE_KEYS = {Qt.Key.Key_A: "approve", Qt.Key.Key_R: "reject", Qt.Key.Key_N: "next"}


class ApprovalsPanel(QWidget):
    """The approval queue across all members of this desk's task queue.

    Signals:
        status_posted(text): a short message for the status bar.
        pending_changed(count): how many proposals wait, after each load.
        decided(proposal_id, ok, text): a decision's outcome (refusals too).
    """

    status_posted = Signal(str)
    pending_changed = Signal(int)
    decided = Signal(str, bool, str)

    def __init__(self, *, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._session = session
        self.model = ApprovalsModel(parent=self)
        self.proxy = ApprovalsFilterModel(source=self.model, parent=self)
        self.confirm_box: QMessageBox | None = None

        self.filters = QueueFilters(self)
        self.refresh_button = button("Refresh", self, "approvalsRefresh")
        # wraps: a bulk decision under way adds its line to the count
        self.count_label = label(
            self, "approvalsCount", "Waiting for the Temporal server…", wrap=True
        )
        filters = hbox(self.filters, 1, self.refresh_button)

        self.table = fixed_table(self.proxy, self, "approvalsTable", widths=_COLUMN_WIDTHS)
        # unsorted (oldest first) until a header is clicked; the order is remembered
        self.table.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.table.setSortingEnabled(True)
        self.table.installEventFilter(self)

        self.reason = line_edit(
            self,
            "Reason for the decision (required; kept for the next ones)",
            name="decisionReason",
        )
        self.approve_button = QPushButton("Approve (A)", self)
        self.reject_button = QPushButton("Reject (R)", self)
        self.next_button = QPushButton("Next (N)", self)
        decide_row = hbox(
            QLabel("Reason", self),
            (self.reason, 1),
            self.approve_button,
            self.reject_button,
            self.next_button,
        )

        self.policy = line_edit(
            self,
            "Policy, e.g. action=grant_points,max_points=500 (keys: action, min_points, "
            "max_points, tier, member)",
            name="bulkPolicy",
        )
        self.bulk_approve_button = QPushButton("Approve by policy…", self)
        self.bulk_reject_button = QPushButton("Reject by policy…", self)
        bulk_row = hbox(
            QLabel("Bulk", self),
            (self.policy, 1),
            self.bulk_approve_button,
            self.bulk_reject_button,
        )

        self.results = QListWidget(self)
        self.results.setObjectName("decisionResults")
        results_box = QWidget(self)
        results_layout = vbox(results_box, QLabel("Decisions made here", self), self.results)
        results_layout.setContentsMargins(0, 0, 0, 0)
        # the selected proposal whole, beside the queue
        self.proposal_view = ProposalView(session=session, parent=self)
        beside = self.detail_splitter = split(
            self,
            Qt.Orientation.Horizontal,
            (self.table, 3),
            (self.proposal_view, 2),
            name="approvalsDetailSplitter",
        )
        splitter = self.splitter = split(
            self, Qt.Orientation.Vertical, (beside, 3), (results_box, 1), name="approvalsSplitter"
        )

        vbox(self, filters, (splitter, 1), decide_row, bulk_row, self.count_label)

        self._timer = ticker(self, REFRESH_INTERVAL_MS, self._on_timer_timeout)
        self._ticks = 0
        self._bulk_text = ""  # the bulk decisions running, as the last refresh found them
        self.filters.changed.connect(self._on_filters_changed)
        self.refresh_button.clicked.connect(self._on_refresh_button_clicked)
        self.approve_button.clicked.connect(self._on_approve_button_clicked)
        self.reject_button.clicked.connect(self._on_reject_button_clicked)
        self.next_button.clicked.connect(self._on_next_button_clicked)
        self.bulk_approve_button.clicked.connect(self._on_bulk_approve_button_clicked)
        self.bulk_reject_button.clicked.connect(self._on_bulk_reject_button_clicked)
        self.model.rowsInserted.connect(self._on_model_rows_changed)
        self.model.rowsRemoved.connect(self._on_model_rows_changed)
        self.model.modelReset.connect(self._on_model_rows_changed)
        self.table.selectionModel().currentRowChanged.connect(
            self._on_selection_current_row_changed
        )
        session.client_connected.connect(self._on_session_client_connected)
        if session.client is not None:
            self._on_session_client_connected(session.client)

    # -- public -------------------------------------------------------------------

    def stop(self) -> list[asyncio.Task[Any]]:
        self._timer.stop()
        return cancel_slot_tasks(self) + self.proposal_view.stop()

    def current_proposal(self) -> dict[str, Any] | None:
        index = self.table.selectionModel().currentIndex()
        if not index.isValid():
            return None
        return self.model.row_at(self.proxy.mapToSource(index).row())

    def selected_member_id(self) -> str:
        proposal = self.current_proposal()
        return str(proposal["member_id"]) if proposal else ""

    def select_row(self, row: int) -> None:
        """Make proxy row `row` current (clamped); nothing when the queue is empty."""
        count = self.proxy.rowCount()
        if not count:
            return
        index = self.proxy.index(min(max(row, 0), count - 1), 0)
        self.table.selectionModel().setCurrentIndex(
            index,
            QItemSelectionModel.SelectionFlag.ClearAndSelect
            | QItemSelectionModel.SelectionFlag.Rows,
        )
        self.table.scrollTo(index)

    def next_proposal(self) -> None:
        current = self.table.selectionModel().currentIndex()
        self.select_row(current.row() + 1 if current.isValid() else 0)

    # -- loading --------------------------------------------------------------------

    @async_slot(overlap="skip", errors="status")
    async def refresh(self) -> None:
        await preload.ready(APPROVALS_MODULE)  # never on the GUI thread
        from runtime import approvals
        from runtime.bulk_decisions import progress_text

        client = self._session.client
        if client is None:
            return
        unreachable: list[str] = []
        found = await approvals.proposals(
            client,
            status="pending",
            task_queue=self._session.target.task_queue,
            unreachable=unreachable,
        )
        # bulk decisions still under way on the server (this app may have been restarted)
        under_way = await approvals.bulk_decisions(client, limit=10, running=True)
        running = [b for b in under_way if b.state != "done"]  # done, not yet closed
        self._bulk_text = " · ".join(f"bulk: {progress_text(b)}" for b in running)
        self.model.set_rows(found)
        if self.proxy.rowCount() and not self.table.selectionModel().currentIndex().isValid():
            self.select_row(0)
        self._update_count(unreachable)

    def _update_count(self, unreachable: list[str] | None = None) -> None:
        total, shown = self.model.rowCount(), self.proxy.rowCount()
        text = f"{total:,} pending" + (f" · {shown:,} shown" if shown != total else "")
        if unreachable:
            text += f" · {len(unreachable)} members did not answer (is a worker running?)"
        self.count_label.setText(text + (f" · {self._bulk_text}" if self._bulk_text else ""))
        self.pending_changed.emit(total)  # the tab's count agrees with this one

    # -- deciding ---------------------------------------------------------------------

    # "skip": a key pressed again while a decision is under way must neither cancel
    # it (the server may have applied it) nor decide the same proposal twice
    @async_slot(overlap="skip", title="Decision failed")
    async def decide_current(self, approve: bool) -> None:
        """Approve or reject the current proposal, then move to the next one."""
        from runtime import approvals

        client = self._session.client
        proposal = self.current_proposal()
        if client is None or proposal is None:
            self._post("Select a proposal first")
            return
        reason = self.reason.text().strip()
        if not reason:
            self.reason.setFocus()
            self._post("Type a reason first: every decision needs one")
            return
        row = self.table.selectionModel().currentIndex().row()
        pid = proposal["id"]
        verb = "approve" if approve else "reject"
        member, action = proposal["member_id"], proposal["action"]
        what = elided(proposal_text(proposal), RESULT_TEXT_CHARS)
        # the whole proposal, with its id (what `loyalty-desk approvals` takes), on hover
        details = f"{pid}\n{action}: {proposal_text(proposal)}"
        try:
            result = await approvals.decide(
                client,
                pid,
                digest=approvals.shown_digest(proposal),  # bound to what is shown
                approve=approve,
                reason=reason,
                task_queue=self._session.target.task_queue,
            )
        except approvals.ApprovalError as error:
            self._record(pid, False, f"could not {verb} {member}'s {action}: {error}", details)
            self.refresh()  # most refusals mean the queue is stale (decided elsewhere)
            return
        self._record(
            pid,
            True,
            f"{member}: {action} {what} — {result.message}",
            details,
            status=f"{member}: {action} — {result.message}",  # fits beside the server's
        )
        self.model.remove_key(pid)
        self.select_row(row)
        self._update_count()

    @async_slot(overlap="skip", title="Bulk decision failed")
    async def decide_by_policy(self, approve: bool) -> None:
        """Count what the policy matches, ask, then decide them all the same way."""
        from runtime import approvals

        client = self._session.client
        if client is None:
            self._post("Not connected to Temporal yet")
            return
        verb = "Approve" if approve else "Reject"
        try:
            policy = approvals.parse_policy(self.policy.text())
        except approvals.ApprovalError as error:
            show_error(self.window(), "Bad policy", str(error))
            return
        reason = self.reason.text().strip()
        if not reason:
            show_error(self.window(), f"{verb} by policy", "a reason is required")
            return
        task_queue = self._session.target.task_queue
        preview = await approvals.decide_by_policy(
            client, policy, approve=approve, reason=reason, dry_run=True, task_queue=task_queue
        )
        if not preview.matched:
            self._post(f"No pending proposal matches {policy.text}")
            return
        box = QMessageBox(
            QMessageBox.Icon.Question,
            f"{verb} by policy",
            f"{verb} {preview.matched} pending proposal(s) matching {policy.text}?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            self,
        )
        box.setObjectName("bulkConfirm")
        silent = len(preview.failed)
        box.setInformativeText(
            f"Reason: {reason}"
            + (f"\n{silent} member(s) did not answer and are left out." if silent else "")
        )
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        self.confirm_box = box
        try:
            await run_dialog(box)
            confirmed = box.clickedButton() is box.button(QMessageBox.StandardButton.Yes)
        finally:
            self.confirm_box = None
            box.deleteLater()
        if not confirmed:
            self._post(f"{verb} by policy cancelled; nothing decided")
            return
        report = await approvals.decide_by_policy(
            client,
            policy,
            approve=approve,
            reason=reason,
            task_queue=task_queue,
            confirmed=preview.chosen,  # exactly what was counted and confirmed
        )
        for failure in report.failed:
            self._record(
                failure["proposal_id"], False, f"{failure['proposal_id']}: {failure['reason']}"
            )
        for done in report.decided:
            self.model.remove_key(done["proposal_id"])
        self._record(
            policy.text,
            not report.failed,
            f"policy {policy.text}: {len(report.decided)} of {report.matched} "
            f"{'approved' if approve else 'rejected'}, {len(report.failed)} failed",
        )
        self._update_count()
        await self.refresh()

    def _record(
        self, key: str, ok: bool, text: str, details: str = "", status: str | None = None
    ) -> None:
        """A decision's outcome: at the top of the results list and in the status bar
        (`status`, when shorter words suit it)."""
        item = QListWidgetItem(("✓ " if ok else "✗ ") + text)
        if details:
            item.setToolTip(details)
        if not ok:
            item.setForeground(theme.brush("bad"))
        self.results.insertItem(0, item)
        log.info("decision: %s", text)
        self.decided.emit(key, ok, text)
        self._post(status or text)

    def _post(self, text: str) -> None:
        self.status_posted.emit(text)

    # -- slots --------------------------------------------------------------------------

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.table and event.type() == QEvent.Type.KeyPress:
            assert isinstance(event, QKeyEvent)
            if event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier:
                return False
            command = _TRIAGE_KEYS.get(Qt.Key(event.key()))
            if command == "next":
                self.next_proposal()
                return True
            if command is not None:
                self.decide_current(command == "approve")
                return True
        return super().eventFilter(watched, event)

    def showEvent(self, event: QShowEvent) -> None:
        """Back in view: the queue may have changed while hidden (no refresh then)."""
        super().showEvent(event)
        if self._session.client is not None:
            self.refresh()

    def _on_session_client_connected(self, _client: Any) -> None:
        self.count_label.setText("Loading proposals…")
        self._timer.start()
        self.refresh()

    def _on_timer_timeout(self) -> None:
        # hidden too: the window's title, the tab and the tray count what waits
        self._ticks += 1
        if self.isVisible() or self._ticks % BACKGROUND_EVERY_TICKS == 0:
            self.refresh()

    def _on_filters_changed(self) -> None:
        self.proxy.set_filter(self.filters.queue_filter())
        self._update_count()

    def _on_refresh_button_clicked(self) -> None:
        self.refresh()

    def _on_approve_button_clicked(self) -> None:
        self.decide_current(True)

    def _on_reject_button_clicked(self) -> None:
        self.decide_current(False)

    def _on_next_button_clicked(self) -> None:
        self.next_proposal()
        self.table.setFocus()

    def _on_bulk_approve_button_clicked(self) -> None:
        self.decide_by_policy(True)

    def _on_bulk_reject_button_clicked(self) -> None:
        self.decide_by_policy(False)

    def _on_model_rows_changed(self, *_: Any) -> None:
        self._update_count()
        self._on_selection_current_row_changed()  # another row may now be current

    def _on_selection_current_row_changed(self, *_: Any) -> None:
        proposal = self.current_proposal()
        if proposal is None or proposal.get("id") != self.proposal_view.proposal_id:
            self.proposal_view.show_proposal(proposal)


RESULT_TEXT_CHARS = 60
