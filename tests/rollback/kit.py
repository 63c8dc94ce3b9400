"""Starting a RollbackWorkflow the way the tests do (the app starts it through
runtime.releases.start_rollback, with an operator's checks and the audit log)."""

from __future__ import annotations

from typing import Any

from temporalio.client import Client, WorkflowHandle

from workflows.rollback import RollbackInput, RollbackProgress, RollbackWorkflow


async def start_rollback(
    client: Client, task_queue: str, bad: str, workflow_id: str, **options: Any
) -> WorkflowHandle[Any, RollbackProgress]:
    """`options` are RollbackInput's (expected, query, rate_per_second, concurrency...)."""
    return await client.start_workflow(
        RollbackWorkflow.run,
        RollbackInput(bad_build=bad, reason="test", actor="test", **options),
        id=workflow_id,
        task_queue=task_queue,
    )


async def rollback(
    client: Client, task_queue: str, bad: str, workflow_id: str, **options: Any
) -> RollbackProgress:
    """Start it and wait for its result."""
    handle = await start_rollback(client, task_queue, bad, workflow_id, **options)
    return await handle.result()
