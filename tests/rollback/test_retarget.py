"""The `wrong-tier` retargeting (issue 10, finding 1), on the real server: a person
approved the message the agent proposed to a member the bad build showed as Diamond;
after the rollback the member is Gold again and the agent's re-run puts a tier change
at the same proposal id. The decision stays bound to the message: the tier change is
pending, says why, and nothing is applied or sent that no one saw."""

from __future__ import annotations

import uuid
from typing import Any

from recovery import repair
from runtime import deployment as releases
from runtime import effects, secrets
from runtime import releases as operations
from tests.agent.conftest import AgentDeployment
from tests.conftest import Deployment, eventually
from tests.effects.kit import webhook
from tests.rollback.kit import STATUS, rollback, support_ticket, worker
from workflows.drill import drill_build_id
from workflows.rules import replay

BUG = "wrong-tier"


def purchase(member: str, n: int, cents: int, day: int) -> dict[str, Any]:
    return {
        "type": "purchase",
        "event_id": f"{member}-p{n}",
        "member_id": member,
        "occurred_at": f"2026-04-{day:02d}T09:00:00Z",
        "amount_cents": cents,
    }


async def test_an_approval_stays_bound_when_the_rerun_puts_other_content_at_its_id(
    deployment: Deployment, real_keyring: str
) -> None:
    deployment.target.data_dir.mkdir(parents=True, exist_ok=True)
    agents = AgentDeployment(deployment, deployment.target.data_dir)
    client, target = agents.client, deployment.target
    member = f"rt{uuid.uuid4().hex[:6]}"
    bad = drill_build_id("1.1", BUG)
    bought = purchase(member, 1, 200_000, day=2)  # 2,000 points: Gold by the rules
    ticket = support_ticket(member, 1, STATUS, day=4)
    async with worker(agents, "1.0"):
        await agents.start(member)
        assert (await agents.feed(member, [bought]))["tier"] == "Gold"
        async with worker(agents, "1.1", BUG):
            await releases.set_current(client, target.deployment, bad)
            shown = await agents.feed(member, [ticket])
            assert shown["tier"] == "Diamond"  # the bad build's tier: no upgrade to propose
            (message,) = await agents.proposals_made(member, 1)
            assert message["action"] == "message_member"
            assert message["id"] == f"{member}:{ticket['event_id']}:0"
            result = await agents.decide(message["id"], True, "send the status-match reply")
            assert result.applied
            delivered = await agents.wait_for(
                member, lambda s: s["proposals"][0].get("effect") == "delivered"
            )
            assert len(await eventually(lambda: agents.effects(message["id"]))) == 1
            async with worker(agents, "1.2"):
                await releases.set_current(client, target.deployment, "1.2")
                _, damage = await repair.find_damage(client, bad)
                mine = [d for d in damage if d.member_id == member]
                preview = await repair.preview_member(client, mine[0])
                assert preview.after["tier"] == "Gold"
                # the decision is re-sent after the ticket's re-run: bound to the message
                assert [(d["proposal_id"], d["fate"]) for d in preview.decisions] == [
                    (message["id"], "re-run")
                ]
                outcome = await rollback(
                    client,
                    target.task_queue,
                    bad,
                    f"rollback-{member}",
                    query=f"WorkflowId = 'member-{member}'",
                    expected={member: preview.after},
                )
                assert outcome.counts == {"reset": 1}, outcome
                assert outcome.verified_ok == 1, outcome.mismatches
                state = await agents.wait_for(
                    member,
                    lambda s: (
                        s["agent"]["running"] is None
                        and not s["agent"]["queued"]
                        and len(s["proposals"]) == 2
                    ),
                    timeout=60,
                )
                # the approved message's effect waited (no destination yet): once one
                # is set it looks again, finds the proposal changed, and sends nothing
                secrets.set_secret("webhook", "retarget-secret")
                async with webhook("retarget-secret") as hook:
                    await effects.change_config(
                        client,
                        target,
                        destinations={"message": effects.destinations_of([hook.url], [])},
                        reason="test",
                    )

                    async def settled() -> list[dict[str, Any]] | None:
                        rows = await agents.effects(message["id"])
                        return rows if rows and rows[0]["status"] == "superseded" else None

                    await eventually(settled, timeout=60)
                    assert hook.requests == []
    by_id = {p["id"]: p for p in state["proposals"]}
    retargeted = by_id[message["id"]]
    # the re-run put a tier change where the message was: not approved by the earlier
    # decision, pending, with that decision kept and the reason it is pending again
    assert retargeted["action"] == "change_tier"
    assert retargeted["arguments"] == {"tier": "Platinum"}
    assert retargeted["status"] == "pending"
    (earlier,) = retargeted["earlier_decisions"]
    assert earlier["approve"] is True
    assert earlier["digest"] == message["digest"]
    assert earlier["decided_at"] == delivered["proposals"][0]["decided_at"]
    assert "content changed" in earlier["why_pending"]
    # the message moved to the next index: pending too, never sent again
    moved = by_id[f"{member}:{ticket['event_id']}:1"]
    assert moved["action"] == "message_member" and moved["status"] == "pending"
    # one effect: the message sent before the rollback; none for what no one approved
    assert len(await agents.effects(message["id"])) == 1
    assert await agents.effects(moved["id"]) == []
    # nothing applied that no one saw: the member is what the rules give
    truth = replay(member, [bought, ticket]).summary()
    assert (state["tier"], state["points"]) == (truth["tier"], truth["points"]) == ("Gold", 2_000)
    assert state["tier_override"] is None


