"""Finding, previewing, resetting and verifying members damaged by a bad build.

Plain async functions over a Temporal client: the CLI's dry run calls them directly
(reads only), the rollback workflow's activities wrap them (activities/rollback.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import ResetReapplyExcludeType, ResetReapplyType
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowHandle,
    WorkflowHistory,
    WorkflowUpdateFailedError,
)
from temporalio.converter import DataConverter
from temporalio.service import RPCError, RPCStatusCode

from activities.history import (
    Decided,
    Rebuild,
    Received,
    closed_at,
    holding_run,
    next_run,
    previous_run,
    received,
    reset_base,
    reset_cut,
    run_input,
    started_at,
)
from workflows.agent_triggers import TriggerWatch
from workflows.drill import drill_for
from workflows.member import (
    SIGNAL_EVENTS,
    MemberWorkflow,
    member_workflow_id,
    trigger_key_of,
)
from workflows.rollback_messages import (
    COMPARED_FIELDS,
    Damage,
    ResetOutcome,
    ResetPoint,
    VerifyOutcome,
)
from workflows.rules import MemberBook, MemberSnapshot
from workflows.visibility import all_of, literal

# A member continuing as new at the moment of listing shows its old run closed and,
# for a moment, its new run not yet listed (visibility lags the history): runs that
# continued as new a little before the listing are listed too, and each member is then
# looked at once, in its latest run (closed members and closed runs are never reset).
MEMBER_QUERY = (
    "WorkflowType = 'MemberWorkflow' AND (ExecutionStatus = 'Running' OR "
    "(ExecutionStatus = 'ContinuedAsNew' AND CloseTime > '{since}'))"
)
VISIBILITY_LAG_S = 60.0
REDELIVER_CHUNK = 500
# Tests only: awaited with the member id between reading the member and resetting it,
# so a test can force what may happen in that window (another reset, a failure).
BEFORE_RESET: Callable[[str], Awaitable[None]] | None = None
UPDATE_KINDS = ("adjust", "approval", "decision")
AGENT_SETTLE_SECONDS = 60.0
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


def _member_id(workflow_id: str) -> str:
    return workflow_id.removeprefix("member-")


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
    damage = Damage(_member_id(description.id), description.run_id, point)
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
        try:
            await client.get_workflow_handle(description.id, run_id=damage.point.run_id).describe()
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise
            damage.problem = (
                f"reset point expired: run {damage.point.run_id} holding the first task of "
                f"{bad_build} is gone (namespace retention)"
            )
    return damage


async def find_damage(
    client: Client, bad_build: str, *, query: str | None = None, concurrency: int = 32
) -> tuple[int, list[Damage]]:
    """(members scanned, members the bad build touched); only running members count."""
    since = datetime.now(UTC) - timedelta(seconds=VISIBILITY_LAG_S)
    full = all_of(MEMBER_QUERY.format(since=since.strftime("%Y-%m-%dT%H:%M:%SZ")), query)
    assert full is not None
    ids = list(dict.fromkeys([execution.id async for execution in client.list_workflows(full)]))

    async def check(workflow_id: str) -> Damage | None:
        description = await client.get_workflow_handle(workflow_id).describe()
        if description.status is None or description.status.name != "RUNNING":
            return None
        return await checked_damage(client, description, bad_build)

    found = await bounded(ids, check, concurrency)
    return len(ids), sorted((d for d in found if d), key=lambda d: d.member_id)


# -- what a member received since a point --------------------------------------------


@dataclass
class Plan:
    """What a member's run will hold after a reset to `cut` in the `anchor` run.

    The reset keeps the anchor's history up to the cut; the server reapplies what the
    anchor received after the cut and what the runs continuing it (its base chain)
    received; everything else received since the anchor started (runs of other chains,
    e.g. ones an earlier reset replaced) would be lost, so it is re-delivered.
    """

    anchor: WorkflowHistory
    kept: list[Received]
    reapplied: list[Received]
    missing: list[Received]
    base: list[str]  # the anchor run and the runs continuing it, oldest first
    # what a repaired chain did hold (see `repaired_plan`), in the order it applied it;
    # else a prediction of what a reset will do
    actual: bool = False

    def expected(self) -> MemberBook:
        """The member as the current rules compute it from the anchor run's input."""
        return self.rebuild().book

    def rebuild(self) -> Rebuild:
        """`expected`, with what the rebuild saw on the way (e.g. the events accepted)."""
        start = run_input(self.anchor)
        snapshot = start.snapshot or MemberSnapshot(member_id=start.member_id)
        book = MemberBook(_copy_snapshot(snapshot), hold=holding_run(self.anchor))
        carried = start.agent.watch if start.agent else None
        watch = TriggerWatch(dataclasses.replace(carried) if carried else None)
        rebuild = Rebuild(book, start.requests or [], watch)
        fresh = {id(item) for item in [*self.reapplied, *self.missing]}
        if self.actual:
            after = [*self.reapplied, *self.missing]
        else:  # all of it lands in the one run the reset makes
            after = [dataclasses.replace(i, run_started=None) for i in self._after_reset()]
            fresh = {id(item) for item in after}
        for item in [*self.kept, *after]:
            # what the reset keeps is replayed as the build that first applied it did
            # (a drill build's damage included); the rest runs through current rules
            keep = id(item) not in fresh and item.build
            rebuild.book.drill = drill_for(item.build) if keep and item.build else None
            rebuild.apply(item, "preview")
        return rebuild

    def resent(self) -> list[Received]:
        """Updates after the cut: the reset does not reapply them, heal_member re-sends."""
        return [i for i in self.reapplied if i.kind in UPDATE_KINDS]

    def _after_reset(self) -> list[Received]:
        """What the reset run applies after the cut, in the order it gets it: the
        reapplied signals, the re-delivered events, the re-sent adjustments, the agent's
        re-runs (and what policy approves), then the people's approvals bound to them
        (heal_member re-sends them once the agent settled)."""
        after = [*self.reapplied, *self.missing]
        events = [i for i in after if i.kind == "event"]
        adjusts = sorted((i for i in after if i.kind == "adjust"), key=lambda i: i.at_utc)
        agents = [i for i in after if i.kind == "agent"]
        approvals = sorted((i for i in after if i.kind == "approval"), key=lambda i: i.at_utc)
        return [*events, *adjusts, *agents, *approvals]


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _copy_snapshot(snapshot: MemberSnapshot) -> MemberSnapshot:
    converter = DataConverter.default.payload_converter
    copy: MemberSnapshot = converter.from_payloads(
        converter.to_payloads([snapshot]), [MemberSnapshot]
    )[0]
    return copy


