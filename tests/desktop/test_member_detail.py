"""The member detail window against a real server and worker: fed events show up in the
ledger, chart and timeline (across continue-as-new runs), test events and manual
adjustments change the member, and a refused adjustment says why."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
import qasync
from PySide6.QtCore import QItemSelectionModel, QUrl
from PySide6.QtWidgets import QMessageBox
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest

from desktop.asyncutil import wait_until
from desktop.member_detail import MemberDetail
from desktop.member_detail_models import LedgerModel, ProposalsModel, TimelineModel
from desktop.member_detail_text import short_run
from desktop.member_detail_timeline import fetch_chain
from desktop.session import Session
from runtime import audit_log
from runtime.feed import send_member, wait_applied
from tests.conftest import Deployment
from tests.kit.desk import TIMEOUT_S, UI, cells, desk_session, screenshot, unique
from tests.memberkit import start_member, trip
from workflows.member import MemberWorkflow, member_workflow_id

pytestmark = pytest.mark.slow

QWIDGETSIZE_MAX = (1 << 24) - 1


def open_detail(qtbot: Any, session: Session, member: str, opened: list[QUrl]) -> MemberDetail:
    detail = MemberDetail(member_id=member, session=session, open_url=opened.append)
    qtbot.addWidget(detail)
    detail.resize(1150, 620)
    detail.show()
    return detail


async def fed_and_open(
    qtbot: Any, session: Session, member: str, events: list[dict[str, Any]]
) -> MemberDetail:
    """`member` fed `events` (all applied), its window open and loaded."""
    client = session.client
    assert client is not None
    await send_member(client, session.target, member, events, bulk=False)
    await wait_applied(client, [member])
    detail = open_detail(qtbot, session, member, [])
    await detail.start()
    return detail


def test_fed_events_show_in_ledger_chart_and_timeline_across_runs(
    qloop: qasync.QEventLoop, qtbot: Any, deployment: Deployment
) -> None:
    member = unique("dora")
    opened: list[QUrl] = []

    async def scenario() -> None:
        async with desk_session(deployment) as session:
            client = session.client
            assert client is not None
            # continue-as-new after every 4 signals: 6 events make two runs
            await start_member(client, deployment.target, member, max_signals=4)
            events = [trip(member, n, fare=1_000 * n, day=n) for n in range(1, 7)]
            await send_member(client, deployment.target, member, events, bulk=False)
            state = (await wait_applied(client, [member]))[member]
            assert state["points"] == sum(10 * n for n in range(1, 7))

            detail = open_detail(qtbot, session, member, opened)
            await detail.start()
            assert detail.state_labels["points"].text() == "210"
            assert detail.state_labels["events_processed"].text() == "6"
            assert detail.state_labels["build_id"].text() == "1.0"
            assert cells(detail.ledger_model, "cause") == [f"{member}-t{n}" for n in range(1, 7)]
            assert cells(detail.ledger_model, "balance")[-1] == "210"
            assert [b for _, b in detail.chart.points] == [10, 30, 60, 100, 150, 210]
            timeline = detail.timeline_model
            kinds = cells(timeline, "kind")
            assert kinds.count("event") == 6 and kinds.count("run") == 2
            assert cells(timeline, "detail")[0] == "run 1: member started"
            assert "run 2 continued as new" in cells(timeline, "detail")
            assert "build 1.0 takes over" in cells(timeline, "detail")
            # a link to each run in the Web UI
            runs = [r["run_id"] for r in timeline.rows if r["kind"] == "run"]
            links = re.findall(r'href="([^"]+)"', detail.runs_label.text())
            assert links == [
                f"{UI}/namespaces/default/workflows/member-{member}/{run}/history" for run in runs
            ]
            detail.runs_label.linkActivated.emit(links[1])
            assert [u.toString() for u in opened] == [links[1]]
            # a long chain is read back only so far
            latest = await fetch_chain(client, detail.workflow_id, runs[-1], {}, max_runs=1)
            assert ([r for r, _ in latest.runs], latest.complete) == (runs[1:], False)
            assert latest.kept_from is None  # left out, not gone

            # an event fed from outside arrives on its own, and the ledger keeps its
            # selection and scroll position
            detail.ledger_table.setFixedHeight(120)
            detail.ledger_table.selectionModel().setCurrentIndex(
                detail.ledger_model.index(3, 0),
                QItemSelectionModel.SelectionFlag.ClearAndSelect
                | QItemSelectionModel.SelectionFlag.Rows,
            )
            bar = detail.ledger_table.verticalScrollBar()
            bar.setValue(bar.maximum() // 2)
            scrolled = bar.value()
            assert scrolled > 0
            await send_member(
                client, deployment.target, member, [trip(member, 7, 5_000, 7)], bulk=False
            )
            await wait_until(lambda: detail.ledger_model.rowCount() == 7, timeout=TIMEOUT_S)
            await wait_until(lambda: len(detail.chart.points) == 7, timeout=TIMEOUT_S)
            await wait_until(
                lambda: f"trip_completed {member}-t7 $50.00" in cells(timeline, "detail"),
                timeout=TIMEOUT_S,
            )
            assert detail.ledger_table.selectionModel().currentIndex().row() == 3
            assert bar.value() == scrolled
            assert detail.state_labels["points"].text() == "260"
            detail.ledger_table.setMinimumHeight(0)
            detail.ledger_table.setMaximumHeight(QWIDGETSIZE_MAX)

            # a test event from the form
            detail.controls.event_type.setCurrentText("purchase")
            detail.controls.event_amount.setValue(12.34)
            detail.controls.send_button.click()
            await wait_until(lambda: detail.ledger_model.rowCount() == 8, timeout=TIMEOUT_S)
            last = detail.ledger_model.rows[-1]
            assert (last["kind"], last["delta"], last["build"]) == ("earn", 12, "1.0")
            assert last["cause"].startswith(f"{member}-desk-")
            assert detail.state_labels["points"].text() == "272"
            await wait_until(
                lambda: any(d.endswith("$12.34") for d in cells(timeline, "detail")),
                timeout=TIMEOUT_S,
            )
            assert detail.chart.points[-1][1] == 272
            screenshot(detail, "member-detail")
            detail.tabs.setCurrentIndex(1)
            screenshot(detail, "member-detail-chart")
            detail.tabs.setCurrentIndex(2)
            screenshot(detail, "member-detail-timeline")
            await _stop(detail)

    qloop.run_until_complete(scenario())


def test_manual_adjustment_changes_the_member_and_a_bad_one_says_why(
    qloop: qasync.QEventLoop, qtbot: Any, deployment: Deployment
) -> None:
    member = unique("eli")

    async def scenario() -> None:
        async with desk_session(deployment) as session:
            client = session.client
            assert client is not None
            detail = await fed_and_open(qtbot, session, member, [trip(member, 1)])
            assert detail.state_labels["points"].text() == "25"

            detail.controls.adjust_points.setValue(250)
            detail.controls.adjust_reason.setText("delayed ride goodwill")
            await detail.controls.adjust()
            assert detail.status.text() == "Adjustment applied: ledger #2, balance 275"
            assert detail.state_labels["points"].text() == "275"
            entry = detail.ledger_model.rows[-1]
            assert (entry["kind"], entry["delta"], entry["balance"]) == ("adjustment", 250, 275)
            assert entry["cause"].startswith("delayed ride goodwill (by ")
            adjustments = [r for r in detail.timeline_model.rows if r["kind"] == "adjustment"]
            assert len(adjustments) == 1
            assert adjustments[0]["detail"].startswith("+250 points by ")
            assert adjustments[0]["build"] == "1.0"

            # below zero: refused with the workflow's one-line reason, nothing changes
            detail.controls.adjust_points.setValue(-1_000)
            detail.controls.adjust_reason.setText("typo")
            await detail.controls.adjust()
            box = detail.findChild(QMessageBox, "errorDialog")
            assert box is not None and box.isVisible()
            assert box.text() == "the balance is 275; it cannot go below zero"
            assert detail.status.text() == (
                "Adjustment refused: the balance is 275; it cannot go below zero"
            )
            box.close()
            detail.controls.adjust_points.setValue(10)
            detail.controls.adjust_reason.setText("   ")
            await detail.controls.adjust()
            boxes = [b for b in detail.findChildren(QMessageBox) if b.isVisible()]
            assert [b.text() for b in boxes] == ["a reason is required"]
            state = await client.get_workflow_handle(member_workflow_id(member)).query(
                MemberWorkflow.state
            )
            assert state["points"] == 275 and len(state["ledger"]) == 2
            await detail.refresh()
            assert detail.ledger_model.rowCount() == 2
            # issue 13: each one is on the record, applied or refused, with the reason
            recorded = [
                (e["details"]["points"], e["reason"], e["outcome"])
                for e in reversed(await audit_log.entries(client, limit=50))
                if e["action"] == "member.adjust" and e["subject"] == member
            ]
            assert recorded == [
                (250, "delayed ride goodwill", "applied"),
                (-1_000, "typo", "refused: the balance is 275; it cannot go below zero"),
                (10, "(no reason given)", "refused: a reason is required"),
            ]
            await _stop(detail)

    qloop.run_until_complete(scenario())


def test_the_timeline_is_stitched_across_a_reset(
    qloop: qasync.QEventLoop, qtbot: Any, deployment: Deployment
) -> None:
    member = unique("fay")

    async def scenario() -> None:
        async with desk_session(deployment) as session:
            client = session.client
            assert client is not None
            for n in (1, 2, 3):  # one workflow task each
                await send_member(client, deployment.target, member, [trip(member, n)], bulk=False)
                await wait_applied(client, [member])
            handle = client.get_workflow_handle(member_workflow_id(member))
            original = (await handle.describe()).run_id
            history = await handle.fetch_history()
            first_task = next(
                e.event_id
                for e in history.events
                if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
            )
            # back to the first task: the events are reapplied in the new run
            made = datetime.now(UTC)
            await client.workflow_service.reset_workflow_execution(
                ResetWorkflowExecutionRequest(
                    namespace=client.namespace,
                    workflow_execution=WorkflowExecution(
                        workflow_id=member_workflow_id(member), run_id=original
                    ),
                    reason="test: reset",
                    workflow_task_finish_event_id=first_task,
                    request_id=f"reset-{member}",
                )
            )
            state = (await wait_applied(client, [member]))[member]
            assert state["points"] == 75

            detail = open_detail(qtbot, session, member, [])
            await detail.start()
            rows = [r for r in detail.timeline_model.rows if r["kind"] != "build"]
            # t1 came before the reset point (the run copies it); the reset is listed when
            # it was made, and t2 and t3 after it, as the new run took them again
            assert [r["kind"] for r in rows] == ["event", "reset", "event", "event"]
            (reset,) = [r for r in rows if r["kind"] == "reset"]
            assert reset["detail"] == f"run 1 reset from run {short_run(original)}"
            assert reset["run_id"] != original
            assert rows[0]["at"] < made <= reset["at"]
            assert [r["detail"] for r in rows if r["kind"] == "event"] == [
                f"trip_completed {member}-t{n} $25.00" for n in (1, 2, 3)
            ]
            assert cells(detail.ledger_model, "balance") == ["25", "50", "75"]
            await _stop(detail)

    qloop.run_until_complete(scenario())


def test_detail_models_pass_the_model_tester(qtmodeltester: Any) -> None:
    ledger = LedgerModel()
    entries = [
        {"seq": n, "kind": "earn", "cause": f"e{n}", "delta": 10, "balance": 10 * n}
        | {"at": f"2026-03-0{n}T10:00:00Z", "build": "1.0"}
        for n in range(1, 5)
    ]
    ledger.set_rows(entries[:2])
    qtmodeltester.check(ledger)
    ledger.set_rows(entries[1:])  # the oldest trimmed, two appended
    assert cells(ledger, "cause") == ["e2", "e3", "e4"]
    assert cells(ledger, "delta") == ["+10"] * 3
    qtmodeltester.check(ledger)

    timeline = TimelineModel()
    rows = [
        {"key": "run:a", "kind": "run", "detail": "run 1: member started", "run_id": "a" * 32},
        {"key": "r:x", "kind": "event", "detail": "purchase x $1.00", "build": "1.0"},
    ]
    timeline.set_rows([{"at": "2026-03-01T10:00:00Z", "build": "", **r} for r in rows])
    qtmodeltester.check(timeline)
    assert cells(timeline, "run_id")[0] == "aaaaaaaa"  # the run id's last 8 characters

    proposals = ProposalsModel()
    proposal = {
        "id": "a:k1:0",
        "action": "grant_points",
        "arguments": {"points": 150},
        "status": "approved",
        "created_at": "2026-03-01T10:00:00Z",
        "decided_by": "ann",
        "decision_reason": "ok",
        "model": "offline rules model",
        "cost_usd": 0.0,
    }
    proposals.set_rows(
        [proposal, {**proposal, "id": "a:k1:1", "status": "pending", "decided_by": None}]
    )
    qtmodeltester.check(proposals)
    assert cells(proposals, "what") == ["150 points", "150 points"]
    assert cells(proposals, "status") == ["approved", "pending"]
    assert cells(proposals, "decision") == ["ann: ok", ""]


def test_a_refresh_inserts_and_updates_rows_in_place_without_a_reset(qtbot: Any) -> None:
    model = LedgerModel()
    model.set_rows([{"seq": 1, "balance": 1}, {"seq": 3, "balance": 3}])
    resets: list[int] = []
    inserted: list[tuple[int, int]] = []
    changed: list[int] = []
    model.modelReset.connect(lambda: resets.append(1))
    model.rowsInserted.connect(lambda _p, first, last: inserted.append((first, last)))
    model.dataChanged.connect(lambda top, _bottom, _roles: changed.append(top.row()))
    model.set_rows([{"seq": 1, "balance": 1}, {"seq": 2, "balance": 2}, {"seq": 3, "balance": 9}])
    assert (resets, inserted, changed) == ([], [(1, 1)], [2])
    assert cells(model, "balance") == ["1", "2", "9"]
    model.set_rows([{"seq": 3, "balance": 9}, {"seq": 1, "balance": 1}])  # reordered
    assert resets == [1] and cells(model, "seq") == ["3", "1"]


async def _stop(detail: MemberDetail) -> None:
    import asyncio

    waits = detail.stop()
    if waits:
        await asyncio.wait(waits, timeout=10)


def test_redeem_and_cancel_from_the_member_detail(
    qloop: qasync.QEventLoop, qtbot: Any, deployment: Deployment
) -> None:
    member = unique("rae")

    async def scenario() -> None:
        async with desk_session(deployment) as session:
            client = session.client
            assert client is not None
            await send_member(
                client, deployment.target, member, [trip(member, 1, 50_000)], bulk=False
            )
            await wait_applied(client, [member])
            detail = open_detail(qtbot, session, member, [])
            asked: list[str] = []
            detail.controls.confirm = lambda question: asked.append(question) or len(asked) > 1
            detail.controls.reward.setCurrentIndex(detail.controls.reward.findData("coffee"))
            detail.controls.redeem_reason.setText("birthday treat")
            await detail.controls.redeem()  # the person says no: nothing spent
            assert "Redeem Coffee on board" in asked[0]
            assert (await wait_applied(client, [member]))[member]["points"] == 500
            await detail.controls.redeem()
            state = (await wait_applied(client, [member]))[member]
            assert state["points"] == 200 and state["ledger"][-1]["kind"] == "redemption"
            assert "balance 200" in detail.status.text()
            detail.controls.redeem_reason.setText("again")
            await detail.controls.redeem()  # 200 left: refused, one line
            assert "costs 300 points; the balance is 200" in detail.status.text()
            box = detail.findChild(QMessageBox, "errorDialog")
            assert box is not None and "the balance is 200" in box.text()
            box.close()
            detail.controls.redeem_reason.setText("wrong member")
            await detail.controls.cancel_redemption()
            state = (await wait_applied(client, [member]))[member]
            assert state["points"] == 500
            assert "300 pts returned" in detail.status.text()

    qloop.run_until_complete(scenario())


def test_a_closed_member_says_it_is_not_running(
    qloop: qasync.QEventLoop, qtbot: Any, deployment: Deployment
) -> None:
    """A member whose workflow was ended shows its last state, and says it is not running
    and why: nothing sent to it is applied until it is repaired."""
    member = unique("gil")

    async def scenario() -> None:
        async with desk_session(deployment) as session:
            client = session.client
            assert client is not None
            detail = await fed_and_open(qtbot, session, member, [trip(member, 1)])
            assert detail.closed_label.isHidden() and detail.controls.isEnabled()
            handle = client.get_workflow_handle(member_workflow_id(member))
            await handle.terminate(reason="ended by hand")
            await detail.refresh()
            assert detail.closed_label.isVisible()
            assert detail.closed_label.text().startswith(
                "Not running: this member's workflow is terminated (ended by hand)."
            )
            assert detail.state_labels["points"].text() == "25"  # its state when it ended
            assert not detail.controls.isEnabled()  # nothing can be sent to it
            screenshot(detail, "member-detail-closed")
            await _stop(detail)

    qloop.run_until_complete(scenario())
