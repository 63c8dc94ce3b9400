"""A bulk decision is a workflow on the server: the app that confirmed it may die and no
worker may run; it waits, shows as waiting, and once a worker runs it decides exactly
the confirmed proposals, each once, audited once each and once as a policy."""

from __future__ import annotations

import json
import uuid
from typing import Any

from temporalio.testing import ActivityEnvironment

from activities.audit_send import send_audit
from activities.decisions import decide_batch, send_decision
from runtime import approvals
from runtime.audit_log import read_live
from tests.agent.conftest import CHARGE, AgentDeployment, new_member, ticket
from tests.auditkit import fresh_audit_log
from tests.conftest import eventually
from tests.kit.cli import cli
from workflows.audit import AuditEntry
from workflows.bulk_decision import BatchInput, BulkProgress
from workflows.member_messages import Decision


async def status(agents: AgentDeployment, bulk_id: str, state: str) -> dict[str, Any]:
    """`approvals decide --status` on the bulk decision, once it shows `state` (visibility
    lists a workflow a moment after it started, and shows its end a moment late)."""

    async def shown() -> dict[str, Any] | None:
        code, out, err = await cli(agents.deployment, "approvals", "decide", "--status", "--json")
        assert code == 0, err
        row = next((r for r in json.loads(out) if r["bulk_id"] == bulk_id), None)
        return row if row is not None and row["state"] == state else None

    row: dict[str, Any] = await eventually(shown, timeout=30)
    return row


async def test_a_bulk_decision_waits_for_a_worker_and_decides_each_proposal_once(
    agents: AgentDeployment,
) -> None:
    members = [new_member() for _ in range(4)]
    policy = approvals.parse_policy("action=grant_points")
    async with agents.worker():
        for member in members:
            await agents.feed(member, [ticket(member, 1, CHARGE)])
        for member in members:
            await agents.proposals_made(member, 2)
        points = {m: (await agents.state(m))["points"] for m in members}
        queue = agents.deployment.target.task_queue

        async def counted() -> list[dict[str, Any]] | None:
            report = await approvals.decide_by_policy(
                agents.client, policy, approve=True, reason="x", dry_run=True, task_queue=queue
            )
            chosen = [c for c in report.chosen if c["id"].split(":")[0] in members]
            return chosen if len(chosen) == len(members) else None  # one grant each

        ours = await eventually(counted, timeout=20)  # visibility lists them a moment later

        # a decision sent twice under one update id is decided once: the second send
        # (a retried batch) gets the first answer, not a refusal
        twice = new_member()
        await agents.feed(twice, [ticket(twice, 1, CHARGE)])
        grant = next(
            p for p in await agents.proposals_made(twice, 2) if p["action"] == "grant_points"
        )
        decision = Decision(
            grant["id"], True, "once", "tester", digest=approvals.shown_digest(grant)
        )
        first = await send_decision(agents.client, decision, update_id="t/once")
        again = await send_decision(agents.client, decision, update_id="t/once")
        assert first.result is not None and again.result == first.result
        assert (await agents.state(twice))["points"] == 100

    # the namespace's one audit log, started again by the decisions, on this test's queue
    await fresh_audit_log(agents.client)
    # the person confirmed; the app and its worker are gone before anything is decided
    report = await approvals.decide_by_policy(
        agents.client,
        policy,
        approve=True,
        reason="goodwill",
        confirmed=ours,
        wait=False,
        task_queue=queue,
    )
    (bulk_id,) = report.bulk_ids
    waiting = await status(agents, bulk_id, "waiting for a worker")
    assert (waiting["total"], waiting["decided"]) == (len(members), 0)

    async with agents.worker():  # the app again: its worker takes the decision up
        handle = agents.client.get_workflow_handle(bulk_id, result_type=BulkProgress)
        done = await handle.result()
        for member in members:
            assert (await agents.state(member))["points"] == points[member] + 100
        assert done.state == "done" and done.failed == []
        assert sorted(r.proposal_id for r in done.results) == sorted(c["id"] for c in ours)
        assert {r.status for r in done.results} == {"approved"}
        finished = await status(agents, bulk_id, "done")
        assert (finished["decided"], finished["failed"]) == (len(members), [])

        async def policy_recorded() -> list[dict[str, Any]] | None:
            rows, _ = await read_live(agents.client)
            found = any(r["details"].get("bulk_id") == bulk_id for r in rows)
            return rows if found else None

        rows = await eventually(policy_recorded, timeout=20)

        async def ended() -> bool:  # the panel's listing: running ones only
            under_way = await approvals.bulk_decisions(agents.client, running=True)
            return bulk_id not in [b.bulk_id for b in under_way]

        await eventually(ended, timeout=20)
        assert bulk_id in [b.bulk_id for b in await approvals.bulk_decisions(agents.client)]
    ids = {c["id"] for c in ours}
    decided = [r for r in rows if r["action"] == "approval.approve" and r["target"] in ids]
    assert sorted(r["target"] for r in decided) == sorted(ids)  # once each
    assert all(r["details"]["policy"] == policy.text for r in decided)
    (entry,) = [r for r in rows if r["details"].get("bulk_id") == bulk_id]
    assert (
        entry["action"] == "approval.policy"
        and entry["outcome"] == f"{len(members)} decided, 0 failed"
    )


async def test_a_retried_batch_decides_and_audits_each_proposal_once(
    agents: AgentDeployment,
) -> None:
    member = new_member()
    queue = agents.deployment.target.task_queue
    async with agents.worker():
        await agents.feed(member, [ticket(member, 1, CHARGE)])
        grant = next(
            p for p in await agents.proposals_made(member, 2) if p["action"] == "grant_points"
        )
        before = (await agents.state(member))["points"]
        await fresh_audit_log(agents.client)
        batch = BatchInput(
            f"bulk-retried-{uuid.uuid4().hex[:8]}",
            True,
            "goodwill",
            "tester",
            "action=grant_points",
            queue,
            [[grant["id"], approvals.shown_digest(grant)]],
        )
        # the batch's worker died after it sent everything, before it reported: the
        # server runs the activity again with the same input
        first = await ActivityEnvironment(agents.client).run(decide_batch, batch)
        again = await ActivityEnvironment(agents.client).run(decide_batch, batch)
        assert first == again and [d.status for d in first.decided] == ["approved"]
        assert (await agents.state(member))["points"] == before + 100
        # sent after both batches: once it is in, so is anything either of them sent
        marker = AuditEntry("test.marker", "tester", "after", batch.bulk_id)
        await send_audit(agents.client, marker, task_queue=queue, fallback_queue=queue)

        async def marked() -> list[dict[str, Any]] | None:
            rows, _ = await read_live(agents.client)
            return rows if any(r["action"] == "test.marker" for r in rows) else None

        rows = await eventually(marked, timeout=20)
    decided = [r for r in rows if r["target"] == grant["id"]]
    assert [(r["action"], r["outcome"]) for r in decided] == [("approval.approve", "approved")]
