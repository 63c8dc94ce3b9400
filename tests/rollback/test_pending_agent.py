"""A member whose agent run (a child workflow) was still going when the bad build ran
its first task: the server marks that reset point "not resettable", yet resets to it
(it reconnects pending children). The rollback repairs the member like any other,
instead of leaving it damaged as "not repairable" (a flaky chaos test found this)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from activities.offline_model import OfflineRulesModel
from recovery import repair
from runtime import deployment as releases
from tests.agent.conftest import CHARGE, AgentDeployment, ticket
from tests.conftest import Deployment
from tests.kit.events import member_events
from tests.rollback.kit import rollback
from workflows.drill import drill_build_id
from workflows.member import member_workflow_id
from workflows.rollback_messages import COMPARED_FIELDS
from workflows.rules import MemberBook, MemberSnapshot

BUG = "double-points"


class HeldModel(OfflineRulesModel):
    """The offline model, answering only once the test lets it."""

    def __init__(self) -> None:
        self.asked = asyncio.Event()
        self.go = asyncio.Event()

    async def get_response(self, *args: Any, **kwargs: Any) -> Any:
        self.asked.set()
        await self.go.wait()
        return await super().get_response(*args, **kwargs)


async def test_member_with_an_agent_run_pending_at_the_bad_builds_first_task_is_repaired(
    deployment: Deployment,
) -> None:
    deployment.target.data_dir.mkdir(parents=True, exist_ok=True)
    agents = AgentDeployment(deployment, deployment.target.data_dir)
    client, target = agents.client, deployment.target
    member = f"pend{uuid.uuid4().hex[:6]}"
    bad = drill_build_id("1.1", BUG)
    model = HeldModel()
    fed: list[dict[str, Any]] = []

    async def send(events: list[dict[str, Any]]) -> None:
        fed.extend(events)
        await agents.feed(member, events)

    async with agents.worker("1.0", model=model):
        await agents.start(member)
        await send(member_events(member, "a", 6, 1))
        await send([ticket(member, 1, CHARGE)])
        await asyncio.wait_for(model.asked.wait(), 30)  # the agent run waits on the model
        async with agents.worker("1.1", drill=BUG, model=model):
            await releases.set_current(client, target.deployment, bad)
            await send(member_events(member, "b", 6, 5))
            assert (await agents.state(member))["agent"]["running"] is not None
            description = await client.get_workflow_handle(member_workflow_id(member)).describe()
            point = repair.reset_point_for(description, bad)
            assert point is not None and not point.resettable  # the case under test
            model.go.set()
            async with agents.worker("1.2", model=model):
                await releases.set_current(client, target.deployment, "1.2")
                await send(member_events(member, "c", 6, 9))
                await agents.wait_for(member, lambda s: s["agent"]["running"] is None)

                _, damage = await repair.find_damage(client, bad)
                (mine,) = [d for d in damage if d.member_id == member]
                assert mine.problem is None
                preview = await repair.preview_member(client, mine)
                assert preview.changes, "the drill damaged nothing"
                result = await rollback(
                    client,
                    target.task_queue,
                    bad,
                    f"rollback-{member}",
                    query=f"WorkflowId = '{member_workflow_id(member)}'",
                    expected={member: preview.after},
                )
                assert (result.state, result.counts) == ("done", {"reset": 1}), result
                assert result.verified_ok == 1, result.mismatches

                state = await agents.wait_for(
                    member, lambda s: s["agent"]["running"] is None and not s["agent"]["queued"]
                )
    book = MemberBook(MemberSnapshot(member_id=member))
    for raw in fed:
        book.apply(raw, build_id="rules")
    by_rules = {k: v for k, v in book.summary().items() if k in COMPARED_FIELDS}
    live = {k: state[k] for k in COMPARED_FIELDS}
    assert live == preview.after == by_rules
