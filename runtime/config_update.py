"""Changing one of the deployment's settings workflows (where effects go, the agent's
guardrails; see workflows.config_record): update-with-start, so the first change
creates the workflow and every later one finds it."""

from __future__ import annotations

from typing import Any

from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy

from runtime.connect import Target


async def set_with_start(
    client: Client, target: Target, workflow_id: str, run: Any, update: Any, change: Any
) -> Any:
    """Send `change` to the `update` of the workflow `workflow_id` (started with `run` on
    the deployment's task queue if it does not run yet); its result."""
    start = WithStartWorkflowOperation(
        run,
        id=workflow_id,
        task_queue=target.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    return await client.execute_update_with_start_workflow(
        update, change, start_workflow_operation=start
    )
