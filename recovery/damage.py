"""Finding the members a bad build damaged, and where each can be reset to.

Plain async functions over a Temporal client (see recovery/repair.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import TypeVar

from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
)

from recovery.found import if_found
from recovery.runs import previous_run, reset_base
from recovery.scan import FINDING, ScanProgress
from workflows.contract import member_id_of, member_workflow_id
from workflows.rollback_messages import (
    Damage,
    ResetPoint,
)
from workflows.rollback_pages import members_query

T = TypeVar("T")
R = TypeVar("R")


async def bounded(
    items: Iterable[T], work: Callable[[T], Awaitable[R]], concurrency: int = 32
) -> list[R]:
    gate = asyncio.Semaphore(concurrency)

    async def one(item: T) -> R:
        async with gate:
            return await work(item)

    return await asyncio.gather(*(one(i) for i in items))


def reset_point_for(description: WorkflowExecutionDescription, build_id: str) -> ResetPoint | None:
    """The member's reset point at the first task of `build_id`, across its runs.

    The current run's auto reset points carry those of earlier runs of the chain, so a
    member that continued as new since the bad build is still found."""
    info = description.raw_description.workflow_execution_info
    for point in info.auto_reset_points.points:
        if point.build_id == build_id:
            expires = (
                point.expire_time.ToDatetime(tzinfo=UTC) if point.HasField("expire_time") else None
            )
            return ResetPoint(
                build_id=build_id,
                run_id=point.run_id,
                event_id=point.first_workflow_task_completed_id,
                expires_at=expires.isoformat() if expires else None,
                resettable=point.resettable,
            )
    return None


def current_build(description: WorkflowExecutionDescription) -> str | None:
    versioning = description.raw_description.workflow_execution_info.versioning_info
    if versioning.HasField("deployment_version"):
        return versioning.deployment_version.build_id or None
    return None


def damage_of(description: WorkflowExecutionDescription, bad_build: str) -> Damage | None:
    point = reset_point_for(description, bad_build)
    if point is None:
        return None
    damage = Damage(member_id_of(description.id), description.run_id, point)
    if point.expires_at and datetime.fromisoformat(point.expires_at) <= datetime.now(UTC):
        damage.problem = f"reset point expired on {point.expires_at[:10]} (namespace retention)"
    # `resettable` false (an agent run, a child workflow, was pending at that task) is no
    # reason to skip: the server resets with pending children and reconnects them; what
    # it still refuses comes back from the reset itself (see `reset_member`)
    return damage


async def checked_damage(
    client: Client, description: WorkflowExecutionDescription, bad_build: str
) -> Damage | None:
    """`damage_of`, and a reset point in an earlier run whose run is gone (retention
    deleted it, or an operator did) is marked as not repairable rather than failing the
    preview and the reset later on."""
    damage = damage_of(description, bad_build)
    if damage is None or damage.problem or damage.point is None:
        return damage
    if damage.point.run_id != description.run_id:
        handle = client.get_workflow_handle(description.id, run_id=damage.point.run_id)
        if await if_found(handle.describe()) is None:
            damage.problem = (
                f"reset point expired: run {damage.point.run_id} holding the first task of "
                f"{bad_build} is gone (namespace retention)"
            )
    return damage


async def find_damage(
    client: Client,
    bad_build: str,
    *,
    query: str | None = None,
    concurrency: int = 32,
    progress: ScanProgress | None = None,
) -> tuple[int, list[Damage]]:
    """(members scanned, members the bad build touched); only running members count.
    `progress` counts as it goes, from a first count of the members to look at."""
    full = members_query(datetime.now(UTC), query)
    scan = progress if progress is not None else ScanProgress()
    scan.total = (await client.count_workflows(full)).count
    ids: dict[str, None] = {}
    async for execution in client.list_workflows(full):
        ids[execution.id] = None
        scan.listed = len(ids)
    # the count is of runs (a member that just continued as new counts twice): the
    # listing, once complete, says how many members there are to look at
    scan.total = len(ids)
    scan.enter(FINDING)  # the rate counts from the first look

    async def check(workflow_id: str) -> Damage | None:
        description = await client.get_workflow_handle(workflow_id).describe()
        damage = None
        if description.status is not None and description.status.name == "RUNNING":
            damage = await checked_damage(client, description, bad_build)
        scan.scanned += 1
        scan.found += damage is not None
        return damage

    found = await bounded(ids, check, concurrency)
    return len(ids), sorted((d for d in found if d), key=lambda d: d.member_id)


# -- what a member received since a point --------------------------------------------


async def latest_reset_run(
    client: Client, member_id: str, current_run: str, max_runs: int = 10_000
) -> str | None:
    """The newest run of the member's chain that a reset created."""
    workflow_id = member_workflow_id(member_id)
    run: str | None = current_run
    for _ in range(max_runs):
        if run is None:
            return None
        history = await client.get_workflow_handle(workflow_id, run_id=run).fetch_history()
        if reset_base(history):
            return run
        run = previous_run(history)
    return None
