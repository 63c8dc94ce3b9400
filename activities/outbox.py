"""The outbox: an approved proposal's external effect (a message to the member, a fraud
case, a tier-change request) becomes one EffectWorkflow, which delivers it
(workflows/effects.py). Nothing is kept on this worker's disk.

Idempotent by workflow id, `effect-<proposal id>-<content digest>`, which the server
never lets run twice (REJECT_DUPLICATE): an activity retry, a replayed approval after a
reset, or a second worker handing over the same entry all leave exactly one effect.
"""

from __future__ import annotations

from temporalio import activity
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from workflows.agent_io import OUTBOX_DELIVER_ACTIVITY, OutboxEntry, OutboxReceipt
from workflows.effects import EffectInput, EffectWorkflow, effect_workflow_id
from workflows.proposals import content_digest


def effect_input(entry: OutboxEntry, deployment: str) -> EffectInput:
    payload = dict(entry.payload)
    return EffectInput(
        proposal_id=entry.proposal_id,
        digest=content_digest(payload.get("action"), payload.get("arguments")),
        member_id=entry.member_id,
        kind=entry.kind,
        payload=payload,
        decided_by=entry.decided_by,
        decided_at=entry.decided_at,
        deployment=deployment,
    )


class Outbox:
    """Hands effects over to their EffectWorkflows on this worker's task queue."""

    def __init__(self, client: Client, deployment: str, task_queue: str) -> None:
        self._client = client
        self._deployment = deployment
        self._task_queue = task_queue

    async def put(self, entry: OutboxEntry) -> OutboxReceipt:
        input = effect_input(entry, self._deployment)
        effect_id = effect_workflow_id(input.proposal_id, input.digest)
        try:
            await self._client.start_workflow(
                EffectWorkflow.run,
                input,
                id=effect_id,
                task_queue=self._task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            )
        except WorkflowAlreadyStartedError:
            return OutboxReceipt(entry.proposal_id, False, 0, effect_id)
        return OutboxReceipt(entry.proposal_id, True, 0, effect_id)

    @activity.defn(name=OUTBOX_DELIVER_ACTIVITY)
    async def deliver(self, entry: OutboxEntry) -> OutboxReceipt:
        receipt = await self.put(entry)
        if not receipt.inserted:
            activity.logger.info("effect %s already exists; nothing added", receipt.effect_id)
        return receipt
