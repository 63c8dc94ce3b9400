"""Steering a running rollback from the command line: pause stops new resets, resume
finishes the job, cancel leaves the remaining members untouched and marked cancelled."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from recovery import repair
from runtime.feed import wait_applied
from tests.conftest import Deployment, eventually
from tests.kit.cli import cli
from tests.rollback.kit import BAD, assert_repaired, damaged_members
from workflows.rollback import RollbackProgress, RollbackWorkflow
from workflows.rollback_messages import COMPARED_FIELDS

MEMBERS = 8
# slow enough that a rollback of MEMBERS members is still under way when it is steered
SLOW = ("--rate", "1", "--concurrency", "1")


async def start_slow_rollback(dep: Deployment) -> Any:
    code, out, err = await cli(
        dep, "rollback", BAD, "--execute", "--reason", "drill", *SLOW, "--no-wait", "--json"
    )
    assert code == 0, err
    handle = dep.client.get_workflow_handle_for(RollbackWorkflow.run, json.loads(out)["rollback"])

    async def first_reset() -> bool:
        progress = await handle.query(RollbackWorkflow.progress)
        return progress.counts.get("reset", 0) >= 1

    await eventually(first_reset, timeout=60, interval=0.2)
    return handle


async def steer(dep: Deployment, *args: str) -> dict[str, Any]:
    code, out, err = await cli(dep, "rollback", BAD, *args, "--json")
    assert code == 0, err
    result: dict[str, Any] = json.loads(out)
    return result


async def settled(handle: Any) -> RollbackProgress:
    """Progress once no reset is in flight any more."""

    async def idle() -> RollbackProgress | None:
        progress: RollbackProgress = await handle.query(RollbackWorkflow.progress)
        return None if progress.counts.get("resetting") else progress

    result: RollbackProgress = await eventually(idle, timeout=60, interval=0.2)
    return result


async def still_damaged(dep: Deployment) -> list[str]:
    scope = f"TemporalWorkerDeployment = '{dep.target.deployment}'"
    _, damage = await repair.find_damage(dep.client, BAD, query=scope)
    return sorted(d.member_id for d in damage)


async def test_pause_stops_resets_and_resume_finishes(deployment: Deployment) -> None:
    tag = uuid.uuid4().hex[:6]
    members = [f"p{tag}-{i}" for i in range(MEMBERS)]
    fed: dict[str, list] = {m: [] for m in members}
    async with deployment.worker("1.0"), deployment.worker("2.1"):
        await damaged_members(deployment, members, fed)
        handle = await start_slow_rollback(deployment)

        paused = await steer(deployment, "--pause")
        assert paused["state"] == "paused"
        before = await settled(handle)
        reset = before.counts.get("reset", 0)
        assert 1 <= reset < MEMBERS, before.counts
        # several waves' worth of time: nothing moves while paused
        await asyncio.sleep(4)
        after = await handle.query(RollbackWorkflow.progress)
        assert after.state == "paused"
        assert after.counts == before.counts
        assert len(await still_damaged(deployment)) == MEMBERS - reset

        resumed = await steer(deployment, "--resume")
        assert resumed["state"] == "running"
        result: RollbackProgress = await asyncio.wait_for(handle.result(), 120)
        assert result.state == "done"
        assert result.counts == {"reset": MEMBERS}
        assert result.verified_ok == MEMBERS and result.mismatches == []
        assert await still_damaged(deployment) == []
        assert_repaired(await wait_applied(deployment.client, members), fed)
        status = await steer(deployment, "--status")
        assert status["state"] == "done" and status["verified_ok"] == MEMBERS

        # issue 13: pause and resume are on the record too, with what came of them
        code, out, err = await cli(deployment, "audit", "--json")
        assert code == 0, err
        steered = [(e["action"], e["outcome"]) for e in json.loads(out) if e["subject"] == BAD]
        assert ("rollback.pause", "paused") in steered and ("rollback.resume", "running") in steered


async def test_cancel_leaves_the_remaining_members_untouched(deployment: Deployment) -> None:
    tag = uuid.uuid4().hex[:6]
    members = [f"x{tag}-{i}" for i in range(MEMBERS)]
    fed: dict[str, list] = {m: [] for m in members}
    async with deployment.worker("1.0"), deployment.worker("2.1"):
        await damaged_members(deployment, members, fed)
        damaged = await wait_applied(deployment.client, members)
        handle = await start_slow_rollback(deployment)

        code, out, err = await cli(deployment, "rollback", BAD, "--cancel")
        assert code == 1 and "needs --reason" in err and "\n" not in err.strip()
        assert (await handle.query(RollbackWorkflow.progress)).state == "running"

        cancelled = await steer(deployment, "--cancel", "--reason", "wrong build")
        assert cancelled["total"] == MEMBERS
        result: RollbackProgress = await asyncio.wait_for(handle.result(), 120)
        assert result.state == "cancelled"
        reset = result.counts.get("reset", 0)
        assert 1 <= reset < MEMBERS, result.counts
        assert result.counts == {"reset": reset, "cancelled": MEMBERS - reset}
        # the members reset before the cancel were verified
        assert result.verified_ok == reset and result.mismatches == []

        left = await still_damaged(deployment)
        assert len(left) == MEMBERS - reset
        states = await wait_applied(deployment.client, members)
        for member in left:
            assert {k: states[member][k] for k in COMPARED_FIELDS} == {
                k: damaged[member][k] for k in COMPARED_FIELDS
            }, member
        assert_repaired(
            {m: states[m] for m in members if m not in left},
            {m: fed[m] for m in members if m not in left},
        )

        # a new rollback repairs the rest, and only the rest
        code, out, err = await cli(
            deployment, "rollback", BAD, "--execute", "--reason", "the rest", "--json"
        )
        assert code == 0, err
        assert json.loads(out)["counts"] == {"reset": MEMBERS - reset}
        assert_repaired(await wait_applied(deployment.client, members), fed)

        code, out, err = await cli(deployment, "audit", "--json")
        assert code == 0, err
        assert any(
            e["action"] == "rollback.cancel" and e["reason"] == "wrong build"
            for e in json.loads(out)
        )
