"""Recording and reading the audit log (the AuditWorkflow; see workflows/audit.py)."""

from __future__ import annotations

from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.service import RPCError, RPCStatusCode

from runtime.connect import Target
from runtime.deployment import identity
from workflows.audit import AUDIT_WORKFLOW_ID, SIGNAL_RECORD, AuditEntry, AuditWorkflow


async def record(
    client: Client,
    target: Target,
    action: str,
    *,
    reason: str,
    subject: str,
    details: dict[str, Any] | None = None,
    actor: str | None = None,
) -> None:
    """Record one operator action: who (OS user @ host), what, why; the server adds when."""
    if not reason or not reason.strip():
        raise ValueError(f"{action} needs a reason (--reason)")
    entry = AuditEntry(action, actor or identity(), reason.strip(), subject, details or {})
    await client.start_workflow(
        AuditWorkflow.run,
        id=AUDIT_WORKFLOW_ID,
        task_queue=target.task_queue,
        start_signal=SIGNAL_RECORD,
        start_signal_args=[entry],
    )


async def entries(client: Client, *, limit: int = 100) -> list[dict[str, Any]]:
    """The newest `limit` entries, newest first, across the log's runs."""
    converter = DataConverter.default.payload_converter
    found: list[dict[str, Any]] = []
    try:
        description = await client.get_workflow_handle(AUDIT_WORKFLOW_ID).describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return []
        raise
    run_id: str | None = description.run_id
    while run_id and len(found) < limit:
        history = await client.get_workflow_handle(AUDIT_WORKFLOW_ID, run_id=run_id).fetch_history()
        run_entries = []
        for event in history.events:
            if event.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
                continue
            attrs = event.workflow_execution_signaled_event_attributes
            if attrs.signal_name != SIGNAL_RECORD:
                continue
            entry = converter.from_payloads(list(attrs.input.payloads), [AuditEntry])[0]
            data = dict(entry.__dict__)
            data["at"] = event.event_time.ToDatetime().isoformat() + "Z"
            run_entries.append(data)
        found.extend(reversed(run_entries))
        start = history.events[0].workflow_execution_started_event_attributes
        run_id = start.continued_execution_run_id or None
    return found[:limit]
