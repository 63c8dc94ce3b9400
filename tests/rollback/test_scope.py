"""Issue 9: a query fragment narrows a rollback's (or a listing's) scope, never widens it.

`--query "LoyaltyTier = 'x') OR (WorkflowId STARTS_WITH 'member-'"` closed the parenthesis
it was put in, and `scope AND (...) OR (...)` took in every member of every deployment
on the namespace. Two deployments share the real dev server here: ours and another's.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from runtime.connect import Target
from runtime.members import BASE_QUERY, count_members, deployment_query
from tests.conftest import Deployment, eventually
from tests.kit.cli import cli
from tests.memberkit import feed_and_sync, start_member, trip

# the attack, and the same one hiding its parenthesis from a naive check in comments
ATTACKS = (
    "LoyaltyTier = 'x') OR (WorkflowId STARTS_WITH 'member-'",
    "x') OR (WorkflowId STARTS_WITH 'member-'",
    "LoyaltyTier = 'x' /* ( */ ) OR ( /* ) */ WorkflowId STARTS_WITH 'member-'",
    "LoyaltyTier = 'x' -- (\n) OR (WorkflowId STARTS_WITH 'member-'",
)


async def two_deployments(deployment: Deployment, tmp_path: Path) -> tuple[list[str], Deployment]:
    """Two members on our deployment, two on another one (its own worker, still running)."""
    suffix = uuid.uuid4().hex[:8]
    t = deployment.target
    other = Deployment(
        client=deployment.client,
        target=Target(
            address=t.address,
            namespace=t.namespace,
            data_dir=tmp_path / "other",
            task_queue=f"tq-o{suffix}",
            deployment=f"dep-o{suffix}",
        ),
        address=deployment.address,
    )
    ours = [f"s{suffix}-ours-{i}" for i in range(2)]
    theirs = [f"s{suffix}-theirs-{i}" for i in range(2)]
    for dep, members in ((deployment, ours), (other, theirs)):
        async with dep.worker("1.0"):
            for member in members:
                await start_member(dep.client, dep.target, member, max_signals=50)
                await feed_and_sync(dep.client, dep.target, member, [trip(member, 1)])

    async def listed() -> bool:
        counts = [
            await count_members(deployment.client, deployment_query(d.target.deployment))
            for d in (deployment, other)
        ]
        return counts == [2, 2]

    await eventually(listed, timeout=30)
    return ours, other


async def test_a_query_fragment_cannot_widen_a_rollback_or_a_listing(
    deployment: Deployment, tmp_path: Path
) -> None:
    ours, other = await two_deployments(deployment, tmp_path)
    client = deployment.client

    # the attack is real: composed the old way, it lists the other deployment's members too
    old_way = f"TemporalWorkerDeployment = '{deployment.target.deployment}' AND ({ATTACKS[0]})"
    widened = (await client.count_workflows(f"{BASE_QUERY} AND ({old_way})")).count
    assert widened >= 4

    for attack in ATTACKS:
        # the rollback preview: refused with one line, nothing scanned
        code, out, err = await cli(
            deployment, "rollback", "9.9", "--dry-run", "--json", "--query", attack
        )
        assert code != 0, f"{attack!r} was accepted: {out[:300]}"
        reason = json.loads(out)["error"]
        assert "query" in reason and "\n" not in reason
        # the members listing composes the same way
        code, out, err = await cli(deployment, "members", "--json", "--query", attack)
        assert code != 0, f"{attack!r} listed {out[:300]}"
        assert "query" in json.loads(out)["error"]

    # an OR of its own stays inside our deployment: narrowing works as before
    either = "LoyaltyTier = 'Gold' OR WorkflowId STARTS_WITH 'member-'"
    async with deployment.worker("1.0"):  # the preview runs on the workers
        code, out, err = await cli(
            deployment, "rollback", "9.9", "--dry-run", "--json", "--query", either
        )
    assert code == 0, err
    assert json.loads(out)["scanned"] == len(ours)
    # the other deployment's members were there all along
    assert await count_members(client, deployment_query(other.target.deployment)) == 2