async def plan(
    client: Client,
    member_id: str,
    anchor_run: str,
    cut: int | None,
    known: Iterable[str] = (),
) -> Plan:
    """The plan for resetting to event `cut` of `anchor_run` (None: keep the whole run).

    `known`: runs of the member to read even if visibility does not list them yet (the
    run a reset just terminated may have started a moment ago by continue-as-new)."""
    workflow_id = member_workflow_id(member_id)
    anchor = await client.get_workflow_handle(workflow_id, run_id=anchor_run).fetch_history()
    since = _aware(started_at(anchor))
    runs = {anchor_run: anchor}
    async for execution in client.list_workflows(f"WorkflowId = {literal(workflow_id)}"):
        if execution.run_id in runs:
            continue
        closed = execution.close_time
        if closed is None or _aware(closed) >= since:
            handle = client.get_workflow_handle(workflow_id, run_id=execution.run_id)
            runs[execution.run_id] = await handle.fetch_history()
    await _follow_links(client, workflow_id, runs, since, known)
    successor: dict[str, str] = {}
    for run_id, history in runs.items():
        previous = previous_run(history)
        if previous and reset_base(history) is None:  # a reset run replaces, not continues
            successor[previous] = run_id
    base = [anchor_run]
    while base[-1] in successor and successor[base[-1]] not in base:
        base.append(successor[base[-1]])

    anchor_items = list(received(anchor, approvals=True))
    kept = [i for i in anchor_items if cut is None or i.event_id < cut]
    reapplied = [i for i in anchor_items if cut is not None and i.event_id >= cut]
    if cut is not None:
        # what arrived before the cut but was applied by the task the reset fails is
        # applied again by whichever build runs after the reset
        kept = [i if 0 < i.applied_at < cut else dataclasses.replace(i, build=None) for i in kept]
    for run_id in base[1:]:
        reapplied.extend(received(runs[run_id], approvals=True))
    known = {item.key() for item in [*kept, *reapplied]}
    missing: list[Received] = []
    for run_id, history in runs.items():
        if run_id in base:
            continue
        for item in received(history, approvals=True):
            if _aware(item.at) >= since and item.key() not in known:
                known.add(item.key())
                missing.append(item)
    missing.sort(key=lambda item: item.at)
    return Plan(anchor, kept, reapplied, missing, base)


