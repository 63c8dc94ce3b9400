"""Verifying a repaired member against the preview's expected state."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from temporalio.client import (
    Client,
    WorkflowHandle,
)
from temporalio.service import RPCError, RPCStatusCode

from recovery.damage import (
    current_build,
    latest_reset_run,
    reset_point_for,
)
from recovery.plan import fields_of, plan, repaired_plan
from recovery.runs import (
    reset_base,
)
from workflows.contract import (
    member_workflow_id,
)
from workflows.member import MemberWorkflow
from workflows.rollback_messages import (
    COMPARED_FIELDS,
    VerifyOutcome,
)

AGENT_SETTLE_SECONDS = 60.0


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
    client: Client, member_id: str, state: dict[str, Any]
) -> list[str]:
    """Events the repaired member rejected that the chain the reset replaced accepted
    (e.g. a refund re-delivered before its purchase): lost by the repair, whatever the
    rules say of the order it came in. Read only when the member rejected something."""
    rejected = {r["event_id"] for r in state.get("rejections", []) if r.get("event_id")}
    if not rejected:
        return []
    workflow_id = member_workflow_id(member_id)
    current_run = (await client.get_workflow_handle(workflow_id).describe()).run_id
    reset_run = await latest_reset_run(client, member_id, current_run)
    if reset_run is None:
        return []
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
    *,
    settle_agent: bool = True,
    check_chain: bool = True,
) -> VerifyOutcome:
    """After the repair: the member no longer runs the bad build and its live state is
    what the current rules compute from its history since the reset.

    `settle_agent` False: the preview's rebuild fired none of the agent's triggers, so
    the reset gives the agent nothing to re-run and its state is not waited for.
    `check_chain` False: the caller checks the member's chain for the bad build's
    tasks itself (the paged rollback's scan after its last page does, for every
    member): one call to the server less per member."""
    workflow_id = member_workflow_id(member_id)
    handle = client.get_workflow_handle(workflow_id)
    if settle_agent:
        await agent_settled(handle)
    state: dict[str, Any] = await handle.execute_update(
        MemberWorkflow.sync  # type: ignore[arg-type]
    )
    live = fields_of(state)
    if anchor_run_id is None:
        # already repaired (a retried batch): compared like any other, from the run
        # the reset made
        current = (await handle.describe()).run_id
        anchor_run_id = await latest_reset_run(client, member_id, current)
    expected_now: dict[str, Any] | None = None
    if expected is not None and fields_of(expected) == live:
        # what the preview computed from history is what the member holds: no need to
        # read its history again
        anchor_run_id, expected_now = None, fields_of(expected)
    for _ in range(5 if anchor_run_id else 0):
        # events may keep arriving: compare a state with the history that produced it
        if anchor_run_id:
            steps = await repaired_plan(client, member_id, anchor_run_id)
            expected_now = fields_of(steps.expected().summary())
        settled = fields_of(await handle.execute_update(MemberWorkflow.sync))  # type: ignore[arg-type]
        if settled == live:
            break
        live = settled
    description = await handle.describe() if check_chain else None
    # the build the member's last task ran on, as the member says (the same as the
    # server's description of it)
    build = current_build(description) if description else state.get("build_id")
    outcome = VerifyOutcome(member_id, ok=True, build_id=build, live=live)
    lost = await _rejected_but_accepted_before(client, member_id, state)
    if lost:
        outcome.problems.append(
            f"rejected after the repair but accepted before it: {', '.join(lost[:5])}"
            + (f" and {len(lost) - 5} more" if len(lost) > 5 else "")
        )
    if build == bad_build:
        outcome.problems.append(f"still runs the bad build {bad_build}")
    if description and reset_point_for(description, bad_build) is not None:
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
        outcome.matches_preview = fields_of(expected) == live
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
