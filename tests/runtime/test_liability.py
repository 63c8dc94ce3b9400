"""The liability report from visibility: outstanding points, value, by tier, and what
expires within 30/60/90 days, on real members of one deployment (issue 15)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from runtime import liability
from runtime.members import deployment_query
from tests.conftest import Deployment, eventually
from tests.kit.cli import cli
from tests.memberkit import feed_and_sync, trip


async def test_liability_adds_up_points_by_tier_and_expiry(deployment: Deployment) -> None:
    tag = uuid.uuid4().hex[:6]
    # 1,000 points, last event 2026-03-01 (Gold); 500 points, last event 2026-03-28 (Blue)
    members = {f"l{tag}-a": (100_000, 1), f"l{tag}-b": (50_000, 28)}
    client = deployment.client
    query = deployment_query(deployment.target.deployment)
    async with deployment.worker("1.0"):
        for member, (fare, day) in members.items():
            await feed_and_sync(client, deployment.target, member, [trip(member, 1, fare, day=day)])

        async def published() -> dict[str, Any] | None:
            data = await liability.report(
                client, query, rate=0.02, now=datetime(2027, 2, 15, tzinfo=UTC)
            )
            return data if data["total"]["points"] == 1_500 else None

        data = await eventually(published)
        code, out, err = await cli(deployment, "liability", "--by", "tier", "--csv")
    total = data["total"]
    assert total["members"] == 2 and total["value"] == 30.0
    # a's points expire 2027-03-01 (14 days on), b's 2027-03-28 (41 days on)
    assert (total["expiring_30d"], total["expiring_60d"], total["expiring_90d"]) == (
        1_000,
        1_500,
        1_500,
    )
    assert data["by_tier"]["Gold"]["points"] == 1_000
    assert data["by_tier"]["Blue"]["points"] == 500
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("group,members,points,value")
    assert lines[1].startswith("all,2,1500,15.0,")  # at the default rate of 0.01
    assert any(line.startswith("Gold,1,1000,") for line in lines)
    assert json.dumps(data)  # plain data for --json
