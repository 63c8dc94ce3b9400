"""The approvals panel against a real server and worker (offline agent model): the queue
across members, filters, a decision that changes the member and the queue, a refusal
shown with its reason, a bulk decision by policy with its confirmation, and keyboard
triage."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import qasync
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from desktop.approvals_model import ApprovalsFilterModel, ApprovalsModel, QueueFilter
from desktop.approvals_panel import ApprovalsPanel
from desktop.asyncutil import wait_until
from desktop.proposal_view import ProposalView
from desktop.session import Session
from runtime import approvals
from runtime.bulk_decisions import start_bulk
from runtime.connect import connect
from tests.conftest import Deployment, eventually
from tests.kit.desk import (
    TIMEOUT_S,
    cells,
    desk_session,
    open_queue,
    points,
    row_of,
    screenshot,
    unique,
)
from workflows.member import MemberWorkflow, member_workflow_id

pytestmark = pytest.mark.slow


def results(panel: ApprovalsPanel) -> list[str]:
    return [panel.results.item(i).text() for i in range(panel.results.count())]


def test_an_approval_from_the_queue_changes_the_member_and_the_queue(
    qloop: qasync.QEventLoop, qtbot: Any, deployment: Deployment
) -> None:
    posted: list[str] = []

    async def scenario() -> None:
        async with desk_session(deployment) as session:
            pia, quinn = unique("pia"), unique("quinn")
            panel = await open_queue(qtbot, session, deployment, [pia, quinn])
            panel.status_posted.connect(posted.append)
            pending: list[int] = []
            panel.pending_changed.connect(pending.append)
            assert panel.count_label.text() == "4 pending"
            assert (
                sorted(cells(panel.model, "action"))
                == ["grant_points", "grant_points"] + ["message_member"] * 2
            )
            grant = panel.model.rows[row_of(panel, f"{pia}:{pia}-k1:0")]
            assert (grant["member_tier"], grant["model"]) == ("Blue", "offline rules model")
            assert grant["tokens"] > 0
            assert cells(panel.model, "what")[0] == "100 points"
            assert all(c.endswith(" USD") for c in cells(panel.model, "cost_usd"))

            # filters: action, tier, amount
            panel.filters.action_filter.setCurrentText("grant_points")
            assert panel.proxy.rowCount() == 2 and panel.count_label.text() == "4 pending · 2 shown"
            panel.filters.min_points.setValue(200)
            assert panel.proxy.rowCount() == 0
            panel.filters.min_points.setValue(0)
            panel.filters.tier_filter.setCurrentText("Gold")
            assert panel.proxy.rowCount() == 0
            panel.filters.tier_filter.setCurrentText("Blue")
            assert panel.proxy.rowCount() == 2
            panel.filters.min_age_hours.setValue(1)  # proposed seconds ago
            assert panel.proxy.rowCount() == 0
            panel.filters.min_age_hours.setValue(0)
            panel.filters.action_filter.setCurrentText("Any")
            panel.filters.tier_filter.setCurrentText("Any")
            assert panel.proxy.rowCount() == 4
            screenshot(panel, "approvals")

            # no reason: nothing is decided, and the panel says why
            panel.select_row(row_of(panel, f"{pia}:{pia}-k1:0"))
            await panel.decide_current(True)
            assert posted[-1] == "Type a reason first: every decision needs one"
            assert await points(session, pia) == 100

            panel.reason.setText("double charge confirmed")
            panel.approve_button.click()
            await wait_until(lambda: panel.results.count() == 1, timeout=TIMEOUT_S)
            # the member and what was decided, in words; the proposal's id on hover
            assert results(panel) == [
                f"✓ {pia}: grant_points 100 points — approved: 100 points granted (ledger #2)"
            ]
            assert panel.results.item(0).toolTip().startswith(f"{pia}:{pia}-k1:0\n")
            assert pending[-1] == 3  # the tab's count follows the decision
            assert posted[-1] == f"{pia}: grant_points — approved: 100 points granted (ledger #2)"
            assert await points(session, pia) == 200
            assert f"{pia}:{pia}-k1:0" not in [r["id"] for r in panel.model.rows]
            assert panel.model.rowCount() == 3
            # the next proposal is current, ready for the next decision
            assert panel.current_proposal() is not None
            await panel.refresh()
            assert panel.model.rowCount() == 3  # the server agrees

            # decided elsewhere meanwhile: the refusal is shown with its reason
            assert session.client is not None
            shown = next(r for r in panel.model.rows if r["id"] == f"{quinn}:{quinn}-k1:1")
            await approvals.decide(
                session.client,
                shown["id"],
                digest=approvals.shown_digest(shown),
                approve=False,
                reason="no",
                actor="ops-bo",
            )
            panel.select_row(row_of(panel, f"{quinn}:{quinn}-k1:1"))
            await panel.decide_current(True)
            assert results(panel)[0].startswith(f"✗ could not approve {quinn}'s message_member: ")
            assert " was already rejected by ops-bo" in results(panel)[0]
            assert posted[-1] == results(panel)[0][2:]
            # and the stale row leaves the queue
            await wait_until(
                lambda: f"{quinn}:{quinn}-k1:1" not in [r["id"] for r in panel.model.rows],
                timeout=TIMEOUT_S,
            )
            screenshot(panel, "approvals-decided")
            await _stop(panel)

    qloop.run_until_complete(scenario())


def test_bulk_decision_by_policy_counts_asks_and_decides(
    qloop: qasync.QEventLoop, qtbot: Any, deployment: Deployment
) -> None:
    async def scenario() -> None:
        async with desk_session(deployment) as session:
            rae, sam = unique("rae"), unique("sam")
            panel = await open_queue(qtbot, session, deployment, [rae, sam])
            panel.reason.setText("goodwill for the outage")

            panel.policy.setText("colour=red")
            await panel.decide_by_policy(True)
            box = panel.window().findChild(QMessageBox, "errorDialog")
            assert box is not None and box.isVisible()
            assert box.text().startswith("unknown policy key 'colour'; known: action,")
            box.close()

            panel.policy.setText("action=grant_points,max_points=500")
            task = panel.decide_by_policy(True)
            await wait_until(lambda: panel.confirm_box is not None, timeout=TIMEOUT_S)
            confirm = panel.confirm_box
            assert confirm is not None
            assert confirm.text() == (
                "Approve 2 pending proposal(s) matching action=grant_points,max_points=500?"
            )
            assert confirm.informativeText() == "Reason: goodwill for the outage"
            screenshot(confirm, "approvals-bulk-confirm")
            confirm.button(QMessageBox.StandardButton.Cancel).click()
            await task
            assert results(panel) == []
            assert [await points(session, m) for m in (rae, sam)] == [100, 100]

            task = panel.decide_by_policy(True)
            await wait_until(lambda: panel.confirm_box is not None, timeout=TIMEOUT_S)
            assert panel.confirm_box is not None
            panel.confirm_box.button(QMessageBox.StandardButton.Yes).click()
            await task
            assert results(panel) == [
                "✓ policy action=grant_points,max_points=500: 2 of 2 approved, 0 failed"
            ]
            assert [await points(session, m) for m in (rae, sam)] == [200, 200]
            assert cells(panel.model, "action") == ["message_member", "message_member"]
            assert session.client is not None
            state = await session.client.get_workflow_handle(member_workflow_id(rae)).query(
                MemberWorkflow.state
            )
            grant = next(p for p in state["proposals"] if p["action"] == "grant_points")
            assert grant["policy"] == "action=grant_points,max_points=500"
            assert grant["decision_reason"] == "goodwill for the outage"
            await _stop(panel)

    qloop.run_until_complete(scenario())


def test_keyboard_triage_approves_moves_on_and_rejects(
    qloop: qasync.QEventLoop, qtbot: Any, deployment: Deployment
) -> None:
    posted: list[str] = []

    async def scenario() -> None:
        async with desk_session(deployment) as session:
            panel = await open_queue(qtbot, session, deployment, [unique("uma"), unique("vic")])
            panel.status_posted.connect(posted.append)
            order = [r["id"] for r in panel.model.rows]
            first_member = order[0].split(":")[0]
            second_member = order[2].split(":")[0]
            assert [i.rsplit(":", 1)[1] for i in order] == ["0", "1", "0", "1"]
            panel.table.setFocus()
            panel.select_row(0)

            qtbot.keyClick(panel.table, Qt.Key.Key_A)  # no reason typed yet
            await asyncio.sleep(0.1)
            assert posted[-1] == "Type a reason first: every decision needs one"
            assert panel.model.rowCount() == 4

            panel.reason.setText("triaged")
            panel.table.setFocus()
            qtbot.keyClick(panel.table, Qt.Key.Key_A)
            qtbot.keyClick(panel.table, Qt.Key.Key_A)  # while the first is under way: ignored
            await wait_until(lambda: panel.results.count() == 1, timeout=TIMEOUT_S)
            await asyncio.sleep(0.5)
            assert panel.results.count() == 1
            assert results(panel)[0].startswith(
                f"✓ {first_member}: grant_points 100 points — approved"
            )
            assert panel.current_proposal() == panel.model.rows[0]
            assert panel.model.rows[0]["id"] == order[1]
            qtbot.keyClick(panel.table, Qt.Key.Key_N)
            assert panel.current_proposal() is not None
            assert panel.current_proposal()["id"] == order[2]  # type: ignore[index]
            qtbot.keyClick(panel.table, Qt.Key.Key_R)
            await wait_until(lambda: panel.results.count() == 2, timeout=TIMEOUT_S)
            assert results(panel)[0].startswith(
                f"✓ {second_member}: grant_points 100 points — rejected"
            )
            assert [r["id"] for r in panel.model.rows] == [order[1], order[3]]
            assert panel.current_proposal()["id"] == order[3]  # type: ignore[index]
            assert await points(session, first_member) == 200
            assert await points(session, second_member) == 100
            await _stop(panel)

    qloop.run_until_complete(scenario())


def test_approvals_models_pass_the_model_tester(qtmodeltester: Any) -> None:
    now = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    model = ApprovalsModel(now=lambda: now)

    def proposal(pid: str, action: str, args: dict[str, Any], tier: str, hours: int) -> Any:
        return {
            "id": pid,
            "member_id": pid.split(":")[0],
            "member_tier": tier,
            "action": action,
            "arguments": args,
            "reason": "r",
            "model": "offline rules model",
            "tokens": 120,
            "cost_usd": 0.0012,
            "status": "pending",
            "created_at": (now - timedelta(hours=hours)).isoformat().replace("+00:00", "Z"),
        }

    rows = [
        proposal("a:k1:0", "grant_points", {"points": 100}, "Blue", 1),
        proposal("a:k1:1", "message_member", {"text": "sorry"}, "Blue", 1),
        proposal("b:k2:0", "grant_points", {"points": 900}, "Gold", 30),
    ]
    model.set_rows(rows)
    qtmodeltester.check(model)
    assert cells(model, "age") == ["1 h", "1 h", "1 day 6 h"]
    assert cells(model, "cost_usd")[0] == "0.0012 USD"
    proxy = ApprovalsFilterModel(source=model)
    qtmodeltester.check(proxy)
    proxy.set_filter(QueueFilter(action="grant_points", max_points=500))
    assert proxy.rowCount() == 1
    proxy.set_filter(QueueFilter(min_age=timedelta(hours=24), tier="Gold"))
    assert proxy.rowCount() == 1
    qtmodeltester.check(proxy)
    model.set_rows(rows[1:])
    assert proxy.rowCount() == 1


def test_the_selected_proposal_reads_whole_with_its_member_and_earlier_decisions(
    qloop: qasync.QEventLoop, qtbot: Any, deployment: Deployment
) -> None:
    """Before deciding, the person reads the proposal whole (arguments, the agent's
    reason, the ticket that triggered it), the member's tier and balance, and what was
    decided for this member before; a member that does not answer is said so."""

    async def scenario() -> None:
        async with desk_session(deployment) as session:
            wes = unique("wes")
            panel = await open_queue(qtbot, session, deployment, [wes])
            view = panel.proposal_view
            grant_id, message_id = f"{wes}:{wes}-k1:0", f"{wes}:{wes}-k1:1"
            grant = panel.model.rows[row_of(panel, grant_id)]
            panel.select_row(row_of(panel, grant_id))
            # at once, from the queue's row: the proposal itself, the member still read
            assert view.proposal_id == grant_id
            assert "points: 100" in view.plain_text()
            assert "reading the member…" in view.plain_text()
            await wait_until(lambda: "balance" in view.plain_text(), timeout=TIMEOUT_S)
            text = view.plain_text()
            assert "Tier Blue · balance 100 points" in text
            assert f"Agent's reason: {grant['reason']}" in " ".join(text.split())
            assert f"Triggered by the support_ticket {wes}-k1" in text
            assert "No earlier decisions for this member." in text
            assert not view.member_status.isVisible()

            # decided elsewhere: the other proposal shows it, with who, when and why
            assert session.client is not None
            await approvals.decide(
                session.client,
                grant_id,
                digest=approvals.shown_digest(grant),
                approve=True,
                reason="double charge seen",
                actor="ops-di",
            )
            message = panel.model.rows[row_of(panel, message_id)]
            panel.select_row(row_of(panel, message_id))
            await wait_until(lambda: "Earlier decisions" in view.plain_text(), timeout=TIMEOUT_S)
            text = view.plain_text()
            # the message whole, never elided, as the member will read it
            assert message["arguments"]["text"] in text
            assert "balance 200 points" in text
            history = text.split("Earlier decisions", 1)[1]
            assert "grant_points points=100" in history
            assert "approved" in history and "ops-di" in history
            assert "double charge seen" in history
            panel.resize(1400, 640)
            screenshot(panel, "approvals-proposal")
            await _stop(panel)

        # the worker is gone: the member cannot answer, the proposal stays readable
        client = await connect(deployment.target)
        lone = Session(target=deployment.target, start_worker=False)
        lone.client = client
        view = ProposalView(session=lone)
        qtbot.addWidget(view)
        view.show()
        reading = view.show_proposal(message)
        assert reading is not None
        await asyncio.wait_for(reading, 30)
        assert view.member_status.isVisible()
        assert view.member_status.text().startswith(f"member {wes} did not answer (")
        assert "is a worker running?" in view.member_status.text()
        assert message["arguments"]["text"] in view.plain_text()
        assert "The member did not answer" in view.plain_text()
        waits = view.stop()
        if waits:
            await asyncio.wait(waits, timeout=5)

    qloop.run_until_complete(scenario())


def test_the_proposal_view_shows_the_trigger_detail_and_digest_when_recorded(
    qloop: qasync.QEventLoop, qtbot: Any, deployment: Deployment
) -> None:
    """Records with the ticket's text and the content digest show them; without a
    connection the view says the member is not read, and the proposal still shows."""
    session = Session(target=deployment.target, start_worker=False)
    view = ProposalView(session=session)
    qtbot.addWidget(view)
    view.show()
    long_text = "Dear member, " + "we are sorry for the double charge. " * 20 + "END"
    row = {
        "id": "xia:xia-k4:1",
        "member_id": "xia",
        "member_tier": "Gold",
        "action": "message_member",
        "arguments": {"text": long_text},
        "reason": "the ticket <b>asks</b> for an apology",
        "status": "pending",
        "trigger": {
            "kind": "support_ticket",
            "key": "xia-k4",
            "event_id": "xia-k4",
            "detail": "I was charged twice & want it back",
        },
        "digest": "0123456789abcdef0123",
        "created_at": "2026-03-02T12:04:00Z",
    }

    async def scenario() -> None:
        reading = view.show_proposal(row)
        assert reading is not None
        await reading
        text = view.plain_text()
        assert long_text in " ".join(text.split())  # whole, and never read as markup
        assert "the ticket <b>asks</b> for an apology" in text
        assert "I was charged twice & want it back" in text
        assert "Content digest 0123456789abcdef0123" in text
        assert view.member_status.text() == (
            "Not connected to Temporal yet: the member is not read"
        )
        view.show_proposal(None)
        assert view.plain_text() == "" and not view.member_status.isVisible()

    qloop.run_until_complete(scenario())


async def _stop(panel: ApprovalsPanel) -> None:
    waits = panel.stop()
    if waits:
        await asyncio.wait(waits, timeout=10)


def test_a_bulk_decision_under_way_shows_in_the_count_line(
    qloop: qasync.QEventLoop, qtbot: Any, deployment: Deployment
) -> None:
    """A policy decision the app started before it was closed, with no worker to go on:
    the reopened panel says it waits, and for what."""

    async def scenario() -> None:
        target = deployment.target
        target.data_dir.mkdir(parents=True, exist_ok=True)
        client = await connect(target)
        report = approvals.BulkReport(
            "action=grant_points", True, matched=1, chosen=[{"id": "nobody:t1:0", "digest": "d"}]
        )
        (handle,) = await start_bulk(
            client, report, reason="r", actor="tester", task_queue=target.task_queue, unreachable=[]
        )
        try:
            session = Session(target=target, start_worker=False)
            session.client = client
            panel = ApprovalsPanel(session=session)
            qtbot.addWidget(panel)
            panel.resize(1200, 560)
            panel.show()

            async def listed() -> bool:  # visibility lists it a moment after it started
                await panel.refresh()
                return "bulk:" in panel.count_label.text()

            await eventually(listed, timeout=30)
            assert panel.count_label.text() == (
                "0 pending · bulk: approve 'action=grant_points': 1 to decide, "
                "waiting for a worker (by tester)"
            )
            screenshot(panel, "approvals-bulk-waiting")
        finally:
            await handle.terminate()

    qloop.run_until_complete(scenario())
