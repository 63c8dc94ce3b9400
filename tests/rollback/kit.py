"""Starting a RollbackWorkflow the way the tests do (the app starts it through
runtime.releases.start_rollback, with an operator's checks and the audit log)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import ResetReapplyType
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import Client, WorkflowHandle

from recovery import pages
from recovery.runs import reset_base
from runtime import deployment as releases
from runtime.feed import send_member, wait_applied
from runtime.worker import announce, build_worker
from tests.agent.conftest import AgentDeployment
from tests.conftest import Deployment
from tests.kit.events import member_events
from tests.memberkit import start_member
from workflows.member import member_workflow_id
from workflows.rollback import RollbackInput, RollbackProgress, RollbackWorkflow
from workflows.rollback_messages import COMPARED_FIELDS
from workflows.rules import replay


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


# well inside the suite's per-test timeout, so a stuck rollback says where it is stuck
ROLLBACK_PATIENCE_S = 180.0


async def rollback(
    client: Client, task_queue: str, bad: str, workflow_id: str, **options: Any
) -> RollbackProgress:
    """Start it and wait for its result; one that does not end within
    ROLLBACK_PATIENCE_S fails the test with what it is waiting for."""
    handle = await start_rollback(client, task_queue, bad, workflow_id, **options)
    try:
        return await asyncio.wait_for(handle.result(), ROLLBACK_PATIENCE_S)
    except TimeoutError:
        raise AssertionError(await stuck(handle)) from None


async def stuck(handle: WorkflowHandle[Any, Any]) -> str:
    """One line on where a rollback is: its members' states and its pending activities
    (attempt and last failure)."""
    raw = (await handle.describe()).raw_description
    activities = [
        f"{a.activity_type.name} attempt {a.attempt}: {a.last_failure.message or 'no failure'}"
        for a in raw.pending_activities
    ]
    progress = await handle.query(RollbackWorkflow.progress)
    return (
        f"rollback {handle.id} not done after {ROLLBACK_PATIENCE_S:.0f} s: state "
        f"{progress.state}, members {progress.counts}, pending {activities or 'none'}"
    )


async def reset_run(
    client: Client,
    workflow_id: str,
    run_id: str,
    event_id: int,
    *,
    request_id: str,
    reason: str = "test",
    identity: str = "test",
) -> str:
    """Reset a run as an operator would outside the desk (Temporal's own reset: signals
    and updates reapplied); the new run's id."""
    made = await client.workflow_service.reset_workflow_execution(
        ResetWorkflowExecutionRequest(
            namespace=client.namespace,
            workflow_execution=WorkflowExecution(workflow_id=workflow_id, run_id=run_id),
            reason=reason,
            workflow_task_finish_event_id=event_id,
            request_id=request_id,
            reset_reapply_type=ResetReapplyType.RESET_REAPPLY_TYPE_ALL_ELIGIBLE,
            identity=identity,
        )
    )
    return str(made.run_id)


async def damaged_members(
    dep: Deployment,
    members: list[str],
    fed: dict[str, list],
    bug: str = "zero-on-trip",
    concurrency: int = 8,
) -> None:
    """Feed under a good build, a drill build, then the fixed build (all in this process);
    `concurrency` members fed at once (each member's events in order)."""
    gate = asyncio.Semaphore(concurrency)

    async def feed_one(member: str, phase: str, count: int, day: int) -> None:
        async with gate:
            events = member_events(member, phase, count, day)
            fed[member].extend(events)
            await send_member(dep.client, dep.target, member, events, bulk=False)

    async def feed(phase: str, count: int, day: int) -> None:
        await asyncio.gather(*(feed_one(m, phase, count, day) for m in members))
        await wait_applied(dep.client, members)

    async def start(member: str) -> None:
        async with gate:
            await start_member(dep.client, dep.target, member, max_signals=6)

    await asyncio.gather(*(start(m) for m in members))
    await feed("a", 6, day=1)
    async with dep.worker("2.0", drill=bug):
        await releases.set_current(dep.client, dep.target.deployment, BAD)
        await feed("b", 10, day=4)
    await releases.set_current(dep.client, dep.target.deployment, "2.1")
    await feed("c", 5, day=8)


BAD = "2.0+drill-zero-on-trip"


def assert_repaired(states: dict[str, Any], fed: dict[str, list]) -> None:
    for member, events in fed.items():
        truth = replay(member, events).summary()
        assert {k: states[member][k] for k in COMPARED_FIELDS} == {
            k: truth[k] for k in COMPARED_FIELDS
        }, member


STATUS = "I am Gold with another airline, can you do a status match?"


@asynccontextmanager
async def worker(agents: AgentDeployment, build: str, drill: str | None = None) -> AsyncIterator:
    """The app's worker with the agent's data dir (settings), drill build or not."""
    settings = dataclasses.replace(
        agents.deployment.settings(build, drill), data_dir=agents.data_dir
    )
    async with build_worker(agents.client, settings):
        await announce(agents.client, settings)
        yield


def support_ticket(member: str, n: int, text: str, day: int) -> dict[str, Any]:
    return {
        "type": "support_ticket",
        "event_id": f"{member}-k{n}",
        "member_id": member,
        "occurred_at": f"2026-04-{day:02d}T20:{n:02d}:00Z",
        "text": text,
    }


async def resets_of(client: Client, member: str) -> int:
    """How many runs of the member a reset created."""
    resets = 0
    async for execution in client.list_workflows(f"WorkflowId = '{member_workflow_id(member)}'"):
        history = await client.get_workflow_handle(
            execution.id, run_id=execution.run_id
        ).fetch_history()
        resets += reset_base(history) is not None and any(
            e.workflow_task_failed_event_attributes.new_run_id == execution.run_id
            for e in history.events
            if e.HasField("workflow_task_failed_event_attributes")
        )
    return resets


async def spawn_worker(dep: Deployment, build: str) -> asyncio.subprocess.Process:
    """The app's worker for `build` as a process of its own (to SIGKILL), once it polls."""
    import subprocess
    import sys

    from runtime.cliutil import target_argv

    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "runtime.cli",
        "worker",
        "--build-id",
        build,
        *target_argv(dep.target, dep.address),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    assert b"worker for build" in await asyncio.wait_for(proc.stdout.readline(), 60)
    return proc


def scope_of(prefix: str) -> str:
    """The members whose ids start with `prefix` (a test's own, on the shared server)."""
    return f"WorkflowId STARTS_WITH '{member_workflow_id(prefix)}'"


async def members_of(client: Client, preview_id: str) -> list[str]:
    """Every member a finished preview kept, page by page (tests and small previews)."""
    state = await pages.preview_state(client, preview_id)
    members: list[str] = []
    for k in range(state.pages if state else 0):
        page = await pages.read_page(client, preview_id, k)
        members.extend(r["member_id"] for r in (page.rows if page else []))
    return members
