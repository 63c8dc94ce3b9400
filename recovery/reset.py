"""Resetting a member to before a bad build and re-delivering what the reset lost."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import ResetReapplyExcludeType, ResetReapplyType
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import (
    Client,
    WorkflowUpdateFailedError,
)
from temporalio.service import RPCError, RPCStatusCode

from recovery.damage import (
    checked_damage,
    latest_reset_run,
)
from recovery.history import Decided
from recovery.plan import plan
from recovery.verify import agent_settled, verify_member
from workflows.contract import (
    SIGNAL_EVENTS,
    UPDATE_DECIDE,
    member_workflow_id,
)
from workflows.member import MemberWorkflow
from workflows.rollback_messages import (
    ResetOutcome,
)

REDELIVER_CHUNK = 500

# what heal_member re-sends by update, after the events: Received.kind -> the update
RESENT_UPDATES: dict[str, Any] = {
    "adjust": MemberWorkflow.adjust,
    "redeem": MemberWorkflow.redeem,
    "cancel_redemption": MemberWorkflow.cancel_redemption,
}
# Tests only: awaited with the member id between reading the member and resetting it,
# so a test can force what may happen in that window (another reset, a failure).
BEFORE_RESET: Callable[[str], Awaitable[None]] | None = None

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
    settle_agent: bool = True,
    check_chain: bool = True,
) -> ResetOutcome:
    """Reset one member to the first task of the bad build, re-deliver what it lost and,
    given the preview's `expected` state, verify it right away.

    `clean_run` is the member's current run when the preview found that a reset loses
    nothing: no other chain received anything since the reset point and the current run
    continues the reset's base run, so the server reapplies everything it received. If
    that run is still current, nothing since can have gone elsewhere and the member's
    histories need not be read again; otherwise they are read after the reset.

    `settle_agent` and `check_chain`: see `verify_member`.

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
            client,
            member_id,
            bad_build,
            response.run_id,
            expected,
            settle_agent=settle_agent,
            check_chain=check_chain,
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
        if item.kind in RESENT_UPDATES:
            try:
                await handle.execute_update(RESENT_UPDATES[item.kind], item.payload)
            except WorkflowUpdateFailedError:
                pass  # refused by the rules now (e.g. below zero): nothing applied
    decisions: list[Decided] = [i.payload for i in steps.missing if i.kind == "decision"]
    if decisions:
        await agent_settled(handle)
    for decided in decisions:
        try:
            await handle.execute_update(UPDATE_DECIDE, decided.resend())
        except WorkflowUpdateFailedError:
            pass  # decided already, changed (pending again, says why) or gone
    return len(steps.missing)


# -- verify ----------------------------------------------------------------------------
