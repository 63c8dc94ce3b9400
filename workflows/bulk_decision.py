"""BulkDecisionWorkflow: a policy decision over exactly the proposals a person confirmed.

The person counts the proposals a policy matches, confirms that list, and this workflow
decides each of them (bound to the content counted: its digest) in batches, by an
activity (activities/decisions.py). It lives on the server: the app or the CLI that
started it may die; a worker takes it up again where it was, and each proposal is
decided once (update ids; a retried batch gets the first answers again). Its progress
is a query; its result says what became of every proposal. The policy's audit entry
goes to the audit log when every decision is in.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, VersioningBehavior

with workflow.unsafe.imports_passed_through():
    from workflows.audit import AUDIT_WORKFLOW_ID, SIGNAL_RECORD, policy_entry
    from workflows.signatures import activity_signature

BULK_WORKFLOW = "BulkDecisionWorkflow"
BULK_ID_PREFIX = "bulk-decision-"
QUERY_BULK_PROGRESS = "progress"
DECIDE_BATCH = "decide_batch"
BATCH_SIZE = 20  # proposals one activity decides
IN_FLIGHT = 4  # batches at once
# proposals one workflow decides: its input and result stay far below 256 KB; a larger
# confirmed list is decided by several workflows, in order
MAX_PROPOSALS = 1_000
# retried until the server and the members answer again (a decision is never dropped)
RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))


@dataclass
class BatchInput:
    bulk_id: str
    approve: bool
    reason: str
    actor: str
    policy: str
    task_queue: str  # where the audit log runs, if a decision must start it
    proposals: list[list[str]]  # [proposal id, digest confirmed]


@dataclass
class Decided:
    proposal_id: str
    status: str  # approved, rejected, failed
    message: str


@dataclass
class BatchOutcome:
    decided: list[Decided] = field(default_factory=list)


@dataclass
class BulkInput:
    policy: str
    approve: bool
    reason: str
    actor: str
    matched: int  # what the person confirmed, over every workflow of the decision
    proposals: list[list[str]]  # this workflow's share: [proposal id, digest]
    # proposals of members that did not answer when they were counted (not decided)
    unreachable: list[Decided] = field(default_factory=list)
    part: int = 1  # of `parts` workflows deciding one confirmed list
    parts: int = 1


@dataclass
class BulkProgress:
    bulk_id: str
    policy: str
    approve: bool
    actor: str
    state: str  # running, done
    matched: int
    total: int  # this workflow's proposals
    decided: int  # approved or rejected so far
    failed: list[Decided]
    results: list[Decided]
    part: int = 1
    parts: int = 1

    def as_json(self) -> dict[str, Any]:
        return {
            "bulk_id": self.bulk_id,
            "policy": self.policy,
            "decision": "approve" if self.approve else "reject",
            "actor": self.actor,
            "state": self.state,
            "matched": self.matched,
            "total": self.total,
            "decided": self.decided,
            "failed": [{"proposal_id": f.proposal_id, "reason": f.message} for f in self.failed],
            "part": self.part,
            "parts": self.parts,
        }


decide_batch = activity_signature(
    DECIDE_BATCH, BatchInput, BatchOutcome, "activities.decisions.decide_batch"
)


@workflow.defn(name=BULK_WORKFLOW, versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class BulkDecisionWorkflow:
    @workflow.init
    def __init__(self, input: BulkInput) -> None:
        self._input = input
        self._results: dict[str, Decided] = {d.proposal_id: d for d in input.unreachable}
        self._state = "running"

    @workflow.run
    async def run(self, input: BulkInput) -> BulkProgress:
        info = workflow.info()
        gate = asyncio.Semaphore(IN_FLIGHT)

        async def batch(proposals: list[list[str]]) -> None:
            async with gate:
                outcome = await workflow.execute_activity(
                    decide_batch,
                    BatchInput(
                        info.workflow_id,
                        input.approve,
                        input.reason,
                        input.actor,
                        input.policy,
                        info.task_queue,
                        proposals,
                    ),
                    start_to_close_timeout=timedelta(minutes=5),
                    heartbeat_timeout=timedelta(seconds=30),
                    retry_policy=RETRY,
                )
            for decided in outcome.decided:
                self._results[decided.proposal_id] = decided

        todo = [p for p in input.proposals if p[0] not in self._results]
        await asyncio.gather(
            *(batch(todo[i : i + BATCH_SIZE]) for i in range(0, len(todo), BATCH_SIZE))
        )
        done = self.progress()
        entry = policy_entry(
            input.policy,
            input.approve,
            input.actor,
            input.reason,
            input.matched,
            [r.proposal_id for r in done.results if r.status != "failed"],
            [f.proposal_id for f in done.failed],
        )
        entry.details["bulk_id"] = info.workflow_id
        try:  # the decisions started the audit log if it was not running
            await workflow.get_external_workflow_handle(AUDIT_WORKFLOW_ID).signal(
                SIGNAL_RECORD, entry
            )
        except Exception:
            workflow.logger.warning("audit log workflow not found; the policy not recorded")
        self._state = "done"
        return self.progress()

    @workflow.query(name=QUERY_BULK_PROGRESS)
    def progress(self) -> BulkProgress:
        results = sorted(self._results.values(), key=lambda r: r.proposal_id)
        failed = [r for r in results if r.status == "failed"]
        return BulkProgress(
            bulk_id=workflow.info().workflow_id,
            policy=self._input.policy,
            approve=self._input.approve,
            actor=self._input.actor,
            state=self._state,
            matched=self._input.matched,
            total=len(self._input.proposals) + len(self._input.unreachable),
            decided=len(results) - len(failed),
            failed=failed,
            results=results,
            part=self._input.part,
            parts=self._input.parts,
        )
