"""The ways an operator changes one member, beside its detail: send a test event, apply a
manual adjustment, redeem a reward or cancel a redemption. Each goes through the
operation the CLI shares (runtime.adjustments, runtime.rewards) and says what happened
in one line; the detail window then shows the member as it is now."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QGroupBox,
    QMessageBox,
    QSpinBox,
    QWidget,
)

import resources
from desktop import preload
from desktop.asyncutil import async_slot, show_error
from desktop.layouts import button, choices, form, line_edit, vbox
from workflows.contract import AMOUNT_FIELD, SIGNAL_EVENT, UPDATE_SYNC, member_workflow_id

if TYPE_CHECKING:
    from desktop.session import Session

log = logging.getLogger(__name__)

# imports the Agents SDK (~1.5 s): only an adjustment or a redemption needs it; a test
# event goes by the contract's names (workflows.contract)
MEMBER_MODULE = "workflows.member"
# the event types a person can send from the form (a refund needs the id it refers to)
EVENT_TYPES = ("purchase", "trip_completed", "support_ticket")


class MemberActions(QWidget):
    """Test event, adjustment and redemption boxes for one member: `say(text)` shows the
    one line that tells what an action did or why it was refused; `refresh()` is
    awaited once an action went through."""

    def __init__(
        self,
        *,
        member_id: str,
        session: Session,
        say: Callable[[str], None],
        refresh: Callable[[], Awaitable[Any]],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.member_id = member_id
        self._session = session
        self._say = say
        self._refresh = refresh
        # asks the person to confirm (tests replace it): the question -> go ahead
        self.confirm: Callable[[str], bool] = self._ask

        self.event_type = QComboBox(self)
        self.event_type.addItems(EVENT_TYPES)
        self.event_amount = QDoubleSpinBox(self)
        self.event_amount.setRange(0.01, 50_000.0)
        self.event_amount.setPrefix("$")
        self.event_amount.setValue(25.0)
        self.event_text = line_edit(self, "Ticket text")
        self.event_text.setEnabled(False)
        self.send_button = button("Send event", self, "sendEventButton")
        event_box = QGroupBox("Send a test event", self)
        form(
            event_box,
            ("Type", self.event_type),
            ("Amount", self.event_amount),
            ("Text", self.event_text),
            self.send_button,
        )

        self.adjust_points = QSpinBox(self)
        self.adjust_points.setRange(-1_000_000, 1_000_000)
        self.adjust_points.setValue(100)
        self.adjust_reason = line_edit(self, "Why (required)")
        self.adjust_button = button("Apply adjustment", self, "adjustButton")
        adjust_box = QGroupBox("Manual adjustment", self)
        form(
            adjust_box,
            ("Points", self.adjust_points),
            ("Reason", self.adjust_reason),
            self.adjust_button,
        )

        # the catalogue itself (runtime.rewards imports the member workflow: preloaded)
        rewards = sorted(resources.rewards().values(), key=lambda r: (r["cost"], r["id"]))
        self.reward = choices(
            self, [(f"{r['name']}: {r['cost']:,} pts ({r['min_tier']}+)", r["id"]) for r in rewards]
        )
        self.redeem_reason = line_edit(self, "Why (required)")
        self.redeem_button = button("Redeem…", self, "redeemButton")
        self.cancel_request = line_edit(self, "Request id (see Timeline)")
        self.cancel_button = button("Cancel redemption…", self, "cancelRedemptionButton")
        redeem_box = QGroupBox("Redemption", self)
        form(
            redeem_box,
            ("Reward", self.reward),
            ("Reason", self.redeem_reason),
            self.redeem_button,
            ("Request", self.cancel_request),
            self.cancel_button,
        )
        vbox(self, event_box, adjust_box, redeem_box).setContentsMargins(0, 0, 0, 0)

        self.event_type.currentTextChanged.connect(self._on_event_type_current_text_changed)
        self.send_button.clicked.connect(self._on_send_button_clicked)
        self.adjust_button.clicked.connect(self._on_adjust_button_clicked)
        self.redeem_button.clicked.connect(self._on_redeem_button_clicked)
        self.cancel_button.clicked.connect(self._on_cancel_button_clicked)

    @async_slot(title="Could not send the event")
    async def send_event(self) -> None:
        client = self._session.connected_client()
        raw = self.test_event()
        handle = client.get_workflow_handle(member_workflow_id(self.member_id))
        self.send_button.setEnabled(False)
        try:
            await handle.signal(SIGNAL_EVENT, raw)
            state: dict[str, Any] = await handle.execute_update(UPDATE_SYNC)
        finally:
            self.send_button.setEnabled(True)
        log.info("sent test event %s to %s", raw["event_id"], self.member_id)
        self._say(f"Sent {raw['type']} {raw['event_id']}; balance {state['points']:,}")
        await self._refresh()

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

        client = self._session.connected_client()
        points, reason = self.adjust_points.value(), self.adjust_reason.text().strip()
        self.adjust_button.setEnabled(False)
        try:
            # sent and audited by the operation the CLI and scripts share
            result = await adjust(
                client, self._session.target, self.member_id, points, reason=reason
            )
        except AdjustmentRefused as error:
            log.warning("adjustment of %s refused: %s", self.member_id, error)
            self._say(f"Adjustment refused: {error}")
            show_error(self.window(), "Adjustment refused", str(error))
            return
        finally:
            self.adjust_button.setEnabled(True)
        log.info("adjusted %s by %+d: %s", self.member_id, points, reason)
        self._say(f"Adjustment applied: ledger #{result.ledger_seq}, balance {result.points:,}")
        self.adjust_reason.clear()
        await self._refresh()

    def _ask(self, question: str) -> bool:
        answer = QMessageBox.question(self.window(), "Loyalty Desk", question)
        return answer == QMessageBox.StandardButton.Yes

    @async_slot(title="Redemption refused")
    async def redeem(self) -> None:
        await preload.ready(MEMBER_MODULE, "runtime.rewards")
        from runtime.rewards import RedemptionRefused, redeem

        client = self._session.connected_client()
        reward_id, reason = self.reward.currentData(), self.redeem_reason.text().strip()
        if not reason:
            self._say("Redemption refused: a reason is required")
            return
        if not self.confirm(f"Redeem {self.reward.currentText()} for {self.member_id}?"):
            return
        self.redeem_button.setEnabled(False)
        try:
            result = await redeem(
                client, self._session.target, self.member_id, reward_id, reason=reason
            )
        except RedemptionRefused as error:
            self._say(f"Redemption refused: {error}")
            show_error(self.window(), "Redemption refused", str(error))
            return
        finally:
            self.redeem_button.setEnabled(True)
        record = result.redemption
        self._say(f"Redeemed {record['name']} ({record['request_id']}), balance {result.points:,}")
        self.cancel_request.setText(record["request_id"])
        self.redeem_reason.clear()
        await self._refresh()

    @async_slot(title="Cancellation refused")
    async def cancel_redemption(self) -> None:
        await preload.ready(MEMBER_MODULE, "runtime.rewards")
        from runtime.rewards import RedemptionRefused, cancel

        client = self._session.connected_client()
        request_id, reason = self.cancel_request.text().strip(), self.redeem_reason.text().strip()
        if not request_id or not reason:
            self._say("Cancellation refused: a request id and a reason are required")
            return
        if not self.confirm(f"Cancel redemption {request_id} and return its points?"):
            return
        try:
            result = await cancel(
                client, self._session.target, self.member_id, request_id, reason=reason
            )
        except RedemptionRefused as error:
            self._say(f"Cancellation refused: {error}")
            show_error(self.window(), "Cancellation refused", str(error))
            return
        self._say(
            f"Cancelled {request_id}: {result.redemption['returned']:,} pts returned, "
            f"balance {result.points:,}"
        )
        self.redeem_reason.clear()
        await self._refresh()

    # -- slots ----------------------------------------------------------------------------

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
