"""Release and rollback operations shared by the CLI and the desktop panels.

The CLI prints what these return and the Releases panel shows it; neither holds the
logic, so both record the same audit entries and refuse the same mistakes (no reason,
a rollback of the build that is still current, a second rollback of one build).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from recovery.found import if_found
from runtime import audit, deployment, previews
from runtime.connect import Target
from runtime.members import count_members
from runtime.previews import PreviewTotals as PreviewTotals
from runtime.previews import RollbackPreview as RollbackPreview
from runtime.previews import preview_rollback as preview_rollback
from runtime.rollback_status import NOT_YET_DONE as NOT_YET_DONE
from runtime.rollback_status import MemberState as MemberState
from runtime.rollback_status import RollbackCount as RollbackCount
from runtime.rollback_status import RollbackState as RollbackState
from workflows import drill
from workflows.ids import BadNameError, check_build_id
from workflows.rollback import ROLLBACK_ID_PREFIX, RollbackInput, RollbackProgress, RollbackWorkflow
from workflows.visibility import all_of, literal

RollbackControl = Literal["pause", "resume", "cancel"]
T = TypeVar("T")
RATE_LIMIT_ATTEMPTS = 8
ROLLBACK_QUERY = "WorkflowType = 'RollbackWorkflow'"


@dataclass(frozen=True)
class RollbackRow:
    """One rollback in the list (running or finished)."""

    rollback: str
    status: str  # the workflow's execution status: RUNNING, COMPLETED, ...
    started: str  # ISO time

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class ReleaseError(ValueError):
    """An operator request that cannot be done; the message is one line for people."""


async def patiently(
    call: Callable[..., Awaitable[T]], *args: Any, attempts: int = RATE_LIMIT_ATTEMPTS
) -> T:
    """`call(*args)`, again after a pause while the server says "too many requests":
    it rate-limits requests per worker deployment, and workers starting or announcing
    themselves spend that budget too (one click should not fail because of them)."""
    for attempt in range(attempts):
        try:
            return await call(*args)
        except RPCError as error:
            if error.status != RPCStatusCode.RESOURCE_EXHAUSTED or attempt == attempts - 1:
                raise
            await asyncio.sleep(min(2.0, 0.25 * 2**attempt))
    raise AssertionError("not reached")


def rollback_id(build: str) -> str:
    return f"{ROLLBACK_ID_PREFIX}{build}"


@dataclass
class VersionRow:
    build_id: str
    status: str  # current, ramping, draining, drained, inactive
    ramp_percentage: float
    drill: str | None
    members: int
    problem: str | None = None  # why the version cannot be used here (an unsafe build id)

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


async def list_versions(client: Client, deployment_name: str) -> list[VersionRow] | None:
    """Every version of the deployment with its members; None before any worker polled."""
    # one describe per listing: the server rate-limits requests per deployment
    info = await patiently(deployment.describe, client, deployment_name)
    if info is None:
        return None
    rows = []
    for v in info.versions:
        try:
            version = literal(f"{deployment_name}:{check_build_id(v.build_id)}")
        except BadNameError as error:
            # registered by a client that did not check it (a quote, say): listed, not
            # counted (it cannot go into a query), rather than breaking the list for everyone
            rows.append(VersionRow(v.build_id, v.status, v.ramp_percentage, None, 0, str(error)))
            continue
        members = await count_members(client, f"TemporalWorkerDeploymentVersion = {version}")
        bug = drill_of(v.build_id)
        rows.append(VersionRow(v.build_id, v.status, v.ramp_percentage, bug, members))
    return rows


def drill_of(build_id: str) -> str | None:
    """The bug a drill build injects, read from its id alone: `drill.drill_for` answers
    with the replay check's candidate while one runs in this process."""
    return build_id.rsplit(drill.DRILL_MARK, 1)[1] if drill.DRILL_MARK in build_id else None


async def set_release(
    client: Client, target: Target, build: str, *, reason: str, ramp: float | None = None
) -> str:
    """Make `build` current, or ramp it to `ramp` percent; recorded in the audit log."""
    check_build_id(build)
    if not reason or not reason.strip():
        raise ReleaseError("a release needs a reason")
    if ramp is not None:
        await patiently(deployment.set_ramping, client, target.deployment, build, ramp)
        message = f"build {build} ramping at {ramp:g}%"
    else:
        await patiently(deployment.set_current, client, target.deployment, build)
        message = f"build {build} is now current"
    await audit.record(
        client,
        target,
        "release.set-current",
        reason=reason,
        subject=build,
        details={"ramp": ramp},
        outcome=message,
    )
    return message


