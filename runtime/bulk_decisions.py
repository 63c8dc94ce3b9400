"""Bulk decisions: the durable decision of exactly the proposals a person confirmed
(workflows/bulk_decision.py), started and read back for the CLI and the window alike
(`runtime.approvals.decide_by_policy` counts and starts; `approvals decide --status`
and the Approvals panel list them)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio.client import (
    Client,
    RPCTimeoutOrCancelledError,
    WorkflowExecutionStatus,
    WorkflowHandle,
)
from temporalio.service import RPCError

from workflows.bulk_decision import (
    BULK_ID_PREFIX,
    BULK_WORKFLOW,
    MAX_PROPOSALS,
    BulkDecisionWorkflow,
    BulkInput,
    BulkProgress,
    Decided,
)

# a running bulk decision no worker answers for: it goes on once one runs
WAITING = "waiting for a worker"
QUERY_TIMEOUT = timedelta(seconds=3)


@dataclass
class BulkReport:
    policy: str
    approve: bool
    matched: int = 0
    decided: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    # what was counted: [{"id", "digest"}], to confirm and decide exactly
    chosen: list[dict[str, Any]] = field(default_factory=list)
    # the workflows deciding them (BulkDecisionWorkflow), once started
    bulk_ids: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "decision": "approve" if self.approve else "reject",
            "matched": self.matched,
            "decided": len(self.decided),
            "failed": self.failed,
            "results": self.decided,
            "bulk_ids": self.bulk_ids,
        }


async def start_bulk(
    client: Client,
    report: BulkReport,
    *,
    reason: str,
    actor: str,
    task_queue: str,
    unreachable: list[Decided],
) -> list[WorkflowHandle[Any, BulkProgress]]:
    """Start the durable decision of `report.chosen` (exactly those): one workflow per
    MAX_PROPOSALS proposals, each named after the same stamp."""
    stamp = (
        f"{BULK_ID_PREFIX}{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:6]}"
    )
    pairs = [[p["id"], p["digest"]] for p in report.chosen]
    parts = [pairs[i : i + MAX_PROPOSALS] for i in range(0, len(pairs), MAX_PROPOSALS)] or [[]]
    handles = []
    for number, part in enumerate(parts, start=1):
        bulk = BulkInput(
            report.policy,
            report.approve,
            reason.strip(),
            actor,
            report.matched,
            part,
            unreachable=unreachable if number == 1 else [],
            part=number,
            parts=len(parts),
        )
        handles.append(
            await client.start_workflow(
                BulkDecisionWorkflow.run,
                bulk,
                id=f"{stamp}-{number}" if len(parts) > 1 else stamp,
                task_queue=task_queue,
                memo={
                    "policy": report.policy,
                    "approve": report.approve,
                    "actor": actor,
                    "count": len(part),
                },
            )
        )
    return handles


async def bulk_decisions(
    client: Client, *, limit: int = 20, running: bool = False
) -> list[BulkProgress]:
    """The latest bulk decisions, newest first: running ones as far as they are (or, when
    no worker answers, as "waiting for a worker" with what they were started with).
    `running`: only those still running (one listing, and nothing read of the ended
    ones' histories: what a panel refreshing every few seconds asks)."""
    rows: list[BulkProgress] = []
    query = f"WorkflowType = '{BULK_WORKFLOW}'"
    if running:
        query += " AND ExecutionStatus = 'Running'"
    async for execution in client.list_workflows(query, limit=limit):
        handle = client.get_workflow_handle(execution.id, result_type=BulkProgress)
        if execution.status == WorkflowExecutionStatus.COMPLETED:
            rows.append(await handle.result())
            continue
        if execution.status != WorkflowExecutionStatus.RUNNING:
            continue  # terminated by hand: nothing more will be decided
        try:
            rows.append(
                await handle.query(BulkDecisionWorkflow.progress, rpc_timeout=QUERY_TIMEOUT)
            )
        except (RPCError, RPCTimeoutOrCancelledError):  # no worker, or none in time
            memo = await execution.memo()
            rows.append(
                BulkProgress(
                    bulk_id=execution.id,
                    policy=str(memo.get("policy", "")),
                    approve=bool(memo.get("approve")),
                    actor=str(memo.get("actor", "")),
                    state=WAITING,
                    matched=int(memo.get("count") or 0),
                    total=int(memo.get("count") or 0),
                    decided=0,
                    failed=[],
                    results=[],
                )
            )
    return rows


def progress_text(p: BulkProgress) -> str:
    """One bulk decision in a line, the same in `approvals decide --status` and the panel:
    "approve 'action=grant_points': 3 of 10 decided, 0 failed, running (by ann)"."""
    part = f" (part {p.part} of {p.parts})" if p.parts > 1 else ""
    head = f"{'approve' if p.approve else 'reject'} {p.policy!r}{part}"
    if p.state == WAITING:
        return f"{head}: {p.total} to decide, {WAITING} (by {p.actor})"
    return (
        f"{head}: {p.decided} of {p.total} decided, {len(p.failed)} failed, {p.state} "
        f"(by {p.actor})"
    )