async def repaired_plan(
    client: Client, member_id: str, reset_run: str, known: Iterable[str] = ()
) -> Plan:
    """What a repaired member's chain holds since the reset that made `reset_run`: what
    came before the reset point as the builds then applied it, everything applied after
    it (by whichever build runs now) as the current rules apply it, in the order it was
    applied. Its `expected()` is what verification compares the live member with."""
    steps = await plan(client, member_id, reset_run, None, known)
    cut = reset_cut(steps.anchor)
    if cut is not None:
        before = [i for i in steps.kept if i.event_id < cut]
        steps.reapplied = [
            *(dataclasses.replace(i, build=None) for i in steps.kept if i.event_id >= cut),
            *steps.reapplied,
        ]
        steps.kept = [
            i if 0 < i.applied_at < cut else dataclasses.replace(i, build=None) for i in before
        ]
    steps.actual = True
    return steps


async def _follow_links(
    client: Client,
    workflow_id: str,
    runs: dict[str, WorkflowHistory],
    since: datetime,
    known: Iterable[str],
) -> None:
    """Add the runs that `known` and continue-as-new links lead to and that closed since
    `since`: visibility lists a run a little after it starts, and a run missed here would
    have its events missed by the re-delivery. Listed runs are followed forward only
    (what precedes them is listed too, or closed before `since`)."""
    pending = [run for run in known if run not in runs]
    pending.extend(r for r in map(next_run, runs.values()) if r)
    seen = set(runs)
    while pending:
        run_id = pending.pop()
        if run_id in seen:
            continue
        seen.add(run_id)
        try:
            history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:  # deleted (retention)
                continue
            raise
        closed = closed_at(history)
        if closed is not None and _aware(closed) < since:
            continue
        runs[run_id] = history
        pending.extend(r for r in (previous_run(history), next_run(history)) if r)


# -- preview -----------------------------------------------------------------------


@dataclass
class MemberPreview:
    member_id: str
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    ledger_removed: list[dict[str, Any]] = field(default_factory=list)
    ledger_added: list[dict[str, Any]] = field(default_factory=list)
    redeliver: int = 0
    problem: str | None = None
    # the member's current run, when a reset of it loses nothing (see `reset_member`)
    clean_run: str | None = None
    # people's decisions the repair re-sends, each with its fate: "applies" (its
    # proposal is kept), "re-run" (applies if the agent's re-run proposes the same
    # content, else the proposal is pending again) or "dropped" (its trigger does not
    # fire again: no proposal, no decision)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    # when it was made: verification tells a difference the preview missed from one
    # made by what arrived after it (see `_quiet_since`)
    as_of: str | None = None

    @property
    def changes(self) -> bool:
        return any(self.before.get(k) != self.after.get(k) for k in COMPARED_FIELDS)


def _fields(state: dict[str, Any]) -> dict[str, Any]:
    return {k: state[k] for k in COMPARED_FIELDS}