async def test_an_approval_whose_trigger_does_not_fire_again_is_reported_dropped(
    deployment: Deployment,
) -> None:
    """The bad build doubled a member's points to just below Gold; the agent nudged it and
    a person approved the message. Repaired, the member is nowhere near Gold: the trigger
    does not fire again, and the preview says the approval is dropped before anyone
    executes; after the rollback no such proposal exists and nothing is sent again."""
    deployment.target.data_dir.mkdir(parents=True, exist_ok=True)
    agents = AgentDeployment(deployment, deployment.target.data_dir)
    client, target = agents.client, deployment.target
    member = f"rd{uuid.uuid4().hex[:6]}"
    bad = drill_build_id("1.1", "double-points")
    async with worker(agents, "1.0"):
        await agents.start(member)
        async with worker(agents, "1.1", "double-points"):
            await releases.set_current(client, target.deployment, bad)
            near = await agents.feed(member, [purchase(member, 1, 48_000, day=2)])
            assert near["window_points"] == 960  # doubled: within 5% of Gold
            (nudge,) = await agents.proposals_made(member, 1)
            assert nudge["trigger"]["kind"] == "tier_boundary"
            await agents.decide(nudge["id"], True, "send the nudge")
            async with worker(agents, "1.2"):
                await releases.set_current(client, target.deployment, "1.2")
                report = await operations.preview_rollback(
                    client, bad, f"WorkflowId = 'member-{member}'", task_queue=target.task_queue
                )
                (row,) = report.members
                assert row["after"]["points"] == 480
                assert [(d["proposal_id"], d["fate"]) for d in row["decisions"]] == [
                    (nudge["id"], "dropped")
                ]
                assert [d["proposal_id"] for d in report.approvals_dropped] == [nudge["id"]]
                outcome = await rollback(
                    client,
                    target.task_queue,
                    bad,
                    f"rollback-{member}",
                    query=f"WorkflowId = 'member-{member}'",
                    expected={member: row["after"]},
                )
                assert outcome.verified_ok == 1, outcome.mismatches
                state = await agents.state(member)
    assert state["points"] == 480
    assert state["proposals"] == []  # no trigger, no proposal, no decision applied
