"""Sending an entry to the audit log (workflows/audit.py) from any process: the CLI,
the window, or an activity acting for a person (a bulk decision)."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from workflows.audit import AUDIT_WORKFLOW_ID, SIGNAL_RECORD, AuditEntry, AuditWorkflow


async def send_audit(
    client: Client, entry: AuditEntry, *, task_queue: str | None, fallback_queue: str
) -> None:
    """Signal the entry to the audit workflow, starting it (on `task_queue`, else
    `fallback_queue`) when the namespace has none running."""
    if task_queue is None:
        try:
            await client.get_workflow_handle(AUDIT_WORKFLOW_ID).signal(SIGNAL_RECORD, entry)
            return
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise
    await client.start_workflow(
        AuditWorkflow.run,
        id=AUDIT_WORKFLOW_ID,
        task_queue=task_queue or fallback_queue,
        start_signal=SIGNAL_RECORD,
        start_signal_args=[entry],
    )