def _ledger_diff(
    before: list[dict[str, Any]], after: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    def key(entry: dict[str, Any]) -> tuple[str, str, int]:
        return (entry["kind"], entry["cause"], entry["delta"])

    # compare the overlapping tail: both sides keep only their latest entries
    span = min(len(before), len(after))
    old, new = (
        Counter(map(key, before[-span:] if span else [])),
        Counter(map(key, after[-span:] if span else [])),
    )
    removed = [{"kind": k, "cause": c, "delta": d} for (k, c, d) in (old - new).elements()]
    added = [{"kind": k, "cause": c, "delta": d} for (k, c, d) in (new - old).elements()]
    return removed, added


def _decision_fates(steps: Plan, fired: set[str]) -> list[dict[str, Any]]:
    kept_runs = {i.payload.trigger_key for i in steps.kept if i.kind == "agent"}
    fates = []
    for item in [*steps.resent(), *steps.missing]:
        if item.kind != "decision":
            continue
        decided: Decided = item.payload
        key = trigger_key_of(decided.decision.proposal_id)
        fate = "applies" if key in kept_runs else "re-run" if key in fired else "dropped"
        fates.append(
            {
                "proposal_id": decided.decision.proposal_id,
                "approve": decided.decision.approve,
                "action": decided.action,
                "arguments": decided.arguments,
                "decided_by": decided.decision.actor,
                "fate": fate,
            }
        )
    return fates


async def live_state(client: Client, member_id: str) -> dict[str, Any]:
    handle = client.get_workflow_handle(member_workflow_id(member_id))
    state: dict[str, Any] = await handle.query(MemberWorkflow.state)
    return state


async def preview_member(client: Client, damage: Damage) -> MemberPreview:
    """State now versus state after repair, computed from history; touches nothing."""
    preview = MemberPreview(damage.member_id, problem=damage.problem)
    preview.as_of = datetime.now(UTC).isoformat()
    now = await live_state(client, damage.member_id)
    preview.before = _fields(now)
    if damage.point is None or damage.problem:
        preview.after = dict(preview.before)
        return preview
    steps = await plan(client, damage.member_id, damage.point.run_id, damage.point.event_id)
    rebuilt = steps.rebuild()
    after = rebuilt.book.summary()
    preview.decisions = _decision_fates(steps, rebuilt.fired)
    preview.after = _fields(after)
    preview.redeliver = len(steps.missing) + len(steps.resent())
    if not steps.missing and not steps.resent() and damage.run_id in steps.base:
        preview.clean_run = damage.run_id
    preview.ledger_removed, preview.ledger_added = _ledger_diff(now["ledger"], after["ledger"])
    return preview


# -- reset -----------------------------------------------------------------------------


# the server's answers that retrying cannot change (anything else is retried)
REFUSED = (RPCStatusCode.INVALID_ARGUMENT, RPCStatusCode.FAILED_PRECONDITION)


async def reset_member(
    client: Client,
    member_id: str,
    bad_build: str,
    *,
    request_id: str,
    reason: str,
    identity: str,
    clean_run: str | None = None,
    expected: dict[str, Any] | None = None,
) -> ResetOutcome:
    """Reset one member to the first task of the bad build, re-deliver what it lost and,
    given the preview's `expected` state, verify it right away.

    `clean_run` is the member's current run when the preview found that a reset loses
    nothing: no other chain received anything since the reset point and the current run
    continues the reset's base run, so the server reapplies everything it received. If
    that run is still current, nothing since can have gone elsewhere and the member's
    histories need not be read again; otherwise they are read after the reset.

    Safe to retry: a member whose current run no longer carries the bad build's reset
    point was already repaired (the reset replaced those tasks) and is only healed
    again; the server deduplicates the reset request by `request_id`."""
    workflow_id = member_workflow_id(member_id)
    description = await client.get_workflow_handle(workflow_id).describe()
    damage = await checked_damage(client, description, bad_build)
    if damage is None or damage.point is None:
        anchor = await latest_reset_run(client, member_id, description.run_id)
        healed = await heal_member(client, member_id, anchor) if anchor else 0
        return ResetOutcome(member_id, "already-repaired", anchor, redelivered=healed)
    if damage.problem:
        return ResetOutcome(member_id, "not-repairable", message=damage.problem)
    if BEFORE_RESET is not None:
        await BEFORE_RESET(member_id)
    try:
        response = await client.workflow_service.reset_workflow_execution(
            ResetWorkflowExecutionRequest(
                namespace=client.namespace,
                workflow_execution=WorkflowExecution(
                    workflow_id=workflow_id, run_id=damage.point.run_id
                ),
                reason=reason,
                workflow_task_finish_event_id=damage.point.event_id,
                request_id=request_id,
                reset_reapply_type=ResetReapplyType.RESET_REAPPLY_TYPE_ALL_ELIGIBLE,
                # updates (adjustments, decisions) are re-sent by heal_member instead:
                # a decision waits for the agent's re-run and binds to its content
                reset_reapply_exclude_types=[
                    ResetReapplyExcludeType.RESET_REAPPLY_EXCLUDE_TYPE_UPDATE
                ],
                identity=identity,
            )
        )
    except RPCError as error:
        if error.status not in REFUSED:
            raise
        # e.g. a signal to another workflow pending at that task: nothing changed
        return ResetOutcome(
            member_id, "not-repairable", message=f"the server refuses the reset: {error.message}"
        )
    # the runs this reset replaced: the one read above and, if another reset (another
    # rollback, an operator in the Web UI) came in between, the runs it made: each
    # replaced run names the run that replaced it, visibility or not
    replaced = await replaced_runs(client, member_id, description.run_id, response.run_id)
    clean = clean_run is not None and replaced == [clean_run]
    healed = 0 if clean else await heal_member(client, member_id, response.run_id, *replaced)
    outcome = ResetOutcome(
        member_id,
        "reset",
        response.run_id,
        redelivered=healed,
        message=f"reset to event {damage.point.event_id} of run {damage.point.run_id}",
    )
    if expected is not None:
        outcome.verification = await verify_member(
            client, member_id, bad_build, response.run_id, expected
        )
    return outcome


async def replaced_runs(
    client: Client, member_id: str, described_run: str, new_run: str, limit: int = 100
) -> list[str]:
    """`described_run` and the runs resets made from it on the way to `new_run`, oldest
    first (a reset records, in the run it ended, the run it made)."""
    handle_of = client.get_workflow_handle
    workflow_id = member_workflow_id(member_id)
    runs = [described_run]
    for _ in range(limit):
        description = await handle_of(workflow_id, run_id=runs[-1]).describe()
        successor = description.raw_description.workflow_extended_info.reset_run_id
        if not successor or successor == new_run or successor in runs:
            break
        runs.append(successor)
    return runs


async def heal_member(client: Client, member_id: str, anchor_run: str, *replaced: str) -> int:
    """Re-deliver what the member received since `anchor_run` started but its chain lacks
    (the server reapplies only signals along the reset's base chain): events, then
    adjustments, then (once the agent re-ran what the reset replayed) the people's
    decisions, each bound to the content it decided and applied at its first time.
    Idempotent: the member ignores an event it already counted, an adjustment whose
    request id it knows and a decision on a proposal already decided. What the member
    refuses now (an adjustment that would take the balance below zero after the
    repair; a decision whose proposal changed or is gone) is refused, not retried:
    the proposal stays pending with the earlier decision in its record, and
    verification compares the member with the rules for what it did take."""
    steps = await plan(client, member_id, anchor_run, None, replaced)
    handle = client.get_workflow_handle(member_workflow_id(member_id))
    events = [item.payload for item in steps.missing if item.kind == "event"]
    for i in range(0, len(events), REDELIVER_CHUNK):
        await handle.signal(SIGNAL_EVENTS, events[i : i + REDELIVER_CHUNK])
    for item in steps.missing:
        if item.kind == "adjust":
            try:
                await handle.execute_update(MemberWorkflow.adjust, item.payload)
            except WorkflowUpdateFailedError:
                pass  # refused by the rules now (e.g. below zero): nothing applied
    decisions: list[Decided] = [i.payload for i in steps.missing if i.kind == "decision"]
    if decisions:
        await agent_settled(handle)
    for decided in decisions:
        try:
            await handle.execute_update("decide", decided.resend())
        except WorkflowUpdateFailedError:
            pass  # decided already, changed (pending again, says why) or gone
    return len(steps.missing)


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


# -- verify ----------------------------------------------------------------------------


async def agent_settled(
    handle: WorkflowHandle[Any, Any], timeout: float = AGENT_SETTLE_SECONDS
) -> bool:
    """Wait (bounded) until the member's agent has no run going or queued.

    After a reset the agent re-runs the triggers the reset replayed, and what the
    policy approves, or a person's reapplied approval waiting for that run, lands only
    then; the history already holds it, so comparing earlier would report a mismatch
    that is merely not there yet. False: still busy (e.g. paused by its budget)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        desk = (await handle.query(MemberWorkflow.agent))["agent"]
        if desk["running"] is None and not desk["queued"]:
            return True
        if asyncio.get_running_loop().time() >= deadline:
            return False
        await asyncio.sleep(0.2)


async def _rejected_but_accepted_before(
    client: Client, member_id: str, current_run: str, state: dict[str, Any]
) -> list[str]:
    """Events the repaired member rejected that the chain the reset replaced accepted
    (e.g. a refund re-delivered before its purchase): lost by the repair, whatever the
    rules say of the order it came in. Read only when the member rejected something."""
    rejected = {r["event_id"] for r in state.get("rejections", []) if r.get("event_id")}
    if not rejected:
        return []
    reset_run = await latest_reset_run(client, member_id, current_run)
    if reset_run is None:
        return []
    workflow_id = member_workflow_id(member_id)
    history = await client.get_workflow_handle(workflow_id, run_id=reset_run).fetch_history()
    replaced = reset_base(history)
    if replaced is None:
        return []
    try:
        before = await plan(client, member_id, replaced, None)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:  # gone with retention
            return []
        raise
    before.actual, before.missing = True, []  # the replaced chain alone
    return sorted(rejected & before.rebuild().accepted)


def _quiet_since(state: dict[str, Any], expected: dict[str, Any]) -> bool:
    """Nothing reached the member after its preview: the same events counted, and no
    ledger entry of an adjustment or grant made after the preview's time (`as_of`)."""
    if any(state[k] != expected.get(k) for k in ("events_processed", "events_rejected")):
        return False
    as_of = expected.get("as_of")
    if not isinstance(as_of, str):
        return False  # a preview that does not say when it was made: cannot tell
    since = datetime.fromisoformat(as_of)
    return not any(
        entry["kind"] in ("adjustment", "goodwill", "tier")
        and datetime.fromisoformat(entry["at"].replace("Z", "+00:00")) > since
        for entry in state.get("ledger", [])
    )


async def verify_member(
    client: Client,
    member_id: str,
    bad_build: str,
    anchor_run_id: str | None,
    expected: dict[str, Any] | None = None,
) -> VerifyOutcome:
    """After the repair: the member no longer runs the bad build and its live state is
    what the current rules compute from its history since the reset."""
    workflow_id = member_workflow_id(member_id)
    handle = client.get_workflow_handle(workflow_id)
    await agent_settled(handle)
    state: dict[str, Any] = await handle.execute_update(
        MemberWorkflow.sync  # type: ignore[arg-type]
    )
    live = _fields(state)
    if anchor_run_id is None:
        # already repaired (a retried batch): compared like any other, from the run
        # the reset made
        current = (await handle.describe()).run_id
        anchor_run_id = await latest_reset_run(client, member_id, current)
    expected_now: dict[str, Any] | None = None
    if expected is not None and _fields(expected) == live:
        # what the preview computed from history is what the member holds: no need to
        # read its history again
        anchor_run_id, expected_now = None, _fields(expected)
    for _ in range(5 if anchor_run_id else 0):
        # events may keep arriving: compare a state with the history that produced it
        if anchor_run_id:
            steps = await repaired_plan(client, member_id, anchor_run_id)
            expected_now = _fields(steps.expected().summary())
        settled = _fields(await handle.execute_update(MemberWorkflow.sync))  # type: ignore[arg-type]
        if settled == live:
            break
        live = settled
    description = await client.get_workflow_handle(workflow_id).describe()
    build = current_build(description)
    outcome = VerifyOutcome(member_id, ok=True, build_id=build, live=live)
    lost = await _rejected_but_accepted_before(client, member_id, description.run_id, state)
    if lost:
        outcome.problems.append(
            f"rejected after the repair but accepted before it: {', '.join(lost[:5])}"
            + (f" and {len(lost) - 5} more" if len(lost) > 5 else "")
        )
    if build == bad_build:
        outcome.problems.append(f"still runs the bad build {bad_build}")
    if reset_point_for(description, bad_build) is not None:
        outcome.problems.append("the bad build's tasks are still in the member's chain")
    if expected_now is not None:
        outcome.expected = expected_now
        if outcome.expected != live:
            diffs = [
                f"{k} {live[k]} != {outcome.expected[k]}"
                for k in COMPARED_FIELDS
                if live[k] != outcome.expected[k]
            ]
            outcome.problems.append("state differs from its history: " + ", ".join(diffs))
    if expected is not None:
        outcome.matches_preview = _fields(expected) == live
        # what arrived after the preview (events, adjustments, grants by policy after the
        # agent's re-run) makes the member differ from it by right; with none, any
        # difference is a mismatch
        quiet = _quiet_since(state, expected)
        if not outcome.matches_preview and quiet:
            diffs = [
                f"{k} {live[k]} != {expected[k]}"
                for k in COMPARED_FIELDS
                if live[k] != expected.get(k)
            ]
            outcome.problems.append("state differs from the preview: " + ", ".join(diffs))
    if expected_now is None:
        outcome.problems.append("no reset run found to compare the member with its history")
    outcome.ok = not outcome.problems
    return outcome
