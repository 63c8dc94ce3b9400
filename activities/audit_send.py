"""Sending an entry to the audit log (workflows/audit.py) from any process: the CLI,
the window, or an activity acting for a person (a bulk decision).

The entry goes as a signal whose request id is `once` when the sender has one: the
server drops a signal whose request id the audit log's run has already taken, so an
activity retried after it sent its entries (its worker died before it reported) does
not record them twice. The server keeps those ids per run: a retry that comes after the
audit log continued as new (every RECORDS_PER_RUN entries) records again.
"""

from __future__ import annotations

import uuid

from temporalio.api.common.v1 import Payloads, WorkflowExecution, WorkflowType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    SignalWithStartWorkflowExecutionRequest,
    SignalWorkflowExecutionRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from workflows.audit import AUDIT_WORKFLOW_ID, AUDIT_WORKFLOW_TYPE, SIGNAL_RECORD, AuditEntry


async def send_audit(
    client: Client,
    entry: AuditEntry,
    *,
    task_queue: str | None,
    fallback_queue: str,
    once: str | None = None,
) -> None:
    """Signal the entry to the audit workflow, starting it (on `task_queue`, else
    `fallback_queue`) when the namespace has none running. `once`: a key naming this
    entry; sent again under the same key, it is recorded once."""
    request_id = once or uuid.uuid4().hex
    payloads = Payloads(payloads=await client.data_converter.encode([entry]))
    service = client.workflow_service
    if task_queue is None:
        try:
            await service.signal_workflow_execution(
                SignalWorkflowExecutionRequest(
                    namespace=client.namespace,
                    workflow_execution=WorkflowExecution(workflow_id=AUDIT_WORKFLOW_ID),
                    signal_name=SIGNAL_RECORD,
                    input=payloads,
                    identity=client.identity,
                    request_id=request_id,
                ),
                retry=True,
            )
            return
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise
    await service.signal_with_start_workflow_execution(
        SignalWithStartWorkflowExecutionRequest(
            namespace=client.namespace,
            workflow_id=AUDIT_WORKFLOW_ID,
            workflow_type=WorkflowType(name=AUDIT_WORKFLOW_TYPE),
            task_queue=TaskQueue(name=task_queue or fallback_queue),
            signal_name=SIGNAL_RECORD,
            signal_input=payloads,
            identity=client.identity,
            request_id=request_id,
        ),
        retry=True,
    )
