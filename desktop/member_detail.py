"""One member up close: state, ledger, chart, timeline, and the two ways to change it.

A window of its own, opened from the members table. It asks the member's workflow
for its state every two seconds while shown, and reads the histories of its runs
(for the timeline) only when the state says something happened.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from PySide6.QtCore import Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QCloseEvent, QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

import resources
from desktop import preload
from desktop.asyncutil import async_slot, cancel_slot_tasks, one_line, show_error
from desktop.effects_panel import EffectsPanel
from desktop.member_detail_chart import PointsChart
from desktop.member_detail_models import LedgerModel, ProposalsModel, TimelineModel
from desktop.member_detail_text import chart_points, short_run, state_signature, state_text
from desktop.units import utc_time_text
from workflows.contract import (
    AMOUNT_FIELD,
    QUERY_STATE,
    SIGNAL_EVENT,
    UPDATE_SYNC,
    member_workflow_id,
)

# imports the Agents SDK (~1.5 s): only an adjustment needs it; the state, the timeline
# and a test event go by the contract's names (workflows.contract)
MEMBER_MODULE = "workflows.member"

if TYPE_CHECKING:
    from temporalio.client import WorkflowHistory

    from desktop.session import Session

log = logging.getLogger(__name__)

REFRESH_INTERVAL_MS = 2000
# the event types a person can send from the form (a refund needs the id it refers to)
EVENT_TYPES = ("purchase", "trip_completed", "support_ticket")
_STATE_FIELDS = (
    ("points", "Points"),
    ("tier", "Tier"),
    ("lifetime_points", "Lifetime points"),
    ("events_processed", "Events processed"),
    ("events_rejected", "Events rejected"),
    ("build_id", "Build"),
    ("runs", "Runs"),
    ("pending", "Pending proposals"),
    ("last_event_at", "Last event"),
)


class MemberDetail(QWidget):
    """The detail window of one member.

    Signals:
        state_loaded(state): the member's `state` query answered (after each refresh).
        timeline_loaded(): the timeline was rebuilt from the run histories.
    """

    state_loaded = Signal(dict)
    timeline_loaded = Signal()

    def __init__(
        self,
        *,
        member_id: str,
        session: Session,
        open_url: Callable[[QUrl], Any] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.member_id = member_id
        self._session = session
        self._open_url = open_url or QDesktopServices.openUrl
        self._histories: dict[str, WorkflowHistory] = {}
        self._seen_signature: tuple[Any, ...] | None = None
        self._run_ids: list[str] = []
        self.state: dict[str, Any] = {}
        self.setWindowTitle(f"Member {member_id} · Loyalty Desk")
        self.resize(1100, 700)

        self.title = QLabel(f"<b>{member_id}</b>", self)
        self.title.setTextFormat(Qt.TextFormat.RichText)
        self.state_labels: dict[str, QLabel] = {}
        grid = QGridLayout()
        for position, (key, title) in enumerate(_STATE_FIELDS):
            value = QLabel("…", self)
            value.setObjectName(f"state_{key}")
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.state_labels[key] = value
            grid.addWidget(QLabel(f"{title}:", self), position // 3, (position % 3) * 2)
            grid.addWidget(value, position // 3, (position % 3) * 2 + 1)

        self.ledger_model = LedgerModel(parent=self)
        self.ledger_table = _table(
            self.ledger_model, self, "ledgerTable", stretch=3, widths=(50, 150, 90, 0, 80, 90, 90)
        )
        self.chart = PointsChart(parent=self)
        self.chart.setObjectName("pointsChart")
        self.timeline_model = TimelineModel(parent=self)
        self.timeline_table = _table(
            self.timeline_model, self, "timelineTable", stretch=2, widths=(150, 90, 0, 90, 90)
        )
        self.proposals_model = ProposalsModel(parent=self)
        self.proposals_table = _table(
            self.proposals_model,
            self,
            "proposalsTable",
            stretch=6,
            widths=(140, 115, 160, 75, 125, 65, 0),
        )
        self.tabs = QTabWidget(self)
        self.tabs.addTab(self.ledger_table, "Ledger")
        self.tabs.addTab(self.chart, "Points over time")
        self.tabs.addTab(self.timeline_table, "Timeline")
        self.tabs.addTab(self.proposals_table, "Proposals")
        self.effects = EffectsPanel(session=session, member=member_id, parent=self)
        self.tabs.addTab(self.effects, "Effects")

        self.event_type = QComboBox(self)
        self.event_type.addItems(EVENT_TYPES)
        self.event_amount = QDoubleSpinBox(self)
        self.event_amount.setRange(0.01, 50_000.0)
        self.event_amount.setPrefix("$")
        self.event_amount.setValue(25.0)
        self.event_text = QLineEdit(self)
        self.event_text.setPlaceholderText("Ticket text")
        self.event_text.setEnabled(False)
        self.send_button = QPushButton("Send event", self)
        self.send_button.setObjectName("sendEventButton")
        event_box = QGroupBox("Send a test event", self)
        event_form = QFormLayout(event_box)
        event_form.addRow("Type", self.event_type)
        event_form.addRow("Amount", self.event_amount)
        event_form.addRow("Text", self.event_text)
        event_form.addRow(self.send_button)

        self.adjust_points = QSpinBox(self)
        self.adjust_points.setRange(-1_000_000, 1_000_000)
        self.adjust_points.setValue(100)
        self.adjust_reason = QLineEdit(self)
        self.adjust_reason.setPlaceholderText("Why (required)")
        self.adjust_button = QPushButton("Apply adjustment", self)
        self.adjust_button.setObjectName("adjustButton")
        adjust_box = QGroupBox("Manual adjustment", self)
        adjust_form = QFormLayout(adjust_box)
        adjust_form.addRow("Points", self.adjust_points)
        adjust_form.addRow("Reason", self.adjust_reason)
        adjust_form.addRow(self.adjust_button)

        self.reward = QComboBox(self)
        # the catalogue itself (runtime.rewards imports the member workflow: preloaded)
        for reward in sorted(resources.rewards().values(), key=lambda r: (r["cost"], r["id"])):
            self.reward.addItem(
                f"{reward['name']}: {reward['cost']:,} pts ({reward['min_tier']}+)", reward["id"]
            )
        self.redeem_reason = QLineEdit(self)
        self.redeem_reason.setPlaceholderText("Why (required)")
        self.redeem_button = QPushButton("Redeem…", self)
        self.redeem_button.setObjectName("redeemButton")
        self.cancel_request = QLineEdit(self)
        self.cancel_request.setPlaceholderText("Request id (see Timeline)")
        self.cancel_button = QPushButton("Cancel redemption…", self)
        self.cancel_button.setObjectName("cancelRedemptionButton")
        redeem_box = QGroupBox("Redemption", self)
        redeem_form = QFormLayout(redeem_box)
        redeem_form.addRow("Reward", self.reward)
        redeem_form.addRow("Reason", self.redeem_reason)
        redeem_form.addRow(self.redeem_button)
        redeem_form.addRow("Request", self.cancel_request)
        redeem_form.addRow(self.cancel_button)
        # asks the person to confirm (tests replace it): the question -> go ahead
        self.confirm: Callable[[str], bool] = self._ask

        self.runs_label = QLabel("…", self)
        self.runs_label.setObjectName("runLinks")
        self.runs_label.setTextFormat(Qt.TextFormat.RichText)
        self.runs_label.setWordWrap(True)
        runs_box = QGroupBox("Runs in the Temporal Web UI", self)
        QVBoxLayout(runs_box).addWidget(self.runs_label)

        side = QWidget(self)
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        side_layout.addWidget(event_box)
        side_layout.addWidget(adjust_box)
        side_layout.addWidget(redeem_box)
        side_layout.addWidget(runs_box)
        side_layout.addStretch(1)
        splitter = QSplitter(self)
        splitter.addWidget(self.tabs)
        splitter.addWidget(side)
        splitter.setStretchFactor(0, 1)
        splitter.setSizes([820, 280])

        self.status = QLabel(self)
        self.status.setObjectName("detailStatus")
        self.status.setWordWrap(True)
        layout = QVBoxLayout(self)
        header = QHBoxLayout()
        header.addWidget(self.title)
        header.addStretch(1)
        layout.addLayout(header)
        layout.addLayout(grid)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.status)

        self._timer = QTimer(self)
        self._timer.setInterval(REFRESH_INTERVAL_MS)
        self._timer.timeout.connect(self._on_timer_timeout)
        self.event_type.currentTextChanged.connect(self._on_event_type_current_text_changed)
        self.send_button.clicked.connect(self._on_send_button_clicked)
        self.adjust_button.clicked.connect(self._on_adjust_button_clicked)
        self.redeem_button.clicked.connect(self._on_redeem_button_clicked)
        self.cancel_button.clicked.connect(self._on_cancel_button_clicked)
        self.runs_label.linkActivated.connect(self._on_runs_label_link_activated)

    # -- public -----------------------------------------------------------------------

    @property
    def workflow_id(self) -> str:
        return member_workflow_id(self.member_id)

    def start(self) -> asyncio.Task[Any]:
        """Load now, then every two seconds while shown; returns the first load."""
        self._timer.start()
        return self.refresh()

    def stop(self) -> list[asyncio.Task[Any]]:
        self._timer.stop()
        return [*cancel_slot_tasks(self), *self.effects.stop()]

    def run_url(self, run_id: str) -> str | None:
        base = self._session.ui_url
        if not base:
            return None
        namespace = quote(self._session.target.namespace, safe="")
        workflow = quote(self.workflow_id, safe="")
        return f"{base.rstrip('/')}/namespaces/{namespace}/workflows/{workflow}/{run_id}/history"

    # -- loading ----------------------------------------------------------------------

    @async_slot(overlap="skip", errors="status")
    async def refresh(self) -> None:
        """The state; the timeline too when the state changed since the last look."""
        from temporalio.client import WorkflowQueryFailedError
        from temporalio.service import RPCError

        client = self._session.client
        if client is None:
            self.status.setText("Waiting for the Temporal server…")
            return
        handle = client.get_workflow_handle(self.workflow_id)
        try:
            state = await handle.query(QUERY_STATE)
            # the run id too: a reset changes it without changing the state
            described = await handle.describe()
        except RPCError as error:
            self.status.setText(f"Temporal did not answer: {error.message}")
            return
        except WorkflowQueryFailedError as error:  # e.g. the member's workflow task fails
            self.status.setText(f"The member did not answer: {one_line(error)}")
            return
        self._show_state(state)
        signature = (described.run_id, *state_signature(state))
        if signature != self._seen_signature:
            try:
                await self._load_timeline(state, described.run_id)
            except RPCError as error:
                self.status.setText(f"Could not read the run histories: {error.message}")
                return
            self._seen_signature = signature
        if self.status.text().startswith(
            ("Temporal did not", "The member did not", "Could not read", "Waiting")
        ):
            self.status.clear()

    async def _load_timeline(self, state: dict[str, Any], current_run: str) -> None:
        from desktop.member_detail_timeline import TimelineBuilder, fetch_chain

        client = self._session.client
        assert client is not None
        runs, complete = await fetch_chain(client, self.workflow_id, current_run, self._histories)
        total = len(runs) if complete else max(len(runs), int(state.get("runs") or 0))
        first = total - len(runs) + 1
        builder = TimelineBuilder(first_number=first)
        for run_id, history in runs:
            builder.add_run(run_id, history)
            # a run holds up to 500 signals to decode: the loop runs between runs
            # (a thread would not do: Python could collect Qt objects on it)
            await asyncio.sleep(0)
        self.timeline_model.set_rows(builder.rows(state.get("proposals") or []))
        self._run_ids = [run_id for run_id, _ in runs]
        self._show_runs(first)
        self.timeline_loaded.emit()

    def _show_state(self, state: dict[str, Any]) -> None:
        self.state = state
        pending = sum(1 for p in state.get("proposals") or [] if p.get("status") == "pending")
        values = {**state, "pending": pending}
        for key, label in self.state_labels.items():
            label.setText(state_text(key, values.get(key), state))
            if key == "last_event_at":
                label.setToolTip(utc_time_text(values.get(key)))
        ledger = state.get("ledger") or []
        self.ledger_model.set_rows(ledger)
        self.chart.set_points(chart_points(state))
        self.proposals_model.set_rows(state.get("proposals") or [])
        self.state_loaded.emit(state)

    def _show_runs(self, first: int) -> None:
        parts = [f"runs 1 to {first - 1} not shown"] if first > 1 else []
        for number, run_id in enumerate(self._run_ids, start=first):
            url = self.run_url(run_id)
            text = f"run {number} ({short_run(run_id)})"
            parts.append(f'<a href="{url}">{text}</a>' if url else text)
        self.runs_label.setText(" · ".join(parts) if parts else "No runs")
        if not self._session.ui_url:
            self.runs_label.setToolTip("This server has no Web UI the app knows of")

    # -- actions ------------------------------------------------------------------------

    @async_slot(title="Could not send the event")
    async def send_event(self) -> None:
        client = self._session.client
        if client is None:
            raise RuntimeError("not connected to Temporal yet")
        raw = self.test_event()
        handle = client.get_workflow_handle(self.workflow_id)
        self.send_button.setEnabled(False)
        try:
            await handle.signal(SIGNAL_EVENT, raw)
            state: dict[str, Any] = await handle.execute_update(UPDATE_SYNC)
        finally:
            self.send_button.setEnabled(True)
        log.info("sent test event %s to %s", raw["event_id"], self.member_id)
        self.status.setText(f"Sent {raw['type']} {raw['event_id']}; balance {state['points']:,}")
        await self.refresh()

    def test_event(self) -> dict[str, Any]:
        """The event the form describes, with a fresh id and the current time."""
        kind = self.event_type.currentText()
        raw: dict[str, Any] = {
            "type": kind,
            "event_id": f"{self.member_id}-desk-{uuid.uuid4().hex[:10]}",
            "member_id": self.member_id,
            "occurred_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        }
        if kind in AMOUNT_FIELD:
            raw[AMOUNT_FIELD[kind]] = round(self.event_amount.value() * 100)
        else:
            raw["text"] = self.event_text.text()
        return raw

    @async_slot(title="Adjustment refused")
    async def adjust(self) -> None:
        await preload.ready(MEMBER_MODULE, "runtime.adjustments")
        from runtime.adjustments import AdjustmentRefused, adjust

        client = self._session.client
        if client is None:
            raise RuntimeError("not connected to Temporal yet")
        points, reason = self.adjust_points.value(), self.adjust_reason.text().strip()
        self.adjust_button.setEnabled(False)
        try:
            # sent and audited by the operation the CLI and scripts share
            result = await adjust(
                client, self._session.target, self.member_id, points, reason=reason
            )
        except AdjustmentRefused as error:
            log.warning("adjustment of %s refused: %s", self.member_id, error)
            self.status.setText(f"Adjustment refused: {error}")
            show_error(self.window(), "Adjustment refused", str(error))
            return
        finally:
            self.adjust_button.setEnabled(True)
        log.info("adjusted %s by %+d: %s", self.member_id, points, reason)
        self.status.setText(
            f"Adjustment applied: ledger #{result.ledger_seq}, balance {result.points:,}"
        )
        self.adjust_reason.clear()
        await self.refresh()

    def _ask(self, question: str) -> bool:
        answer = QMessageBox.question(self.window(), "Loyalty Desk", question)
        return answer == QMessageBox.StandardButton.Yes

    @async_slot(title="Redemption refused")
    async def redeem(self) -> None:
        await preload.ready(MEMBER_MODULE, "runtime.rewards")
        from runtime.rewards import RedemptionRefused, redeem

        client = self._session.client
        if client is None:
            raise RuntimeError("not connected to Temporal yet")
        reward_id, reason = self.reward.currentData(), self.redeem_reason.text().strip()
        if not reason:
            self.status.setText("Redemption refused: a reason is required")
            return
        if not self.confirm(f"Redeem {self.reward.currentText()} for {self.member_id}?"):
            return
        self.redeem_button.setEnabled(False)
        try:
            result = await redeem(
                client, self._session.target, self.member_id, reward_id, reason=reason
            )
        except RedemptionRefused as error:
            self.status.setText(f"Redemption refused: {error}")
            show_error(self.window(), "Redemption refused", str(error))
            return
        finally:
            self.redeem_button.setEnabled(True)
        record = result.redemption
        self.status.setText(
            f"Redeemed {record['name']} ({record['request_id']}), balance {result.points:,}"
        )
        self.cancel_request.setText(record["request_id"])
        self.redeem_reason.clear()
        await self.refresh()

    @async_slot(title="Cancellation refused")
    async def cancel_redemption(self) -> None:
        await preload.ready(MEMBER_MODULE, "runtime.rewards")
        from runtime.rewards import RedemptionRefused, cancel

        client = self._session.client
        if client is None:
            raise RuntimeError("not connected to Temporal yet")
        request_id, reason = self.cancel_request.text().strip(), self.redeem_reason.text().strip()
        if not request_id or not reason:
            self.status.setText("Cancellation refused: a request id and a reason are required")
            return
        if not self.confirm(f"Cancel redemption {request_id} and return its points?"):
            return
        try:
            result = await cancel(
                client, self._session.target, self.member_id, request_id, reason=reason
            )
        except RedemptionRefused as error:
            self.status.setText(f"Cancellation refused: {error}")
            show_error(self.window(), "Cancellation refused", str(error))
            return
        self.status.setText(
            f"Cancelled {request_id}: {result.redemption['returned']:,} pts returned, "
            f"balance {result.points:,}"
        )
        self.redeem_reason.clear()
        await self.refresh()

    # -- slots ----------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:
        self.stop()
        super().closeEvent(event)

    def _on_timer_timeout(self) -> None:
        try:
            asyncio.get_event_loop()
        except RuntimeError:  # the app's loop has ended: nothing refreshes any more
            self._timer.stop()
            return
        if self.isVisible():
            self.refresh()

    def _on_event_type_current_text_changed(self, kind: str) -> None:
        self.event_amount.setEnabled(kind in AMOUNT_FIELD)
        self.event_text.setEnabled(kind not in AMOUNT_FIELD)

    def _on_send_button_clicked(self) -> None:
        self.send_event()

    def _on_adjust_button_clicked(self) -> None:
        self.adjust()

    def _on_redeem_button_clicked(self) -> None:
        self.redeem()

    def _on_cancel_button_clicked(self) -> None:
        self.cancel_redemption()

    def _on_runs_label_link_activated(self, link: str) -> None:
        if self._open_url(QUrl(link)) is False:
            self.status.setText(f"Could not open a browser; the run is at {link}")


def _table(
    model: Any, parent: QWidget, name: str, *, stretch: int, widths: tuple[int, ...]
) -> QTableView:
    table = QTableView(parent)
    table.setObjectName(name)
    table.setModel(model)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setAlternatingRowColors(True)
    table.setWordWrap(False)
    table.verticalHeader().hide()
    table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 8)
    header = table.horizontalHeader()
    # fixed widths: a long timeline must not be measured row by row (ResizeToContents)
    header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    header.setSectionResizeMode(stretch, QHeaderView.ResizeMode.Stretch)
    for column, width in enumerate(widths):
        if column != stretch:
            table.setColumnWidth(column, width)
    return table
