"""Members through visibility: the list is a query over search attributes, never a scan."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecution, WorkflowHistoryEventFilterType

from workflows import search_attributes as sa
from workflows.contract import member_workflow_id
from workflows.ids import check_name, member_id_of
from workflows.visibility import all_of, literal

BASE_QUERY = "WorkflowType = 'MemberWorkflow' AND ExecutionStatus = 'Running'"
DEPLOYMENT_VERSION_ATTRIBUTE = "TemporalWorkerDeploymentVersion"


def member_query(extra: str | None = None) -> str:
    """Running members, narrowed (never widened) by `extra` (see workflows/visibility.py)."""
    return all_of(BASE_QUERY, extra) or BASE_QUERY


def build_of(execution: WorkflowExecution) -> str | None:
    """The build of the member's latest task: the deployment version, minus the deployment."""
    raw = execution.search_attributes.get(DEPLOYMENT_VERSION_ATTRIBUTE)
    value = raw[0] if isinstance(raw, list) and raw else raw
    if not isinstance(value, str) or not value:
        return None
    return value.split(":", 1)[1] if ":" in value else value


def member_row(execution: WorkflowExecution) -> dict[str, Any]:
    attrs = execution.typed_search_attributes
    last: datetime | None = attrs.get(sa.LAST_EVENT_AT)
    return {
        "member_id": member_id_of(execution.id),
        "tier": attrs.get(sa.TIER),
        "points": attrs.get(sa.POINTS),
        "last_event_at": last.isoformat().replace("+00:00", "Z") if last else None,
        "pending_proposals": attrs.get(sa.PENDING_PROPOSALS) or 0,
        "build_id": build_of(execution),
        "drill": attrs.get(sa.DRILL) or None,
        "run_id": execution.run_id,
    }


def deployment_query(deployment_name: str, query: str | None = None) -> str:
    """Members whose current run belongs to one worker deployment (other deployments on
    the same namespace run other code and have other workers), plus an optional filter."""
    scope = f"TemporalWorkerDeployment = {literal(check_name(deployment_name, 'deployment name'))}"
    return all_of(scope, query) or scope


async def list_members(
    client: Client, query: str | None = None, *, limit: int | None = 100
) -> list[dict[str, Any]]:
    rows = []
    async for execution in client.list_workflows(member_query(query), limit=limit):
        rows.append(member_row(execution))
    return rows


async def count_members(client: Client, query: str | None = None) -> int:
    result = await client.count_workflows(member_query(query))
    return result.count


async def closed_how(client: Client, member_id: str) -> str:
    """How the member's latest run ended, in a few words: "terminated (reason)"."""
    handle = client.get_workflow_handle(member_workflow_id(member_id))
    async for event in handle.fetch_history_events(
        event_filter_type=WorkflowHistoryEventFilterType.CLOSE_EVENT
    ):
        kind = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_WORKFLOW_EXECUTION_")
        why = ""
        if event.HasField("workflow_execution_terminated_event_attributes"):
            why = event.workflow_execution_terminated_event_attributes.reason
        elif event.HasField("workflow_execution_failed_event_attributes"):
            why = event.workflow_execution_failed_event_attributes.failure.message
        first = why.strip().splitlines()[0][:200] if why.strip() else ""
        return kind.lower().replace("_", " ") + (f" ({first})" if first else "")
    return "closed"
