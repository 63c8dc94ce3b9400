"""The agent's goodwill reward on a real server (issue 15): for a bad ride the offline
model proposes the cheapest reward the member's tier allows; approved through the one
approvals operation it becomes a redemption that deducts nothing and a `reward` effect;
a second approval is refused; with the cap lowered below the reward's worth, the next
proposal is refused by the guardrail with the reason."""

from __future__ import annotations

import pytest

from runtime import approvals, effects
from tests.agent.conftest import AgentDeployment, new_member, ticket, trip

BAD_RIDE = "The driver was rude and the car was dirty."


async def test_a_goodwill_reward_is_approved_once_and_costs_the_member_nothing(
    agents: AgentDeployment, real_keyring: str
) -> None:
    member = new_member()
    async with agents.worker():
        await agents.feed(member, [trip(member, 1, 100_000), ticket(member, 1, BAD_RIDE)])
        made = await agents.proposals_made(member, 2)
        (reward,) = [p for p in made if p["action"] == "redeem_reward"]
        assert reward["status"] == "pending"
        assert reward["arguments"] == {
            "reward_id": "coffee",
            "name": "Coffee on board",
            "cost": 300,
        }
        digest = approvals.shown_digest(reward)
        result = await approvals.decide(
            agents.client, reward["id"], digest=digest, approve=True, reason="sorry about it"
        )
        assert result.applied and "Coffee on board given as goodwill" in result.message
        with pytest.raises(approvals.ApprovalError, match="already approved"):
            await approvals.decide(
                agents.client, reward["id"], digest=digest, approve=True, reason="again"
            )
        state = await agents.state(member)
        rows = await effects.list_effects(agents.client, agents.deployment.target, member=member)

        # the cap below the reward's worth: the next bad ride's reward is refused
        await agents.configure(agent={"points_cap": 200})
        await agents.feed(member, [ticket(member, 2, BAD_RIDE, day=3)])
        later = await agents.proposals_made(member, 3)  # the apology still waits: no second

    assert state["points"] == 1_000  # nothing deducted
    (record,) = [r for r in state["redemptions"] if r["request_id"] == reward["id"]]
    assert (record["goodwill"], record["cost"], record["worth"], record["name"]) == (
        True,
        0,
        300,
        "Coffee on board",
    )
    assert [e["kind"] for e in state["ledger"]].count("goodwill_reward") == 1
    assert [r["kind"] for r in rows] == ["reward"]  # fulfilled like any redemption
    refused = [p for p in later if p["action"] == "redeem_reward" and p["id"] != reward["id"]]
    assert refused and refused[0]["status"] == "rejected"
    assert "above the cap of 200 per proposal" in refused[0]["decision_reason"]
