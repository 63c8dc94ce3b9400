"""The redemption drills (`double-redeem`, `free-redeem`): a bad build spends points
twice or not at all; the rollback repairs the member to what a fresh replica of the
same events and redemptions gives (issue 15)."""

from __future__ import annotations

import uuid

import pytest

from recovery import repair
from runtime import deployment as releases
from runtime.feed import wait_applied
from runtime.members import deployment_query
from runtime.releases import preview_rollback
from tests.conftest import Deployment
from tests.memberkit import feed_and_sync, start_member, trip
from tests.rollback.kit import rollback
from workflows.drill import drill_build_id
from workflows.member import MemberWorkflow, member_workflow_id
from workflows.member_messages import CancelRedemption, RedeemRequest

AT = "2026-03-05T10:00:00Z"


@pytest.mark.parametrize(("bug", "damaged"), [("double-redeem", 400), ("free-redeem", 1_000)])
async def test_rollback_repairs_a_redemption_drill(
    deployment: Deployment, bug: str, damaged: int
) -> None:
    client, target = deployment.client, deployment.target
    bad = drill_build_id("1.1", bug)
    member = f"r{uuid.uuid4().hex[:8]}"
    handle = client.get_workflow_handle(member_workflow_id(member))
    async with deployment.worker("1.0"):
        await start_member(client, target, member, max_signals=50)
        await feed_and_sync(client, target, member, [trip(member, 1, 100_000)])  # 1,000
        async with deployment.worker("1.1", drill=bug):
            await releases.set_current(client, target.deployment, bad)
            await handle.execute_update(
                MemberWorkflow.redeem, RedeemRequest("q1", "coffee", AT, "ops")
            )
            await feed_and_sync(client, target, member, [trip(member, 2, 2_000, day=6)])
            async with deployment.worker("1.2"):
                await releases.set_current(client, target.deployment, "1.2")
                await feed_and_sync(client, target, member, [trip(member, 3, 3_000, day=7)])
                before = (await wait_applied(client, [member]))[member]
                # the bug: 300 spent twice, or not at all (then 20 + 30 earned at Gold: 25+37)
                assert before["points"] == damaged + 25 + 37
                # the preview shows the points at stake: the drill's error, before any reset
                _, damage = await repair.find_damage(client, bad)
                mine = [d for d in damage if d.member_id == member]
                preview = await repair.preview_member(client, mine[0])
                assert preview.before["points"] == before["points"]
                assert preview.after["points"] == 1_000 - 300 + 25 + 37
                # and the money: 300 points either way, at a cent a point
                report = await preview_rollback(
                    client,
                    bad,
                    deployment_query(target.deployment),
                    task_queue=target.task_queue,
                    rate=0.01,
                )
                assert [r["member_id"] for r in report.members] == [member]
                t = report.totals
                assert (t.points_moved, t.value_moved) == (300, 3.0)
                assert t.liability_change == (3.0 if bug == "double-redeem" else -3.0)
                assert "money at stake 3.00 (300 points at 0.01 a point)" in t.stake_text()
                result = await rollback(client, target.task_queue, bad, f"rb-{member}")
                assert result.state == "done", result
                after = (await wait_applied(client, [member]))[member]
    # as a fresh replica: 1,000 earned, 300 spent once, 25 + 37 earned
    assert after["points"] == 1_000 - 300 + 25 + 37, after["ledger"]
    kinds = [e["kind"] for e in after["ledger"]]
    assert kinds.count("redemption") == 1
    assert [r["request_id"] for r in after["redemptions"]] == ["q1"]


async def test_a_redemption_survives_the_rollback_of_an_unrelated_build_unchanged(
    deployment: Deployment,
) -> None:
    client, target = deployment.client, deployment.target
    bad = drill_build_id("2.1", "double-points")
    member = f"u{uuid.uuid4().hex[:8]}"
    handle = client.get_workflow_handle(member_workflow_id(member))
    async with deployment.worker("2.0"):
        await start_member(client, target, member, max_signals=50)
        await feed_and_sync(client, target, member, [trip(member, 1, 100_000)])  # 1,000
        # the redemption and its cancelled sibling, both under the good build
        await handle.execute_update(MemberWorkflow.redeem, RedeemRequest("q1", "coffee", AT, "ops"))
        await handle.execute_update(MemberWorkflow.redeem, RedeemRequest("q2", "coffee", AT, "ops"))
        await handle.execute_update(
            MemberWorkflow.cancel_redemption, CancelRedemption("q2", "changed mind", "ops")
        )
        before = (await wait_applied(client, [member]))[member]
        async with deployment.worker("2.1", drill="double-points"):
            await releases.set_current(client, target.deployment, bad)
            await feed_and_sync(client, target, member, [trip(member, 2, 2_000, day=6)])
            async with deployment.worker("2.2"):
                await releases.set_current(client, target.deployment, "2.2")
                damaged = (await wait_applied(client, [member]))[member]
                assert damaged["points"] == 700 + 2 * 25  # the drill doubled the trip (Gold)
                result = await rollback(client, target.task_queue, bad, f"rb-{member}")
                assert result.state == "done" and not result.mismatches, result
                after = (await wait_applied(client, [member]))[member]
    assert after["points"] == 700 + 25  # the trip as the rules earn it, coffee spent once
    kept = ("request_id", "reward_id", "cost", "requested_at", "seq", "status", "returned")
    assert [{k: r[k] for k in kept} for r in after["redemptions"]] == [
        {k: r[k] for k in kept} for r in before["redemptions"]
    ]
    kinds = [e["kind"] for e in after["ledger"]]
    assert (kinds.count("redemption"), kinds.count("redemption_cancelled")) == (2, 1)
