"""Deciding proposals: one decision sent to its member (the CLI, the window and a bulk
decision's activity all send it this way), and the bulk decision's activity, which
decides a batch of confirmed proposals and records each in the audit log.

A decision of a bulk decision is sent with an update id made of the bulk decision's id
and the proposal's: a retried batch (the worker died mid-way) gets the member's first
answer again instead of deciding twice, and its audit entry goes under the same key,
so the audit log records it once.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from temporalio import activity
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from activities.audit_send import send_audit
from activities.support import heartbeating
from workflows.audit import decision_entry
from workflows.bulk_decision import (
    DECIDE_BATCH,
    BatchInput,
    BatchOutcome,
    Decided,
)
from workflows.contract import UPDATE_DECIDE, member_workflow_id
from workflows.member_messages import Decision, DecisionResult
from workflows.proposals import owner_of

BATCH_CONCURRENCY = 8  # decisions of one batch in flight


@dataclass
class DecisionOutcome:
    proposal_id: str
    result: DecisionResult | None = None
    refused: str | None = None  # one line: why it was not decided
    # the member answered (its refusal is a decision's outcome, audited as such);
    # False: no such proposal id or member, nothing to audit
    answered: bool = True


async def send_decision(
    client: Client, decision: Decision, *, update_id: str | None = None
) -> DecisionOutcome:
    """Send `decision` to the proposal's member; its result, or why it was refused."""
    proposal_id = decision.proposal_id
    member_id = owner_of(proposal_id)
    if not member_id or ":" not in proposal_id:
        return DecisionOutcome(
            proposal_id,
            refused=f"{proposal_id!r} is not a proposal id (member:trigger:index)",
            answered=False,
        )
    handle = client.get_workflow_handle(member_workflow_id(member_id))
    try:
        result = await handle.execute_update(
            UPDATE_DECIDE, decision, id=update_id, result_type=DecisionResult
        )
    except WorkflowUpdateFailedError as error:
        cause = error.cause
        message = getattr(cause, "message", None) or str(cause or error)
        return DecisionOutcome(proposal_id, refused=message.splitlines()[0])
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return DecisionOutcome(
                proposal_id,
                refused=f"unknown member {member_id!r} (from {proposal_id!r})",
                answered=False,
            )
        raise
    return DecisionOutcome(proposal_id, result=result)


@activity.defn(name=DECIDE_BATCH)
async def decide_batch(batch: BatchInput) -> BatchOutcome:
    """Decide each confirmed proposal of the batch as the person chose, each bound to the
    content they confirmed (its digest); audited one entry per decision, as one by one."""
    client = activity.client()
    gate = asyncio.Semaphore(BATCH_CONCURRENCY)

    async def one(proposal_id: str, digest: str) -> Decided:
        decision = Decision(
            proposal_id, batch.approve, batch.reason, batch.actor, batch.policy, digest=digest
        )
        async with gate:
            outcome = await send_decision(
                client, decision, update_id=f"{batch.bulk_id}/{proposal_id}"
            )
            if outcome.answered:
                entry = decision_entry(
                    proposal_id,
                    digest,
                    batch.approve,
                    batch.actor,
                    batch.reason,
                    outcome.result.status if outcome.result else f"refused: {outcome.refused}",
                    batch.policy,
                )
                await send_audit(
                    client,
                    entry,
                    task_queue=batch.task_queue,
                    fallback_queue=batch.task_queue,
                    once=f"{batch.bulk_id}/{proposal_id}",
                )
        if outcome.result is None:
            return Decided(proposal_id, "failed", outcome.refused or "")
        return Decided(proposal_id, outcome.result.status, outcome.result.message)

    async with heartbeating():
        decided = await asyncio.gather(*(one(p, d) for p, d in batch.proposals))
    return BatchOutcome(list(decided))
