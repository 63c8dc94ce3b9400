"""What a reset of a member will keep, lose and re-deliver, and the preview of it."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from temporalio.client import (
    Client,
    WorkflowHistory,
)
from temporalio.converter import DataConverter

from recovery.history import Decided, Received, received
from recovery.rebuild import Rebuild
from recovery.runs import (
    as_run_applied,
    aware,
    closed_at,
    fetch_run,
    next_run,
    previous_run,
    reset_base,
    reset_cut,
    run_input,
    started_at,
)
from workflows.agent_triggers import TriggerWatch
from workflows.contract import (
    member_workflow_id,
)
from workflows.drill import drill_for
from workflows.member import MemberWorkflow
from workflows.member_messages import trigger_key_of
from workflows.rollback_messages import (
    COMPARED_FIELDS,
    Damage,
)
from workflows.rules import MemberBook, MemberSnapshot
from workflows.visibility import literal

UPDATE_KINDS = ("adjust", "redeem", "cancel_redemption", "approval", "decision")


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
        # a reset keeps the anchor's first task, and with it the patches its build took
        book = as_run_applied(MemberBook(_copy_snapshot(snapshot)), self.anchor)
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
        adjusts = sorted(
            (i for i in after if i.kind in ("adjust", "redeem", "cancel_redemption")),
            key=lambda i: i.at_utc,
        )
        agents = [i for i in after if i.kind == "agent"]
        approvals = sorted((i for i in after if i.kind == "approval"), key=lambda i: i.at_utc)
        return [*events, *adjusts, *agents, *approvals]


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
    *,
    quick: bool = False,
) -> Plan:
    """The plan for resetting to event `cut` of `anchor_run` (None: keep the whole run).

    `known`: runs of the member to read even if visibility does not list them yet (the
    run a reset just terminated may have started a moment ago by continue-as-new).
    `quick` (the preview's): the member's runs are listed only when the anchor's chain
    has ended (see `_chain_still_running`). A reset acting on the plan checks the member
    again, so the repair itself always lists them."""
    workflow_id = member_workflow_id(member_id)
    anchor = await client.get_workflow_handle(workflow_id, run_id=anchor_run).fetch_history()
    since = aware(started_at(anchor))
    runs = {anchor_run: anchor}
    if not (quick and await _chain_still_running(client, workflow_id, runs)):
        async for execution in client.list_workflows(f"WorkflowId = {literal(workflow_id)}"):
            if execution.run_id in runs:
                continue
            closed = execution.close_time
            if closed is None or aware(closed) >= since:
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
            if aware(item.at) >= since and item.key() not in known:
                known.add(item.key())
                missing.append(item)
    missing.sort(key=lambda item: item.at)
    return Plan(anchor, kept, reapplied, missing, base)


async def _chain_still_running(
    client: Client, workflow_id: str, runs: dict[str, WorkflowHistory]
) -> bool:
    """Follow the anchor's continue-as-new links into `runs`; True when they end in a
    run that is still running. A reset since the anchor started ends that chain (it
    terminates the member's current run), and so does a termination: while the chain
    runs, no other run received anything since the anchor started, and the member's
    runs need not be listed (one visibility query less per member)."""
    (history,) = runs.values()
    for _ in range(10_000):
        successor = next_run(history)
        if successor is None:
            return closed_at(history) is None
        following = await fetch_run(client, workflow_id, successor)
        if following is None:
            return False
        runs[successor] = history = following
    return False


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
        history = await fetch_run(client, workflow_id, run_id)
        if history is None:  # deleted (retention)
            continue
        closed = closed_at(history)
        if closed is not None and aware(closed) < since:
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
    # how many of the agent's triggers the repaired chain fires: none, and the reset
    # gives the agent nothing to re-run (verification need not wait for it)
    agent_runs: int = 0

    @property
    def changes(self) -> bool:
        return any(self.before.get(k) != self.after.get(k) for k in COMPARED_FIELDS)


def fields_of(state: dict[str, Any]) -> dict[str, Any]:
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
    preview.before = fields_of(now)
    if damage.point is None or damage.problem:
        preview.after = dict(preview.before)
        return preview
    steps = await plan(
        client, damage.member_id, damage.point.run_id, damage.point.event_id, quick=True
    )
    rebuilt = steps.rebuild()
    after = rebuilt.book.summary()
    preview.decisions = _decision_fates(steps, rebuilt.fired)
    preview.agent_runs = len(rebuilt.fired)
    preview.after = fields_of(after)
    preview.redeliver = len(steps.missing) + len(steps.resent())
    if not steps.missing and not steps.resent() and damage.run_id in steps.base:
        preview.clean_run = damage.run_id
    preview.ledger_removed, preview.ledger_added = _ledger_diff(now["ledger"], after["ledger"])
    return preview


# -- reset -----------------------------------------------------------------------------


# the server's answers that retrying cannot change (anything else is retried)
