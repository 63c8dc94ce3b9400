"""`loyalty-desk rewards list`, `redeem`, `redemptions list|cancel` against a real
member, as a person runs them from a shell; each action lands in the audit."""

from __future__ import annotations

import json
import uuid

from tests.conftest import Deployment
from tests.kit.cli import cli
from tests.memberkit import feed_and_sync, trip


async def test_rewards_list_shows_the_bundled_catalogue() -> None:
    code, out, _ = await cli(None, "rewards", "list", "--json")
    assert code == 0
    ids = [r["id"] for r in json.loads(out)["rewards"]]
    assert "coffee" in ids and len(ids) == len(set(ids))


async def test_redeem_retry_cancel_and_refusals_from_the_shell(deployment: Deployment) -> None:
    member = f"m-{uuid.uuid4().hex[:10]}"
    async with deployment.worker("1.0"):
        await feed_and_sync(deployment.client, deployment.target, member, [trip(member, 1, 50_000)])
        code, out, err = await cli(
            deployment, "redeem", member, "coffee", "--request-id", "r-1", "--json"
        )
        assert code == 0, err
        first = json.loads(out)
        assert first["applied"] and first["balance"] == 200
        # the same command again (a retry): answered with the first, nothing spent twice
        code, out, err = await cli(
            deployment, "redeem", member, "coffee", "--request-id", "r-1", "--json"
        )
        assert code == 0, err
        assert json.loads(out)["applied"] is False and json.loads(out)["balance"] == 200
        # too expensive: one line, non-zero, nothing spent
        code, out, err = await cli(deployment, "redeem", member, "coffee")
        assert code != 0
        assert "costs 300 points; the balance is 200" in err and len(err.strip().splitlines()) == 1
        code, out, err = await cli(
            deployment, "redemptions", "cancel", member, "r-1", "--reason", "wrong member"
        )
        assert code == 0, err
        assert "300 pts returned" in out and "balance 500 pts" in out
        code, out, err = await cli(deployment, "redemptions", "list", member, "--json")
        rows = json.loads(out)["redemptions"]
        assert [(r["request_id"], r["status"]) for r in rows] == [("r-1", "cancelled")]
        code, out, err = await cli(deployment, "audit", "list", "--json")
    assert code == 0, err
    actions = [e for e in json.loads(out) if e.get("subject") == member]
    outcomes = sorted((e["action"], e["outcome"].split(":")[0]) for e in actions)
    assert ("member.cancel_redemption", "cancelled") in outcomes
    assert ("member.redeem", "redeemed") in outcomes
    assert ("member.redeem", "refused") in outcomes
