"""The liability report from visibility: outstanding points, value, by tier, and what
expires within 30/60/90 days, on real members of one deployment (issue 15)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

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

        async def published() -> liability.LiabilityReport | None:
            data = await liability.report(
                client, query, rate=0.02, now=datetime(2027, 2, 15, tzinfo=UTC)
            )
            return data if data.total.points == 1_500 else None

        data = await eventually(published)
        seen: list[tuple[int, int | None]] = []
        await liability.report(client, query, progress=lambda n, of: seen.append((n, of)))
        assert seen == [(0, 2), (2, 2)]  # counted first, then as it reads
        code, out, err = await cli(deployment, "liability", "--by", "tier", "--csv")
    total = data.total
    assert total.members == 2 and total.value == 30.0
    # a's points expire 2027-03-01 (14 days on), b's 2027-03-28 (41 days on)
    assert total.expiring == {30: 1_000, 60: 1_500, 90: 1_500}
    assert data.by_tier["Gold"].points == 1_000
    assert data.by_tier["Blue"].points == 500
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("group,members,points,value")
    assert lines[1].startswith("all,2,1500,15.0,")  # at the default rate of 0.01
    assert any(line.startswith("Gold,1,1000,") for line in lines)
    assert json.loads(json.dumps(data.as_json()))["total"]["expiring_30d"] == 1_000


async def test_the_rate_comes_from_settings_and_a_bad_one_is_refused(
    deployment: Deployment,
) -> None:
    settings = deployment.target.data_dir / "settings.json"
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text(json.dumps({"liability": {"rate": 0.05}}))
    assert liability.configured_rate(deployment.target.data_dir) == 0.05
    code, out, err = await cli(deployment, "liability", "--json")
    assert code == 0, err
    assert json.loads(out)["rate"] == 0.05
    assert "members read" in err  # progress on stderr, from the first count
    for bad in ("cheap", -1, float("inf")):
        settings.write_text(json.dumps({"liability": {"rate": bad}}))
        code, out, err = await cli(deployment, "liability")
        assert code != 0 and "rate" in err and len(err.strip().splitlines()) == 1, err
    code, out, err = await cli(deployment, "liability", "--rate", "0.5", "--json")
    assert code == 0 and json.loads(out)["rate"] == 0.5  # the flag wins over the file
