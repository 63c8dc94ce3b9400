"""A refund that reaches a member before the purchase it refunds waits for it, on the
real server, with and without a rollback in between; the member then equals a fresh
replica fed the same events in order (issue 10, finding 3)."""

from __future__ import annotations

import uuid
from typing import Any

from runtime import deployment as releases
from runtime.feed import send_member, wait_applied
from tests.conftest import Deployment, eventually
from tests.memberkit import COMPARED, start_member
from tests.rollback.kit import rollback
from workflows.member import MemberWorkflow, member_workflow_id
from workflows.rules import replay

BAD = "1.1+drill-double-points"


def purchase(member: str, name: str, day: int, cents: int) -> dict[str, Any]:
    return {
        "type": "purchase",
        "event_id": f"{member}-{name}",
        "member_id": member,
        "occurred_at": f"2026-05-{day:02d}T10:00:00Z",
        "amount_cents": cents,
    }


def refund(member: str, name: str, day: int, of: str) -> dict[str, Any]:
    return {
        "type": "refund",
        "event_id": f"{member}-{name}",
        "member_id": member,
        "occurred_at": f"2026-05-{day:02d}T12:00:00Z",
        "refers_to": f"{member}-{of}",
    }


def assert_equals_in_order_replica(state: dict[str, Any], member: str, in_order: list[Any]) -> None:
    truth = replay(member, in_order).summary()
    assert {k: state[k] for k in COMPARED} == {k: truth[k] for k in COMPARED}
    assert state["held"] == [] and state["rejections"] == []
    refunds = sorted(e["cause"] for e in state["ledger"] if e["kind"] == "refund")
    assert refunds == sorted(e["cause"] for e in truth["ledger"] if e["kind"] == "refund")


async def test_a_refund_before_its_purchase_claws_back_when_the_purchase_arrives(
    deployment: Deployment,
) -> None:
    client, target = deployment.client, deployment.target
    member = f"ooo-{uuid.uuid4().hex[:6]}"
    bought = purchase(member, "p1", 3, 40_000)
    early = refund(member, "r1", 4, "p1")
    other = purchase(member, "p2", 5, 12_000)
    async with deployment.worker("1.0"):
        await start_member(client, target, member, max_signals=2)
        await send_member(client, target, member, [early], bulk=False)
        waiting = (await wait_applied(client, [member]))[member]
        assert waiting["held"] == [
            {
                "event_id": early["event_id"],
                "refers_to": bought["event_id"],
                "occurred_at": early["occurred_at"],
            }
        ]
        assert waiting["events_rejected"] == 0
        # the purchase arrives later, in another signal (and, with max_signals=2, the
        # member continues as new in between: the hold is carried)
        await send_member(client, target, member, [other], bulk=False)
        handle = client.get_workflow_handle(member_workflow_id(member))

        async def continued() -> dict[str, Any] | None:
            state = await handle.query(MemberWorkflow.state)
            return state if state["runs"] >= 2 else None

        carried = await eventually(continued, timeout=30)
        assert [h["event_id"] for h in carried["held"]] == [early["event_id"]]
        await send_member(client, target, member, [bought], bulk=False)
        state = (await wait_applied(client, [member]))[member]
    assert_equals_in_order_replica(state, member, [bought, early, other])


async def test_a_refund_held_across_a_rollback_claws_back_once_after_it(
    deployment: Deployment,
) -> None:
    """Refunds wait on the good build and on the bad one; the rollback replays them into
    the hold again; their purchases arrive after the repair: each claws back once."""
    client, target = deployment.client, deployment.target
    member = f"oor-{uuid.uuid4().hex[:6]}"
    first = purchase(member, "p0", 1, 20_000)
    early = refund(member, "r1", 4, "p1")
    bad_time = [purchase(member, "p2", 5, 30_000), refund(member, "r3", 6, "p3")]
    late = [purchase(member, "p1", 3, 40_000), purchase(member, "p3", 5, 16_000)]
    async with deployment.worker("1.0"):
        await start_member(client, target, member, max_signals=50)
        for event in (first, early):
            await send_member(client, target, member, [event], bulk=False)
        await wait_applied(client, [member])
        async with deployment.worker("1.1", drill="double-points"):
            await releases.set_current(client, target.deployment, BAD)
            for event in bad_time:
                await send_member(client, target, member, [event], bulk=False)
            damaged = (await wait_applied(client, [member]))[member]
            assert len(damaged["held"]) == 2
            async with deployment.worker("1.2"):
                await releases.set_current(client, target.deployment, "1.2")
                result = await rollback(
                    client,
                    target.task_queue,
                    BAD,
                    f"rollback-ooo-{member}",
                    query=f"WorkflowId = 'member-{member}'",
                )
                assert result.counts == {"reset": 1}, result
                assert result.verified_ok == 1, result.mismatches
                repaired = (await wait_applied(client, [member]))[member]
                assert len(repaired["held"]) == 2  # still waiting, once each
                for event in late:
                    await send_member(client, target, member, [event], bulk=False)
                state = (await wait_applied(client, [member]))[member]
    in_order = [first, late[0], early, bad_time[0], late[1], bad_time[1]]
    assert_equals_in_order_replica(state, member, in_order)