async def record_release_start(
    client: Client,
    target: Target,
    build: str,
    *,
    reason: str,
    pid: int | None,
    drill: str | None,
) -> None:
    """A worker started for `build` (from the CLI or the window): one audit entry."""
    await audit.record(
        client,
        target,
        "release.start",
        reason=reason,
        subject=build,
        details={"pid": pid, "drill": drill},
        outcome=f"worker running as pid {pid}",
    )


async def start_rollback(
    client: Client,
    target: Target,
    build: str,
    *,
    reason: str,
    preview_id: str,
    rate_per_second: float = 50.0,
    concurrency: int = 32,
    query: str | None = None,
    pages_per_run: int = 20,
) -> WorkflowHandle[Any, RollbackProgress]:
    """Start the durable rollback of `build`, after the checks an operator would want:
    it acts on exactly the rows of preview `preview_id` (finished, or still under way:
    the rollback then follows it page by page)."""
    await check_rollback(client, target, build, reason)
    all_of(query)  # a query that could widen the scope is refused before it is recorded
    try:
        await previews.check_preview(client, preview_id, build)
    except previews.PreviewError as error:
        raise ReleaseError(str(error)) from None
    await audit.record(
        client,
        target,
        "rollback.start",
        reason=reason,
        subject=build,
        # the preview names exactly the members (its count may not be known yet: the
        # CLI's --execute starts both at once)
        details={"preview": preview_id, "query": query},
        outcome="started",
    )
    return await client.start_workflow(
        RollbackWorkflow.run,
        RollbackInput(
            bad_build=build,
            reason=reason.strip(),
            actor=deployment.identity(),
            rate_per_second=rate_per_second,
            concurrency=concurrency,
            query=query,
            preview_id=preview_id,
            pages_per_run=pages_per_run,
        ),
        id=rollback_id(build),
        task_queue=target.task_queue,
    )


async def check_rollback(client: Client, target: Target, build: str, reason: str) -> None:
    """Why a rollback of `build` cannot start now (ReleaseError), or nothing."""
    check_build_id(build)
    if not reason or not reason.strip():
        raise ReleaseError("a rollback needs a reason")
    info = await patiently(deployment.describe, client, target.deployment)
    if info and info.current == build:
        raise ReleaseError(f"build {build} is still current: make the fixed build current first")
    if await rollback_running(client, build):
        raise ReleaseError(f"a rollback of {build} is already running")


async def rollback_running(client: Client, build: str) -> bool:
    description = await if_found(client.get_workflow_handle(rollback_id(build)).describe())
    return description is not None and description.status == WorkflowExecutionStatus.RUNNING


async def rollback_progress(client: Client, build: str) -> RollbackProgress:
    """The progress of the latest rollback of `build`, running or finished."""
    handle = client.get_workflow_handle(rollback_id(build))
    progress = await if_found(handle.query(RollbackWorkflow.progress))
    if progress is None:
        raise ReleaseError(f"no rollback of build {build!r}")
    return progress


async def control_rollback(
    client: Client,
    target: Target,
    build: str,
    action: RollbackControl,
    *,
    reason: str | None = None,
) -> RollbackProgress:
    """Pause, resume or cancel a rollback, audited (a cancel needs a reason)."""
    if action == "cancel" and not (reason and reason.strip()):
        raise ReleaseError("cancelling a rollback needs a reason")
    signal = {
        "pause": RollbackWorkflow.pause,
        "resume": RollbackWorkflow.resume,
        "cancel": RollbackWorkflow.cancel,
    }[action]
    try:
        await client.get_workflow_handle(rollback_id(build)).signal(signal)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise ReleaseError(f"no running rollback of build {build!r}") from None
        raise
    progress = await rollback_progress(client, build)
    await audit.record(
        client,
        target,
        f"rollback.{action}",
        reason=reason if reason and reason.strip() else "(no reason given)",
        subject=build,
        outcome=progress.state,
    )
    return progress


async def running_rollbacks(client: Client) -> list[str]:
    """The bad builds whose rollback is still running (newest first): the app re-attaches."""
    builds = []
    query = f"{ROLLBACK_QUERY} AND ExecutionStatus = 'Running'"
    async for execution in client.list_workflows(query, limit=50):
        if execution.id.startswith(ROLLBACK_ID_PREFIX):
            builds.append(execution.id.removeprefix(ROLLBACK_ID_PREFIX))
    return builds


async def list_rollbacks(client: Client, limit: int = 50) -> list[RollbackRow]:
    """The rollbacks on the namespace, newest first (the CLI's `rollback --status`)."""
    rows = []
    async for execution in client.list_workflows(ROLLBACK_QUERY, limit=limit):
        status = execution.status.name if execution.status else "UNKNOWN"
        rows.append(RollbackRow(execution.id, status, execution.start_time.isoformat()))
    return rows
