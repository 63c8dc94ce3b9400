"""One member up close: state, ledger, chart, timeline, and the ways to change it
(desktop.member_actions).

A window of its own, opened from the members table. It asks the member's workflow
for its state every two seconds while shown, and reads the histories of its runs
(for the timeline) only when the state says something happened.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QCloseEvent, QDesktopServices
from PySide6.QtWidgets import (
    QGridLayout,
    QGroupBox,
    QLabel,
    QWidget,
)

from desktop import theme
from desktop.asyncutil import async_slot, cancel_slot_tasks, one_line
from desktop.effects_panel import EffectsPanel
from desktop.layouts import hbox, label, split, tabbed, ticker, vbox
from desktop.member_actions import MemberActions
from desktop.member_detail_chart import PointsChart
from desktop.member_detail_models import LedgerModel, ProposalsModel, TimelineModel
from desktop.member_detail_text import chart_points, short_run, state_signature, state_text
from desktop.tables import fixed_table
from desktop.units import utc_time_text
from recovery.runs import kept_note
from workflows.contract import QUERY_STATE, member_workflow_id

if TYPE_CHECKING:
    from temporalio.client import WorkflowHistory

    from desktop.session import Session

log = logging.getLogger(__name__)

REFRESH_INTERVAL_MS = 2000
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
        self.ledger_table = fixed_table(
            self.ledger_model, self, "ledgerTable", stretch=3, widths=(50, 150, 90, 0, 80, 90, 90)
        )
        self.chart = PointsChart(parent=self)
        self.chart.setObjectName("pointsChart")
        self.timeline_model = TimelineModel(parent=self)
        self.timeline_table = fixed_table(
            self.timeline_model, self, "timelineTable", stretch=2, widths=(150, 90, 0, 90, 90)
        )
        self.proposals_model = ProposalsModel(parent=self)
        self.proposals_table = fixed_table(
            self.proposals_model,
            self,
            "proposalsTable",
            stretch=6,
            widths=(140, 115, 160, 75, 125, 65, 0),
        )
        self.tabs = tabbed(
            self,
            (self.ledger_table, "Ledger"),
            (self.chart, "Points over time"),
            (self.timeline_table, "Timeline"),
            (self.proposals_table, "Proposals"),
        )
        self.effects = EffectsPanel(session=session, member=member_id, parent=self)
        self.tabs.addTab(self.effects, "Effects")

        # the ways to change the member: a test event, an adjustment, a redemption
        self.controls = MemberActions(
            member_id=member_id, session=session, say=self._say, refresh=self.refresh, parent=self
        )

        self.runs_label = label(self, "runLinks", "…", wrap=True)
        self.runs_label.setTextFormat(Qt.TextFormat.RichText)
        runs_box = QGroupBox("Runs in the Temporal Web UI", self)
        vbox(runs_box, self.runs_label)

        side = QWidget(self)
        vbox(side, self.controls, runs_box, 1).setContentsMargins(0, 0, 0, 0)
        splitter = split(self, Qt.Orientation.Horizontal, (self.tabs, 1), side)
        splitter.setSizes([820, 280])

        self.status = label(self, "detailStatus", wrap=True)
        # shown only when the member's workflow is closed (terminated, failed)
        self.closed_label = label(self, "closedLabel", wrap=True)
        theme.set_tone(self.closed_label, "bad")
        self.closed_label.hide()
        vbox(self, hbox(self.title, 1), self.closed_label, grid, (splitter, 1), self.status)

        self._timer = ticker(self, REFRESH_INTERVAL_MS, self._on_timer_timeout)
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
        await self._show_closed(client, described)
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

    async def _show_closed(self, client: Any, described: Any) -> None:
        """Say so when the member's workflow is not running: its state is the last it had,
        and nothing sent to it is applied (the feed refuses its events) until a reset."""
        from temporalio.client import WorkflowExecutionStatus

        from runtime.members import closed_how

        running = described.status == WorkflowExecutionStatus.RUNNING
        self.controls.setEnabled(running)  # events, adjustments, redemptions: refused
        if running:
            self.closed_label.hide()
            return
        if self.closed_label.isHidden():  # how it ended does not change: read once
            how = await closed_how(client, self.member_id)
            self.closed_label.setText(
                f"Not running: this member's workflow is {how}. It takes no events until "
                "it is repaired (reset); what is shown is its state when it ended."
            )
            self.closed_label.show()

    async def _load_timeline(self, state: dict[str, Any], current_run: str) -> None:
        from desktop.member_detail_timeline import TimelineBuilder, fetch_chain

        client = self._session.client
        assert client is not None
        chain = await fetch_chain(client, self.workflow_id, current_run, self._histories)
        runs = chain.runs
        total = len(runs) if chain.complete else max(len(runs), int(state.get("runs") or 0))
        first = total - len(runs) + 1
        builder = TimelineBuilder(first_number=first)
        for run_id, history in runs:
            builder.add_run(run_id, history)
            # a run holds up to 500 signals to decode: the loop runs between runs
            # (a thread would not do: Python could collect Qt objects on it)
            await asyncio.sleep(0)
        self.timeline_model.set_rows(builder.rows(state.get("proposals") or []))
        self._run_ids = [run_id for run_id, _ in runs]
        self._show_runs(first, chain.kept_from)
        self.timeline_loaded.emit()

    def _show_state(self, state: dict[str, Any]) -> None:
        self.state = state
        pending = sum(1 for p in state.get("proposals") or [] if p.get("status") == "pending")
        values = {**state, "pending": pending}
        for key, shown in self.state_labels.items():
            shown.setText(state_text(key, values.get(key), state))
            if key == "last_event_at":
                shown.setToolTip(utc_time_text(values.get(key)))
        ledger = state.get("ledger") or []
        self.ledger_model.set_rows(ledger)
        self.chart.set_points(chart_points(state))
        self.proposals_model.set_rows(state.get("proposals") or [])
        self.state_loaded.emit(state)

    def _show_runs(self, first: int, kept_from: datetime | None = None) -> None:
        if kept_from is not None:  # the server no longer keeps the earlier runs
            parts = [kept_note(kept_from, "shown")]
        else:
            parts = [f"runs 1 to {first - 1} not shown"] if first > 1 else []
        for number, run_id in enumerate(self._run_ids, start=first):
            url = self.run_url(run_id)
            text = f"run {number} ({short_run(run_id)})"
            parts.append(f'<a href="{url}">{text}</a>' if url else text)
        self.runs_label.setText(" · ".join(parts) if parts else "No runs")
        if not self._session.ui_url:
            self.runs_label.setToolTip("This server has no Web UI the app knows of")

    def _say(self, text: str) -> None:
        self.status.setText(text)

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

    def _on_runs_label_link_activated(self, link: str) -> None:
        if self._open_url(QUrl(link)) is False:
            self.status.setText(f"Could not open a browser; the run is at {link}")
