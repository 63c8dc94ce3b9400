"""Issue 15: a redemption is an effect (the reward to fulfil), delivered like an approved
proposal's, on a real dev server with a real webhook on loopback: once, under its
idempotency key, through a receiver's 500; a cancellation while it waits undelivered
means it is never delivered; a cancellation after delivery returns the points and
leaves the delivered effect as it was."""

from __future__ import annotations

import uuid

from runtime import effects, rewards, secrets
from tests.agent.conftest import AgentDeployment, new_member, trip
from tests.effects.kit import effect_of, webhook
from workflows.proposals import content_digest


async def test_a_redemption_is_delivered_once_and_a_cancelled_one_never(
    agents: AgentDeployment, real_keyring: str
) -> None:
    hook_secret = f"whsec-{uuid.uuid4().hex}"
    secrets.set_secret("webhook", hook_secret)
    member = new_member()
    target = agents.deployment.target
    async with webhook(hook_secret) as hook, agents.worker():
        await effects.change_config(
            agents.client,
            target,
            destinations={"reward": effects.destinations_of([hook.url], [])},
            reason="test rewards",
        )
        await agents.feed(member, [trip(member, 1, 100_000)])  # 1,000 points
        hook.script = [500]
        first = await rewards.redeem(agents.client, target, member, "coffee", request_id="r-1")
        delivered = await effect_of(agents, member, "delivered")

        # the second: the receiver refuses it for good (a 400), then it is cancelled
        hook.script = [400]
        await rewards.redeem(agents.client, target, member, "coffee", request_id="r-2")
        await effect_of(agents, member, "failed")
        await rewards.cancel(agents.client, target, member, "r-2", reason="out of stock")
        dropped = await effect_of(agents, member, "superseded")

        # the first, cancelled after its delivery: points back, the effect stays delivered
        await rewards.cancel(agents.client, target, member, "r-1", reason="goodwill")
        state = await agents.state(member)
        rows = await effects.list_effects(agents.client, target, member=member)

    arguments = {
        "request_id": "r-1",
        "reward_id": "coffee",
        "name": first.redemption["name"],
        "cost": 300,
        "requested_at": first.redemption["requested_at"],
    }
    key = f"{member}:redemption:r-1/{content_digest('reward', arguments)}"
    r1 = [r for r in hook.requests if r.key == key]
    assert [r.answered for r in r1] == [500, 200] and all(r.signed for r in r1)
    assert hook.applied[key]["kind"] == "reward"
    assert hook.applied[key]["member_id"] == member
    assert hook.applied[key]["arguments"] == arguments
    assert list(hook.applied) == [key]  # r-2 was refused once and never applied
    assert [r.answered for r in hook.requests if r.key != key] == [400]
    assert delivered["kind"] == "reward" and delivered["arguments"] == arguments
    assert "r-2 was cancelled" in dropped["detail"]
    assert sorted(r["status"] for r in rows) == ["delivered", "superseded"]
    by_id = {r["request_id"]: r for r in state["redemptions"]}
    assert by_id["r-1"]["effect"] == "started"
    assert by_id["r-1"]["effect_id"] == delivered["effect_id"]
    assert (by_id["r-1"]["status"], by_id["r-2"]["status"]) == ("cancelled", "cancelled")
    assert state["points"] == 1_000


async def test_the_feed_cancels_a_delivered_redemption_once_and_says_why_not_twice(
    agents: AgentDeployment, real_keyring: str
) -> None:
    member = new_member()
    target = agents.deployment.target

    def cancelled(n: int, reason: object = "fare dispute") -> dict[str, object]:
        return {
            "type": "redemption_cancelled",
            "event_id": f"{member}-c{n}",
            "member_id": member,
            "occurred_at": "2026-03-02T09:00:00Z",
            "refers_to": "r-9",
            "reason": reason,
        }

    async with agents.worker():
        await agents.feed(member, [trip(member, 1, 100_000)])  # 1,000 points
        await rewards.redeem(agents.client, target, member, "coffee", request_id="r-9")
        await agents.feed(member, [cancelled(1)])
        # a second cancellation from the feed, and one with a bad reason: refused
        state = await agents.feed(member, [cancelled(2), cancelled(3, reason=["x"])])

    assert state["points"] == 1_000
    record = next(r for r in state["redemptions"] if r["request_id"] == "r-9")
    assert (record["status"], record["returned"], record["cancel_reason"]) == (
        "cancelled",
        300,
        "fare dispute",
    )
    reasons = {r["event_id"]: r["reason"] for r in state["rejections"]}
    assert "already cancelled" in reasons[f"{member}-c2"]
    assert reasons[f"{member}-c3"] == "reason must be a string, got ['x']"
    assert sum(e["kind"] == "redemption_cancelled" for e in state["ledger"]) == 1
