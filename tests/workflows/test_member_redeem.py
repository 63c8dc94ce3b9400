"""Redemptions on the member workflow, on a real dev server (issue 15)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio.client import Client, WorkflowUpdateFailedError

from desktop.member_detail_timeline import TimelineBuilder
from recovery.history import received
from recovery.rebuild import Rebuild
from recovery.runs import as_run_applied, chain_histories
from tests.conftest import Deployment
from tests.memberkit import COMPARED, feed_and_sync, start_member, trip
from workflows.member import MemberWorkflow, member_workflow_id
from workflows.member_messages import CancelRedemption, RedeemRequest
from workflows.rules import MemberBook, MemberSnapshot

AT = "2026-03-05T10:00:00Z"


def new_member() -> str:
    return f"m-{uuid.uuid4().hex[:10]}"


async def test_two_clients_redeem_concurrently_with_a_balance_for_one(
    deployment: Deployment,
) -> None:
    member = new_member()
    async with deployment.worker("1.0"):
        # 400 points: one coffee (300), not two
        await feed_and_sync(deployment.client, deployment.target, member, [trip(member, 1, 40_000)])
        other = await Client.connect(
            deployment.address,
            namespace=deployment.client.namespace,
            data_converter=deployment.client.data_converter,
        )
        handles = [
            c.get_workflow_handle(member_workflow_id(member)) for c in (deployment.client, other)
        ]
        results = await asyncio.gather(
            *(
                h.execute_update(
                    MemberWorkflow.redeem, RedeemRequest(f"req-{n}", "coffee", AT, "ops")
                )
                for n, h in enumerate(handles)
            ),
            return_exceptions=True,
        )
        state = await handles[0].query(MemberWorkflow.state)
    won = [r for r in results if not isinstance(r, BaseException)]
    lost = [r for r in results if isinstance(r, BaseException)]
    assert len(won) == 1 and len(lost) == 1, results
    assert isinstance(lost[0], WorkflowUpdateFailedError)
    assert "costs 300 points; the balance is 100" in str(lost[0].cause)
    assert state["points"] == 100
    assert [e["kind"] for e in state["ledger"]].count("redemption") == 1
    assert [r["request_id"] for r in state["redemptions"]] == [won[0].redemption["request_id"]]


async def test_a_redemption_survives_continue_as_new_and_a_retry_returns_it(
    deployment: Deployment,
) -> None:
    member = new_member()
    client = deployment.client
    async with deployment.worker("1.0"):
        await start_member(client, deployment.target, member, max_signals=2)
        await feed_and_sync(client, deployment.target, member, [trip(member, 1, 100_000)])
        handle = client.get_workflow_handle(member_workflow_id(member))
        first = await handle.execute_update(
            MemberWorkflow.redeem, RedeemRequest("req-1", "coffee", AT, "ops")
        )
        first_run = (await handle.describe()).run_id
        # more signals than a run takes: the member continues as new
        await feed_and_sync(
            client, deployment.target, member, [trip(member, n, 1_000) for n in range(2, 6)]
        )
        assert (await handle.describe()).run_id != first_run
        again = await handle.execute_update(
            MemberWorkflow.redeem, RedeemRequest("req-1", "coffee", AT, "ops")
        )
        with pytest.raises(WorkflowUpdateFailedError) as other:
            await handle.execute_update(
                MemberWorkflow.redeem, RedeemRequest("req-1", "seat-upgrade", AT, "ops")
            )
        with pytest.raises(WorkflowUpdateFailedError) as unknown:
            await handle.execute_update(
                MemberWorkflow.redeem, RedeemRequest("req-2", "yacht", AT, "ops")
            )
        cancelled = await handle.execute_update(
            MemberWorkflow.cancel_redemption, CancelRedemption("req-1", "changed mind", "ops")
        )
        with pytest.raises(WorkflowUpdateFailedError) as twice:
            await handle.execute_update(
                MemberWorkflow.cancel_redemption, CancelRedemption("req-1", "again", "ops")
            )
        state = await handle.query(MemberWorkflow.state)
        chain = await chain_histories(
            client, member_workflow_id(member), run_id=(await handle.describe()).run_id
        )
    # a rollback's rebuild reads the redemptions from the runs' histories and counts them
    rebuild = Rebuild(MemberBook(MemberSnapshot(member_id=member)))
    kinds_read: list[str] = []
    for history in chain:
        as_run_applied(rebuild.book, history)
        for item in received(history, approvals=True):
            kinds_read.append(item.kind)
            rebuild.apply(item, "rules")
    assert kinds_read.count("redeem") == 2  # the first and its retry (the refused never came)
    assert kinds_read.count("cancel_redemption") == 1
    computed = rebuild.book.summary()
    assert {k: computed[k] for k in COMPARED} == {k: state[k] for k in COMPARED}
    assert [(e["kind"], e["cause"], e["delta"]) for e in computed["ledger"]] == [
        (e["kind"], e["cause"], e["delta"]) for e in state["ledger"]
    ]
    # the member detail's timeline shows them
    timeline = TimelineBuilder()
    for history in chain:
        timeline.add_run(history.run_id, history)
    shown = [r["detail"] for r in timeline.rows([]) if r["kind"] == "redemption"]
    assert shown[0] == "redeem coffee (req-1) by ops"
    assert shown[-1] == "cancel redemption req-1 by ops: changed mind"
    assert first.applied and not again.applied
    # the same result (its effect's hand-over moves on meanwhile: not part of the answer)
    progress = ("effect", "effect_id")
    assert {k: v for k, v in again.redemption.items() if k not in progress} == {
        k: v for k, v in first.redemption.items() if k not in progress
    }
    assert first.points == 700  # 1,000 earned, 300 spent
    assert "different redemption" in str(other.value.cause)
    assert "unknown reward" in str(unknown.value.cause)
    assert "already cancelled" in str(twice.value.cause)
    assert cancelled.redemption["returned"] == 300
    kinds = [e["kind"] for e in state["ledger"]]
    assert kinds.count("redemption") == 1 and kinds.count("redemption_cancelled") == 1
    # the cost came back once: the balance is what was earned (1,000, then 4 x 12 at Gold)
    assert state["points"] == sum(e["delta"] for e in state["ledger"] if e["kind"] == "earn")
    assert state["points"] == 1_048 and state["runs"] > 1
    assert state["ledger_base"] + sum(e["delta"] for e in state["ledger"]) == state["points"]
