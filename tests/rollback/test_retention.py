"""A member whose first runs the server no longer keeps (retention, or deleted): the
replay check and the timeline check and show what is kept, say from when, and never
fail the whole check; `replay-check --limit` says how many members it left out."""

from __future__ import annotations

import json
import uuid

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.client import WorkflowHistory

from desktop.member_detail_timeline import TimelineBuilder, fetch_chain
from recovery.history import received
from recovery.runs import chain_histories, fetch_run, started_at
from runtime.feed import send_member, wait_applied
from tests.conftest import Deployment, eventually
from tests.kit.cli import cli
from tests.kit.events import member_events
from tests.memberkit import start_member
from workflows.ids import member_workflow_id


async def test_runs_past_retention_are_reported_per_member_not_failing_the_check(
    deployment: Deployment,
) -> None:
    tag = uuid.uuid4().hex[:6]
    old, young = f"ret{tag}-old", f"ret{tag}-young"
    client = deployment.client
    async with deployment.worker("1.0"):
        for member in (old, young):
            await start_member(client, deployment.target, member, max_signals=4)
            events = member_events(member, "a", 16, day=1)
            await send_member(client, deployment.target, member, events, bulk=False)
        await wait_applied(client, [old, young])

        # the old member's first two runs go, as retention would take them
        workflow_id = member_workflow_id(old)

        async def long_chain() -> list[WorkflowHistory] | None:
            run_id = (await client.get_workflow_handle(workflow_id).describe()).run_id
            chain = await chain_histories(client, workflow_id, run_id=run_id)
            return chain if len(chain) >= 3 else None

        # the continue-as-new follows the last event's task: wait for the third run
        chain = await eventually(long_chain, timeout=30)
        current = (await client.get_workflow_handle(workflow_id).describe()).run_id
        # each run names the one it continued: the ids of the first and the second run
        gone = [
            h.events[0].workflow_execution_started_event_attributes.continued_execution_run_id
            for h in chain[1:3]
        ]
        for run_id in gone:
            await client.workflow_service.delete_workflow_execution(
                DeleteWorkflowExecutionRequest(
                    namespace=client.namespace,
                    workflow_execution=WorkflowExecution(workflow_id=workflow_id, run_id=run_id),
                )
            )
        # (the test server deletes at once: tests/conftest.py; by default some 30 s later)
        for run_id in gone:
            await eventually(lambda run_id=run_id: _gone(client, workflow_id, run_id), timeout=60)
        kept_since = started_at(chain[2])

        code, out, err = await cli(deployment, "replay-check", "--json")
        assert code == 0, out + err
        report = json.loads(out)
        assert report["go"] is True and report["members"] == 2, out
        rows = {r["member_id"]: r for r in report["results"]}
        since = kept_since.strftime("%Y-%m-%d %H:%M:%S UTC")
        # the old member: checked from its oldest kept run, numbers equal, and said so
        assert rows[old]["note"] == f"history before {since} no longer kept: checked from {since}"
        assert rows[old]["runs"] == len(chain) - 2 and rows[old]["differences"] == {}
        assert rows[young]["note"] is None and rows[young]["runs"] >= 2
        assert "1 checked only from their oldest run still kept" in report["summary"]

        code, out, err = await cli(deployment, "replay-check")
        assert code == 0 and f"no longer kept: checked from {since}" in out, out + err

        # fewer members checked than exist: the report says how many were left out
        code, out, err = await cli(deployment, "replay-check", "--limit", "1", "--json")
        assert code == 0, out + err
        capped = json.loads(out)
        assert (capped["members"], capped["members_total"]) == (1, 2)
        assert "1 more members were not checked (of 2)" in capped["summary"]

        # the timeline shows the kept runs and from when, instead of failing
        timeline = await fetch_chain(client, workflow_id, current, {})
        assert timeline.kept_from == kept_since and not timeline.complete
        assert [r for r, _ in timeline.runs][-1] == current
        assert len(timeline.runs) == len(chain) - 2
        builder = TimelineBuilder(first_number=3)
        for run_id, history in timeline.runs:
            builder.add_run(run_id, history)
        # every event the kept runs received, none of the gone runs'
        gone_events = {i.key() for h in chain[:2] for i in received(h) if i.kind == "event"}
        kept = {i.key() for _, h in timeline.runs for i in received(h) if i.kind == "event"}
        assert len(gone_events) + len(kept) == 16 and not gone_events & kept
        shown = {row["key"] for row in builder.rows([]) if row["kind"] == "event"}
        assert shown == {f"r:{key}" for key in kept}


async def _gone(client, workflow_id: str, run_id: str) -> bool:  # type: ignore[no-untyped-def]
    return await fetch_run(client, workflow_id, run_id) is None
