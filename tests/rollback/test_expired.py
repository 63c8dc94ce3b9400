"""A member whose reset point is gone (what namespace retention does to the closed run
holding the bad build's first task) is listed as not repairable with that reason, in
the preview and the rollback, is not reset, and does not stop the others' repair."""

from __future__ import annotations

import json
import uuid

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.service import RPCError, RPCStatusCode

from recovery import repair
from runtime.feed import wait_applied
from tests.conftest import Deployment, eventually
from tests.kit.cli import cli
from tests.rollback.kit import BAD, assert_repaired, damaged_members
from workflows.ids import member_workflow_id
from workflows.rollback_messages import COMPARED_FIELDS


async def test_a_member_whose_reset_point_expired_is_listed_not_reset(
    deployment: Deployment,
) -> None:
    client = deployment.client
    tag = uuid.uuid4().hex[:6]
    members = [f"e{tag}-{i}" for i in range(3)]
    gone = members[0]
    fed: dict[str, list] = {m: [] for m in members}
    scope = f"TemporalWorkerDeployment = '{deployment.target.deployment}'"
    async with deployment.worker("1.0"), deployment.worker("2.1"):
        await damaged_members(deployment, members, fed)
        damaged = await wait_applied(client, members)
        _, found = await repair.find_damage(client, BAD, query=scope)
        point = next(d.point for d in found if d.member_id == gone)
        # the bad build's first task lies in a closed run of the chain: retention
        # deletes such a run; so does this request
        assert point is not None and point.run_id != next(
            d.run_id for d in found if d.member_id == gone
        )
        await client.workflow_service.delete_workflow_execution(
            DeleteWorkflowExecutionRequest(
                namespace=client.namespace,
                workflow_execution=WorkflowExecution(
                    workflow_id=member_workflow_id(gone), run_id=point.run_id
                ),
            )
        )

        async def deleted() -> bool:
            try:
                await client.get_workflow_handle(
                    member_workflow_id(gone), run_id=point.run_id
                ).describe()
            except RPCError as error:
                return error.status == RPCStatusCode.NOT_FOUND
            return False

        # the server deletes it a little later (tens of seconds on the dev server)
        await eventually(deleted, timeout=120, interval=0.5)

        _, found = await repair.find_damage(client, BAD, query=scope)
        problems = {d.member_id: d.problem for d in found}
        assert sorted(problems) == sorted(members)
        assert problems[gone] is not None and "expired" in problems[gone]
        assert "\n" not in problems[gone]
        assert all(problems[m] is None for m in members[1:])

        code, out, err = await cli(deployment, "rollback", BAD, "--dry-run", "--json")
        assert code == 0, err
        preview = json.loads(out)
        assert preview["affected"] == 3 and preview["repairable"] == 2
        assert preview["not_repairable"] == [{"member_id": gone, "reason": problems[gone]}]

        code, out, err = await cli(
            deployment, "rollback", BAD, "--execute", "--reason", "drill", "--json"
        )
        assert code == 0, err
        result = json.loads(out)
        assert result["counts"] == {"reset": 2, "not-repairable": 1}
        assert result["not_repairable"] == [{"member_id": gone, "reason": problems[gone]}]
        assert result["verified_ok"] == 2 and result["mismatches"] == []

        states = await wait_applied(client, members)
        assert {k: states[gone][k] for k in COMPARED_FIELDS} == {
            k: damaged[gone][k] for k in COMPARED_FIELDS
        }
        assert_repaired({m: states[m] for m in members[1:]}, {m: fed[m] for m in members[1:]})
