import asyncio
from temporalio.worker import Replayer
from temporalio.client import WorkflowHistory
from runtime.worker import sandbox_runner, workflow_classes
from tests.agent.conftest import CHARGE, AgentDeployment, new_member, ticket, trip
from workflows.member import member_workflow_id

async def test_replay(agents: AgentDeployment) -> None:
    members = [new_member() for _ in range(3)]
    async with agents.worker():
        await agents.start(members[0], max_signals=3)
        for m in members:
            await agents.feed(m, [ticket(m, 1, CHARGE)] + [trip(m, n, 1000 + n) for n in range(1, 9)] + [ticket(m, 2, "app crashed", day=3)])
        await asyncio.sleep(3)
        hists = []
        for m in members:
            h = agents.client.get_workflow_handle(member_workflow_id(m))
            async for run_hist in _chain(agents.client, member_workflow_id(m)):
                hists.append(run_hist)
    replayer = Replayer(workflows=list(workflow_classes()), workflow_runner=sandbox_runner())
    for h in hists:
        r = await replayer.replay_workflow(h, raise_on_replay_failure=False)
        print("REPLAY", h.workflow_id, len(h.events), r.replay_failure)

async def _chain(client, wid):
    from activities.history import chain_histories
    d = await client.get_workflow_handle(wid).describe()
    for h in await chain_histories(client, wid, run_id=d.run_id):
        yield h
