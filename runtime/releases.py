"""Release and rollback operations shared by the CLI and the desktop panels.

The CLI prints what these return and the Releases panel shows it; neither holds the
logic, so both record the same audit entries and refuse the same mistakes (no reason,
a rollback of the build that is still current, a second rollback of one build).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal, TypeVar

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from recovery.scan import DONE, PREVIEWING, ScanProgress
from runtime import audit, deployment
from runtime.connect import Target
from runtime.members import count_members
from runtime.rollback_status import NOT_YET_DONE as NOT_YET_DONE
from runtime.rollback_status import MemberState as MemberState
from runtime.rollback_status import RollbackCount as RollbackCount
from runtime.rollback_status import RollbackState as RollbackState
from workflows import drill
from workflows.ids import BadNameError, check_build_id
from workflows.rollback import ROLLBACK_ID_PREFIX, RollbackInput, RollbackProgress, RollbackWorkflow
from workflows.rollback_messages import Damage
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


@dataclass(frozen=True)
class PreviewTotals:
    """Points and lifetime points over the repairable members, before and after, and
    the money at stake at `rate` (currency per point, as the liability report values
    points): what the repair moves, member by member, and what it does to the
    program's outstanding liability."""

    points_before: int = 0
    points_after: int = 0
    lifetime_points_before: int = 0
    lifetime_points_after: int = 0
    points_moved: int = 0  # the sum over members of |after - before|
    rate: float = 0.0

    @property
    def value_moved(self) -> float:
        """Money the repair moves between the program and its members (either way)."""
        return round(self.points_moved * self.rate, 2)

    @property
    def liability_change(self) -> float:
        """What the repair adds to (or, negative, takes off) the outstanding liability."""
        return round((self.points_after - self.points_before) * self.rate, 2)

    def stake_text(self) -> str:
        """One line for people: the money at stake."""
        return (
            f"money at stake {self.value_moved:,.2f} ({self.points_moved:,} points at "
            f"{self.rate:g} a point); liability {self.liability_change:+,.2f}"
        )


@dataclass(frozen=True)
class RollbackPreview:
    """What a rollback of `bad_build` would do, computed from history (touching nothing).
    `members` are the tables' records, one per affected member (member_id, before,
    after, changes, ledger_removed, ledger_added, redeliver, problem, clean_run,
    decisions, as_of)."""

    bad_build: str
    scanned: int
    affected: int
    repairable: int
    not_repairable: list[dict[str, str]]  # member_id, reason
    changing: int
    # people's decisions the repair re-sends whose proposal will not come back
    approvals_dropped: list[dict[str, Any]]
    totals: PreviewTotals
    members: list[dict[str, Any]]
    seconds: dict[str, float]

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["totals"]["value_moved"] = self.totals.value_moved
        data["totals"]["liability_change"] = self.totals.liability_change
        return data


async def preview_rollback(
    client: Client,
    build: str,
    query: str | None = None,
    *,
    rate: float | None = None,
    progress: ScanProgress | None = None,
) -> RollbackPreview:
    """Which members the bad build touched and what a repair would make of each;
    computed from history, touching no live workflow. (The replay check, which makes
    every build count as its candidate while it replays, never runs in a process
    that previews: the CLI runs one or the other, the app runs it as a child.)"""
    from recovery import repair
    from runtime.liability import DEFAULT_RATE

    check_build_id(build)
    started = time.perf_counter()
    scan = progress if progress is not None else ScanProgress()
    scanned, damage = await repair.find_damage(client, build, query=query, progress=scan)
    found_s = time.perf_counter() - started
    scan.enter(PREVIEWING)

    async def preview(d: Damage) -> repair.MemberPreview:
        previewed = await repair.preview_member(client, d)
        scan.previewed += 1
        return previewed

    previews = await repair.bounded(damage, preview, 16)
    scan.enter(DONE)
    rows = []
    totals = {f"{k}_before": 0 for k in ("points", "lifetime_points")} | {
        f"{k}_after": 0 for k in ("points", "lifetime_points")
    }
    moved = 0
    for p in previews:
        for k in ("points", "lifetime_points"):
            totals[f"{k}_before"] += p.before.get(k, 0)
            totals[f"{k}_after"] += p.after.get(k, 0)
        moved += abs(p.after.get("points", 0) - p.before.get("points", 0))
        rows.append(
            {
                "member_id": p.member_id,
                "before": p.before,
                "after": p.after,
                "changes": p.changes,
                "ledger_removed": p.ledger_removed,
                "ledger_added": p.ledger_added,
                "redeliver": p.redeliver,
                "problem": p.problem,
                "clean_run": p.clean_run,
                "decisions": p.decisions,
                "as_of": p.as_of,
            }
        )
    return RollbackPreview(
        bad_build=build,
        scanned=scanned,
        affected=len(damage),
        repairable=sum(1 for p in previews if not p.problem),
        not_repairable=[
            {"member_id": p.member_id, "reason": p.problem} for p in previews if p.problem
        ],
        changing=sum(1 for p in previews if p.changes),
        approvals_dropped=[
            {"member_id": p.member_id, **d}
            for p in previews
            for d in p.decisions
            if d["fate"] == "dropped"
        ],
        totals=PreviewTotals(
            **totals, points_moved=moved, rate=DEFAULT_RATE if rate is None else rate
        ),
        members=rows,
        seconds={"find": round(found_s, 3), "total": round(time.perf_counter() - started, 3)},
    )


def expected_after(report: RollbackPreview) -> dict[str, dict[str, Any]]:
    """The preview's "after" per repairable member: what verification compares with."""
    return {
        r["member_id"]: {**r["after"], "as_of": r.get("as_of")}
        for r in report.members
        if not r["problem"]
    }


def clean_runs(report: RollbackPreview) -> dict[str, str]:
    """Members whose reset loses nothing, by the run the preview saw: their reset needs
    no second read of their histories."""
    return {r["member_id"]: r["clean_run"] for r in report.members if r.get("clean_run")}


async def start_rollback(
    client: Client,
    target: Target,
    build: str,
    *,
    reason: str,
    expected: dict[str, dict[str, Any]] | None = None,
    clean: dict[str, str] | None = None,
    rate_per_second: float = 50.0,
    concurrency: int = 32,
    query: str | None = None,
) -> WorkflowHandle[Any, RollbackProgress]:
    """Start the durable rollback of `build`, after the checks an operator would want."""
    await check_rollback(client, target, build, reason)
    all_of(query)  # a query that could widen the scope is refused before it is recorded
    await audit.record(
        client,
        target,
        "rollback.start",
        reason=reason,
        subject=build,
        details={"members": len(expected or {}), "query": query},
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
            expected=expected or {},
            clean=clean or {},
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
    try:
        description = await client.get_workflow_handle(rollback_id(build)).describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return description.status == WorkflowExecutionStatus.RUNNING


async def rollback_progress(client: Client, build: str) -> RollbackProgress:
    """The progress of the latest rollback of `build`, running or finished."""
    try:
        return await client.get_workflow_handle(rollback_id(build)).query(RollbackWorkflow.progress)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise ReleaseError(f"no rollback of build {build!r}") from None
        raise


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
