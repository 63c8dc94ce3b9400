"""Decisions bind to the content a person saw (issue 10, finding 1), on the real server:
a blind approval of a proposal that does not exist yet is refused at once, even while
the agent run that would make it is on its way; a decision for other content is
refused; a bulk decision decides exactly the proposals counted and confirmed."""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowUpdateFailedError

from runtime import approvals
from tests.agent.conftest import CHARGE, AgentDeployment, new_member, ticket
from tests.conftest import eventually
from workflows.member import Decision, MemberWorkflow
from workflows.proposals import content_digest


async def test_a_blind_approval_is_refused_and_the_later_proposal_stays_pending(
    agents: AgentDeployment,
) -> None:
    member = new_member()
    async with agents.worker():
        await agents.feed(member, [ticket(member, 1, CHARGE)])
        # the ticket's agent run is queued or running: its proposals do not exist yet
        guess = f"{member}:{member}-k1:0"
        blind = Decision(
            guess, True, "approve whatever comes", "mallory", digest=content_digest("x", {})
        )
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await agents.handle(member).execute_update(MemberWorkflow.decide, blind)  # type: ignore[arg-type]
        assert "unknown proposal" in str(refused.value.cause)
        made = await agents.proposals_made(member, 2)
        assert {p["status"] for p in made} == {"pending"}  # nothing applied unseen
        grant = next(p for p in made if p["action"] == "grant_points")
        # a digest of other content (what the person saw was different) is refused too
        seen_other = content_digest("grant_points", {"points": 5})
        with pytest.raises(approvals.ApprovalError, match="is not what was shown"):
            await approvals.decide(
                agents.client, grant["id"], digest=seen_other, approve=True, reason="ok"
            )
        state = await agents.state(member)
        assert state["points"] == 0
        assert {p["status"] for p in state["proposals"]} == {"pending"}


async def test_a_bulk_decision_leaves_a_proposal_that_arrived_after_the_confirmation(
    agents: AgentDeployment,
) -> None:
    early, late = new_member(), new_member()
    async with agents.worker():
        await agents.feed(early, [ticket(early, 1, CHARGE)])
        await agents.proposals_made(early, 2)

        async def count() -> approvals.BulkReport | None:
            report = await approvals.decide_by_policy(
                agents.client,
                approvals.parse_policy("action=message_member"),
                approve=True,
                reason="send them",
                dry_run=True,
                task_queue=agents.deployment.target.task_queue,
            )
            return report if report.chosen else None

        counted = await eventually(count, timeout=30)  # visibility lags a moment
        assert [c["id"].split(":", 1)[0] for c in counted.chosen] == [early]
        # after the person confirmed the count, another member's message arrives
        await agents.feed(late, [ticket(late, 1, CHARGE)])
        await agents.proposals_made(late, 2)
        done = await approvals.decide_by_policy(
            agents.client,
            approvals.parse_policy("action=message_member"),
            approve=True,
            reason="send them",
            task_queue=agents.deployment.target.task_queue,
            confirmed=counted.chosen,
        )
        assert [d["proposal_id"] for d in done.decided] == [c["id"] for c in counted.chosen]
        late_message = next(
            p for p in await agents.state_proposals(late) if p["action"] == "message_member"
        )
        assert late_message["status"] == "pending"
